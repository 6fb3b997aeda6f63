//go:build nvml

package nvgpu

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Collection runs inside the worker's confidential VM, behind the build
// tag nvml, so that the default build (every verifier: the client, the
// gateway, auditors) carries none of it.
//
// A Device is one GPU. OpenNVML (nvml.go, cgo) returns the production
// Devices: it loads the driver's libnvidia-ml.so.1 with dlopen (the
// go-nvml module is refused by the module proxy here, and NVML's own
// headers are not needed), calls nvmlDeviceGetConfComputeGpuAttestationReport
// with the nonce and nvmlDeviceGetConfComputeGpuCertificate for the chain.
// HTTPCollateral (fetch.go) is the production Collateral: NVIDIA's RIM
// service and OCSP responder. Tests use test doubles of all three.

// Device is one GPU as the collector sees it.
type Device interface {
	// AttestationReport asks the GPU for an attestation report over nonce
	// (the SPDM GET_MEASUREMENTS request and signed response) and returns
	// it with the GPU's attestation certificate chain, leaf first, as PEM
	// or as concatenated DER.
	AttestationReport(nonce [32]byte) (report, certChain []byte, err error)
}

// Collateral fetches what verification needs besides the device's own
// output. The production one asks NVIDIA's RIM service and OCSP
// responder over the network, through an injected HTTP client.
type Collateral interface {
	// RIM returns the signed RIM with the given NVIDIA RIM service file
	// ID, such as "NV_GPU_DRIVER_GH100_550.90.07".
	RIM(ctx context.Context, id string) ([]byte, error)
	// OCSP returns a DER OCSP response about cert, which issuer issued.
	OCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error)
}

// Collector gathers the GPU evidence of one evidence bundle.
type Collector struct {
	// Devices are the machine's GPUs, in a stable order: Devices[i] is
	// GPU i of the bundle. Required.
	Devices []Device
	// Collateral fetches RIMs and OCSP responses. Required.
	Collateral Collateral
}

