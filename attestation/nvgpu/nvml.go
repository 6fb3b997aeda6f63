//go:build nvml && cgo

package nvgpu

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <string.h>

typedef int sg_nvml_return;
typedef void *sg_nvml_device;

// The layouts of nvmlConfComputeGpuCertificate_t and
// nvmlConfComputeGpuAttestationReport_t in NVML's public nvml.h.
typedef struct {
	unsigned int certChainSize;
	unsigned int attestationCertChainSize;
	unsigned char certChain[0x1000];
	unsigned char attestationCertChain[0x1400];
} sg_nvml_certificate;

typedef struct {
	unsigned int isCecAttestationReportPresent;
	unsigned int attestationReportSize;
	unsigned int cecAttestationReportSize;
	unsigned char nonce[0x20];
	unsigned char attestationReport[0x2000];
	unsigned char cecAttestationReport[0x1000];
} sg_nvml_report;

static void *sg_init, *sg_count, *sg_handle, *sg_report, *sg_cert;

// sg_nvml_open loads the driver's NVML and initializes it: -1 when the
// library is missing, -2 when it lacks a function, else NVML's result.
static int sg_nvml_open(void) {
	void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) return -1;
	sg_init = dlsym(lib, "nvmlInit_v2");
	sg_count = dlsym(lib, "nvmlDeviceGetCount_v2");
	sg_handle = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
	sg_report = dlsym(lib, "nvmlDeviceGetConfComputeGpuAttestationReport");
	sg_cert = dlsym(lib, "nvmlDeviceGetConfComputeGpuCertificate");
	if (!sg_init || !sg_count || !sg_handle || !sg_report || !sg_cert) return -2;
	return ((sg_nvml_return (*)(void))sg_init)();
}

static sg_nvml_return sg_nvml_count(unsigned int *n) {
	return ((sg_nvml_return (*)(unsigned int *))sg_count)(n);
}

static sg_nvml_return sg_nvml_device_at(unsigned int i, sg_nvml_device *d) {
	return ((sg_nvml_return (*)(unsigned int, sg_nvml_device *))sg_handle)(i, d);
}

static sg_nvml_return sg_nvml_attestation_report(sg_nvml_device d, const unsigned char *nonce, sg_nvml_report *r) {
	memset(r, 0, sizeof *r);
	memcpy(r->nonce, nonce, sizeof r->nonce);
	return ((sg_nvml_return (*)(sg_nvml_device, sg_nvml_report *))sg_report)(d, r);
}

static sg_nvml_return sg_nvml_certificate_chain(sg_nvml_device d, sg_nvml_certificate *c) {
	memset(c, 0, sizeof *c);
	return ((sg_nvml_return (*)(sg_nvml_device, sg_nvml_certificate *))sg_cert)(d, c);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// nvmlMu serializes NVML initialization and calls: NVML is thread safe,
// but the report structures are large and one call at a time is plenty
// for attestation, which runs once per key rotation.
var nvmlMu sync.Mutex

// nvmlDevice is one GPU reached through the driver's NVML library
// (libnvidia-ml.so.1), loaded at run time with dlopen, so the worker
// builds without NVIDIA's headers or the go-nvml module.
type nvmlDevice struct {
	index  int
	handle C.sg_nvml_device
}

// OpenNVML loads NVML and returns every GPU it reports, in NVML's order.
func OpenNVML() ([]Device, error) {
	nvmlMu.Lock()
	defer nvmlMu.Unlock()
	switch r := C.sg_nvml_open(); r {
	case 0:
	case -1:
		return nil, errors.New("nvgpu: nvml: libnvidia-ml.so.1 not found: is the NVIDIA driver installed in this confidential VM?")
	case -2:
		return nil, errors.New("nvgpu: nvml: the driver's NVML lacks the confidential-computing attestation calls (driver 535 or newer needed)")
	default:
		return nil, fmt.Errorf("nvgpu: nvml: nvmlInit_v2 failed with NVML error %d", int(r))
	}
	var n C.uint
	if r := C.sg_nvml_count(&n); r != 0 {
		return nil, fmt.Errorf("nvgpu: nvml: counting devices failed with NVML error %d", int(r))
	}
	var out []Device
	for i := range int(n) {
		var h C.sg_nvml_device
		if r := C.sg_nvml_device_at(C.uint(i), &h); r != 0 {
			return nil, fmt.Errorf("nvgpu: nvml: device %d: NVML error %d", i, int(r))
		}
		out = append(out, &nvmlDevice{index: i, handle: h})
	}
	if len(out) == 0 {
		return nil, errors.New("nvgpu: nvml: no GPU found")
	}
	return out, nil
}

// AttestationReport implements Device.
func (d *nvmlDevice) AttestationReport(nonce [32]byte) ([]byte, []byte, error) {
	nvmlMu.Lock()
	defer nvmlMu.Unlock()
	var rep C.sg_nvml_report
	if r := C.sg_nvml_attestation_report(d.handle, (*C.uchar)(unsafe.Pointer(&nonce[0])), &rep); r != 0 {
		return nil, nil, fmt.Errorf("nvgpu: nvml: gpu %d: attestation report: NVML error %d", d.index, int(r))
	}
	if int(rep.attestationReportSize) > len(rep.attestationReport) || rep.attestationReportSize == 0 {
		return nil, nil, fmt.Errorf("nvgpu: nvml: gpu %d: attestation report of %d bytes, want 1 to %d", d.index, rep.attestationReportSize, len(rep.attestationReport))
	}
	report := C.GoBytes(unsafe.Pointer(&rep.attestationReport[0]), C.int(rep.attestationReportSize))
	var cert C.sg_nvml_certificate
	if r := C.sg_nvml_certificate_chain(d.handle, &cert); r != 0 {
		return nil, nil, fmt.Errorf("nvgpu: nvml: gpu %d: certificate chain: NVML error %d", d.index, int(r))
	}
	if int(cert.attestationCertChainSize) > len(cert.attestationCertChain) || cert.attestationCertChainSize == 0 {
		return nil, nil, fmt.Errorf("nvgpu: nvml: gpu %d: certificate chain of %d bytes, want 1 to %d", d.index, cert.attestationCertChainSize, len(cert.attestationCertChain))
	}
	chain := C.GoBytes(unsafe.Pointer(&cert.attestationCertChain[0]), C.int(cert.attestationCertChainSize))
	return report, chain, nil
}