// Collect returns the encoded Evidence of every GPU for a bundle with
// the given nonce: GPU i's report is made over proto.GPUNonce(nonce, i),
// with its chain's OCSP responses (every certificate but the leaf and the
// root), its driver and VBIOS RIMs, and the OCSP responses of the RIMs'
// signing chains. It checks that each report parses and carries the
// nonce asked for; it does not verify anything else (Verify does, on the
// other side).
func (c *Collector) Collect(ctx context.Context, nonce [proto.NonceSize]byte) ([][]byte, error) {
	if len(c.Devices) == 0 || len(c.Devices) > proto.MaxGPUs {
		return nil, fmt.Errorf("nvgpu: collect: %d devices, want 1 to %d", len(c.Devices), proto.MaxGPUs)
	}
	if c.Collateral == nil {
		return nil, errors.New("nvgpu: collect: no collateral source")
	}
	out := make([][]byte, 0, len(c.Devices))
	for i, d := range c.Devices {
		ev, err := c.collectOne(ctx, d, proto.GPUNonce(nonce, i))
		if err != nil {
			return nil, fmt.Errorf("nvgpu: collect gpu %d: %w", i, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

func (c *Collector) collectOne(ctx context.Context, d Device, nonce [32]byte) ([]byte, error) {
	report, chainRaw, err := d.AttestationReport(nonce)
	if err != nil {
		return nil, fmt.Errorf("attestation report: %w", err)
	}
	r, err := ParseReport(report)
	if err != nil {
		return nil, err
	}
	if r.Nonce != nonce {
		return nil, fmt.Errorf("the device answered for nonce %x, want %x", r.Nonce, nonce)
	}
	ders, err := SplitChain(chainRaw)
	if err != nil {
		return nil, err
	}
	chain, err := parseCertificates(ders)
	if err != nil {
		return nil, err
	}
	e := &Evidence{Report: report, CertChain: ders}
	for i := 1; i+1 < len(chain); i++ {
		resp, err := c.Collateral.OCSP(ctx, chain[i], chain[i+1])
		if err != nil {
			return nil, fmt.Errorf("ocsp for %s: %w", certName(chain[i]), err)
		}
		e.OCSP = append(e.OCSP, resp)
	}
	if e.DriverRIM, err = c.Collateral.RIM(ctx, DriverRIMID(r)); err != nil {
		return nil, fmt.Errorf("driver rim: %w", err)
	}
	if e.VBIOSRIM, err = c.Collateral.RIM(ctx, VBIOSRIMID(r)); err != nil {
		return nil, fmt.Errorf("vbios rim: %w", err)
	}
	seen := map[string]bool{}
	for _, x := range [][]byte{e.DriverRIM, e.VBIOSRIM} {
		parsed, err := rim.Parse(x)
		if err != nil {
			return nil, err
		}
		sc := parsed.SigningChain
		for i := 0; i+1 < len(sc); i++ {
			key := string(sc[i].RawIssuer) + "/" + sc[i].SerialNumber.String()
			if seen[key] {
				continue // the driver and VBIOS chains share their CAs
			}
			seen[key] = true
			resp, err := c.Collateral.OCSP(ctx, sc[i], sc[i+1])
			if err != nil {
				return nil, fmt.Errorf("ocsp for rim certificate %s: %w", certName(sc[i]), err)
			}
			e.RIMOCSP = append(e.RIMOCSP, resp)
		}
	}
	return e.Marshal()
}

// DriverRIMID is the NVIDIA RIM service file ID of the report's driver
// RIM: "NV_GPU_DRIVER_GH100_<driver version>" for Hopper, or
// "NV_GPU_CC_DRIVER_<chip info>_<driver version>" when the report names
// its chip (Blackwell), as go-nvattest-tools' driverRIMFileID and nvtrust's
// cc_admin_utils.py name them.
func DriverRIMID(r *Report) string {
	if chip := opaqueText(r.OpaqueValue(OpaqueChipInfo)); chip != "" {
		return "NV_GPU_CC_DRIVER_" + chip + "_" + r.DriverVersion
	}
	return "NV_GPU_DRIVER_GH100_" + r.DriverVersion
}

// VBIOSRIMID is the NVIDIA RIM service file ID of the report's VBIOS RIM:
// "NV_GPU_VBIOS_<project>_<project sku>_<chip sku>_<version without
// dots>", upper case, such as "NV_GPU_VBIOS_1010_0200_882_96009F0001".
func VBIOSRIMID(r *Report) string {
	return fmt.Sprintf("NV_GPU_VBIOS_%s_%s_%s_%s",
		strings.ToUpper(opaqueText(r.OpaqueValue(OpaqueProject))),
		strings.ToUpper(opaqueText(r.OpaqueValue(OpaqueProjectSKU))),
		strings.ToUpper(opaqueText(r.OpaqueValue(OpaqueChipSKU))),
		strings.ToUpper(strings.ReplaceAll(r.VBIOSVersion, ".", "")))
}

// opaqueText is an opaque ASCII field without its NUL padding and spaces.
func opaqueText(v []byte) string {
	s, _, _ := bytes.Cut(v, []byte{0})
	return strings.TrimSpace(string(s))
}

// SplitChain splits a certificate chain given as PEM or as concatenated
// DER into DER certificates, in order.
func SplitChain(raw []byte) ([][]byte, error) {
	var out [][]byte
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("-----BEGIN")) {
		rest := raw
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				return nil, fmt.Errorf("nvgpu: certificate chain: a %q pem block", b.Type)
			}
			out = append(out, b.Bytes)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("nvgpu: certificate chain: bytes after the last pem block")
		}
	} else {
		in := cryptobyte.String(raw)
		for !in.Empty() {
			var cert cryptobyte.String
			if !in.ReadASN1Element(&cert, cbasn1.SEQUENCE) {
				return nil, errors.New("nvgpu: certificate chain: not concatenated der certificates")
			}
			out = append(out, cert)
		}
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("nvgpu: certificate chain: %d certificates, want at least 2", len(out))
	}
	return out, nil
}
