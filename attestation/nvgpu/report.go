package nvgpu

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/sealgate/sealgate/attestation/check"
)

// Layout of the SPDM 1.1 GET_MEASUREMENTS exchange an NVIDIA GPU returns
// as its attestation report (DMTF DSP0274 1.1, §10.11; NVIDIA's nvtrust
// local verifier, spdm_msrt_req_msg.py and spdm_msrt_resp_msg.py). All
// integers are little-endian.
//
// Request, RequestSize bytes:
//
//	0  SPDMVersion  1   0x11
//	1  RequestCode  1   0xE0 (GET_MEASUREMENTS)
//	2  Param1       1   bit 0: a signature is requested
//	3  Param2       1   0xFF: all measurement blocks
//	4  Nonce        32  the requester's nonce
//	36 SlotIDParam  1   certificate slot, 0 to 7
//
// Response, immediately after the request:
//
//	0        SPDMVersion              1   as the request
//	1        ResponseCode             1   0x60 (MEASUREMENTS)
//	2        Param1                   1   reserved
//	3        Param2                   1   bits 0-3: slot ID
//	4        NumberOfBlocks           1
//	5        MeasurementRecordLength  3   L1
//	8        MeasurementRecord        L1  NumberOfBlocks blocks
//	8+L1     Nonce                    32  the responder's nonce
//	40+L1    OpaqueLength             2   L2, at most 1024
//	42+L1    OpaqueData               L2  NVIDIA's type-length-value fields
//	42+L1+L2 Signature                96  ECDSA P-384 r || s
//
// Measurement block: Index (1), MeasurementSpecification (1, bit 0 =
// DMTF), MeasurementSize (2), then the DMTF measurement:
// DMTFSpecMeasurementValueType (1), DMTFSpecMeasurementValueSize (2),
// DMTFSpecMeasurementValue. Opaque field: DataType (2), DataSize (2),
// Data.
//
// The signature covers the request and the response up to the signature
// (the SPDM 1.1 L1/L2 transcript of a measurement exchange without a
// session): SHA-384 of SignedBytes.
const (
	// SPDMVersion is the only SPDM version accepted: 1.1, what Hopper
	// GPUs speak.
	SPDMVersion = 0x11
	// RequestSize is the size of a GET_MEASUREMENTS request with a nonce.
	RequestSize = 37
	// SignatureSize is the size of the response's ECDSA P-384 signature,
	// r || s.
	SignatureSize = 96
	// MaxOpaqueLength is SPDM 1.1's bound on OpaqueLength.
	MaxOpaqueLength = 1024

	codeGetMeasurements = 0xE0
	codeMeasurements    = 0x60
	paramSignature      = 0x01 // request Param1 bit 0
	paramAllBlocks      = 0xFF // request Param2: every measurement block
	specDMTF            = 0x01 // MeasurementSpecification bit 0
	responseHeaderSize  = 8
	blockHeaderSize     = 4
	dmtfHeaderSize      = 3
	opaqueHeaderSize    = 4
)

// OpaqueFieldType identifies one of NVIDIA's opaque data fields. The
// numbers are those of NVIDIA's nvtrust local GPU verifier
// (guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/attestation/
// spdm_msrt_resp_msg.py, OpaqueData.OPAQUE_DATA_TYPES, BSD-3-Clause) and
// of google/go-nvattest-tools (abi/abi.go, gpuOpaqueDataTypes,
// Apache-2.0), which adds 33 to 36.
type OpaqueFieldType uint16

// NVIDIA opaque data field types.
const (
	OpaqueCertIssuerName             OpaqueFieldType = 1
	OpaqueCertAuthorityKeyIdentifier OpaqueFieldType = 2
	OpaqueDriverVersion              OpaqueFieldType = 3  // NUL-terminated ASCII, such as "550.90.07"
	OpaqueGPUInfo                    OpaqueFieldType = 4  // 8 bytes
	OpaqueSKU                        OpaqueFieldType = 5  // ASCII
	OpaqueVBIOSVersion               OpaqueFieldType = 6  // 8 bytes, see VBIOSVersion
	OpaqueManufacturerID             OpaqueFieldType = 7  // 4 bytes
	OpaqueTamperDetection            OpaqueFieldType = 8  // 1 byte
	OpaqueSMC                        OpaqueFieldType = 9  // 1 byte
	OpaqueVPR                        OpaqueFieldType = 10 // 1 byte
	OpaqueNVDEC0Status               OpaqueFieldType = 11 // 1 byte: 0xAA enabled, 0x55 disabled
	OpaqueMeasurementCounts          OpaqueFieldType = 12 // little-endian uint32 per block
	OpaqueCPRInfo                    OpaqueFieldType = 13
	OpaqueBoardID                    OpaqueFieldType = 14
	OpaqueChipSKU                    OpaqueFieldType = 15 // ASCII, NUL-padded, such as "882"
	OpaqueChipSKUMod                 OpaqueFieldType = 16
	OpaqueProject                    OpaqueFieldType = 17 // ASCII, NUL-padded, such as "1010"
	OpaqueProjectSKU                 OpaqueFieldType = 18 // ASCII, NUL-padded, such as "0200"
	OpaqueProjectSKUMod              OpaqueFieldType = 19
	OpaqueFWID                       OpaqueFieldType = 20 // 48 bytes, also in the leaf certificate
	OpaqueProtectedPCIeStatus        OpaqueFieldType = 21 // 1 byte
	OpaqueSwitchPDI                  OpaqueFieldType = 22
	OpaqueFloorsweptPorts            OpaqueFieldType = 23
	OpaquePositionID                 OpaqueFieldType = 24
	OpaqueLockSwitchStatus           OpaqueFieldType = 25
	OpaqueGPULinkConn                OpaqueFieldType = 32
	OpaqueSysEnableStatus            OpaqueFieldType = 33
	OpaqueDataVersion                OpaqueFieldType = 34 // ASCII, such as "1.0"
	OpaqueChipInfo                   OpaqueFieldType = 35 // ASCII, NUL-terminated
	OpaqueFeatureFlag                OpaqueFieldType = 36 // little-endian, see Mode
	OpaqueInvalid                    OpaqueFieldType = 255
)

var opaqueNames = map[OpaqueFieldType]string{
	OpaqueCertIssuerName: "cert_issuer_name", OpaqueCertAuthorityKeyIdentifier: "cert_authority_key_identifier",
	OpaqueDriverVersion: "driver_version", OpaqueGPUInfo: "gpu_info", OpaqueSKU: "sku",
	OpaqueVBIOSVersion: "vbios_version", OpaqueManufacturerID: "manufacturer_id",
	OpaqueTamperDetection: "tamper_detection", OpaqueSMC: "smc", OpaqueVPR: "vpr",
	OpaqueNVDEC0Status: "nvdec0_status", OpaqueMeasurementCounts: "msrscnt", OpaqueCPRInfo: "cprinfo",
	OpaqueBoardID: "board_id", OpaqueChipSKU: "chip_sku", OpaqueChipSKUMod: "chip_sku_mod",
	OpaqueProject: "project", OpaqueProjectSKU: "project_sku", OpaqueProjectSKUMod: "project_sku_mod",
	OpaqueFWID: "fwid", OpaqueProtectedPCIeStatus: "protected_pcie_status", OpaqueSwitchPDI: "switch_pdi",
	OpaqueFloorsweptPorts: "floorswept_ports", OpaquePositionID: "position_id",
	OpaqueLockSwitchStatus: "lock_switch_status", OpaqueGPULinkConn: "gpu_link_conn",
	OpaqueSysEnableStatus: "sys_enable_status", OpaqueDataVersion: "opaque_data_version",
	OpaqueChipInfo: "chip_info", OpaqueFeatureFlag: "feature_flag", OpaqueInvalid: "invalid",
}

// String returns the field's name, or its number for a type nvtrust does
// not name.
func (t OpaqueFieldType) String() string {
	if n, ok := opaqueNames[t]; ok {
		return n
	}
	return "type " + strconv.Itoa(int(t))
}

// NVDEC0 status values (OpaqueNVDEC0Status), from nvtrust's config.py
// (BaseSettings.NVDEC_STATUS). When NVDEC0 is disabled, NVIDIA's verifiers
// do not compare the measurement at RIM index 35.
const (
	NVDEC0Enabled  = 0xAA
	NVDEC0Disabled = 0x55
)

// Mode is the GPU's confidential-computing mode as its signed report
// states it in the feature flag opaque field (OpaqueFeatureFlag).
//
// The mapping of feature flag values is go-nvattest-tools'
// (abi/abi.go, featureFlagMap and ParseFeatureFlag, which follows nvtrust):
// 0 single-GPU passthrough (SPT), 1 multi-GPU passthrough (MPT), 2
// protected PCIe (PPCIE). A report without the field (opaque data
// version 0, drivers before the field existed, such as the recorded
// H100 with driver 550.90.07) is "legacy": it does not say. SPT and MPT
// are the GPU's confidential-computing mode proper (its memory and the
// CPU–GPU traffic protected by the GPU); PPCIE is the alternative that
// nvtrust's verifier accepts instead of CC mode ("the confidential compute
// feature and PPCIE mode is disabled", cc_admin.py), in which the GPU's
// own CC mode is off. So CCMode is true for SPT and MPT only; for legacy
// reports the signed evidence does not show CC mode and CCMode is false:
// a verdict never rests on what the unsigned NVML query says.
type Mode string

// Modes.
const (
	ModeLegacy Mode = "legacy" // no feature flag in the report
	ModeSPT    Mode = "spt"    // feature flag 0
	ModeMPT    Mode = "mpt"    // feature flag 1
	ModePPCIE  Mode = "ppcie"  // feature flag 2
)

// ccMode reports whether m is a confidential-computing mode of the GPU.
func (m Mode) ccMode() bool { return m == ModeSPT || m == ModeMPT }

func modeOf(flag uint64) Mode {
	switch flag {
	case 0:
		return ModeSPT
	case 1:
		return ModeMPT
	case 2:
		return ModePPCIE
	}
	return Mode(fmt.Sprintf("unknown(%d)", flag))
}

// Block is one DMTF measurement block of the report.
type Block struct {
	// Index is the SPDM measurement index, 1 to 254. NVIDIA's RIMs number
	// the same measurements from 0: RIM index = Index - 1.
	Index int
	// ValueType is DMTFSpecMeasurementValueType (bit 7: raw bit stream
	// rather than a digest). NVIDIA's blocks are digests of type 1.
	ValueType uint8
	// Value is the measurement, a SHA-384 digest for NVIDIA GPUs.
	Value []byte
}

// OpaqueField is one field of the response's opaque data, kept as it
// was signed.
type OpaqueField struct {
	Type  OpaqueFieldType
	Value []byte
}

// Report is a parsed GPU attestation report: the SPDM GET_MEASUREMENTS
// request and the signed MEASUREMENTS response.
//
// The wire fields (the request's, the response's and Signature) are what
// Marshal encodes. ParseReport also fills the derived fields (the
// versions, FWID, Mode, CCMode, NVDEC0Disabled, SignedBytes) from them;
// Marshal ignores the derived fields.
type Report struct {
	// Version is the SPDM version of both messages, SPDMVersion.
	Version uint8
	// RequestParam1 and RequestParam2 are the request's parameters:
	// signature requested, all blocks.
	RequestParam1, RequestParam2 uint8
	// Nonce is the requester's nonce: the nonce the report was made for.
	Nonce [32]byte
	// SlotID is the certificate slot the request names.
	SlotID uint8
	// ResponseParam1 and ResponseParam2 are the response's parameters.
	ResponseParam1, ResponseParam2 uint8
	// Measurements are the measurement blocks in the order they came.
	Measurements []Block
	// ResponseNonce is the GPU's own nonce.
	ResponseNonce [32]byte
	// Opaque are the opaque data fields in the order they came.
	Opaque []OpaqueField
	// Signature is the ECDSA P-384 signature, r || s, SignatureSize
	// bytes.
	Signature []byte

	// DriverVersion is the opaque driver version without its NUL, such
	// as "550.90.07".
	DriverVersion string
	// VBIOSVersion is the opaque VBIOS version formatted the way nvtrust
	// formats it, lower-case hex parts such as "96.00.9f.00.01".
	VBIOSVersion string
	// FWID is the opaque firmware ID, nil when the report has none.
	FWID []byte
	// Mode is the feature flag's mode, ModeLegacy when there is none.
	Mode Mode
	// CCMode reports whether the signed report says the GPU is in
	// confidential-computing mode (Mode SPT or MPT).
	CCMode bool
	// NVDEC0Disabled reports an NVDEC0 status of 0x55.
	NVDEC0Disabled bool
	// SignedBytes is the transcript the signature covers: the request
	// and the response up to the signature.
	SignedBytes []byte
}

// OpaqueValue returns the value of the opaque field of type t, or nil.
func (r *Report) OpaqueValue(t OpaqueFieldType) []byte {
	for _, f := range r.Opaque {
		if f.Type == t {
			return f.Value
		}
	}
	return nil
}

// Block returns the measurement block with index i, or nil.
func (r *Report) Block(i int) *Block {
	for k := range r.Measurements {
		if r.Measurements[k].Index == i {
			return &r.Measurements[k]
		}
	}
	return nil
}

// reader reads little-endian fields and names the field and the offset
// in every error.
type reader struct {
	b   []byte
	off int // offset of b[0] within the report
}

func malformed(field, found, want string) error {
	return check.Fail(check.CodeMalformed, "gpu report "+field, found, want)
}

func (r *reader) take(field string, n int) ([]byte, error) {
	if n < 0 || len(r.b) < n {
		return nil, malformed(field, fmt.Sprintf("%d bytes left at offset %d", len(r.b), r.off), fmt.Sprintf("%d bytes", n))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	r.off += n
	return v, nil
}

func (r *reader) u8(field string) (uint8, error) {
	v, err := r.take(field, 1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

func (r *reader) u16(field string) (int, error) {
	v, err := r.take(field, 2)
	if err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint16(v)), nil
}

func (r *reader) u24(field string) (int, error) {
	v, err := r.take(field, 3)
	if err != nil {
		return 0, err
	}
	return int(v[0]) | int(v[1])<<8 | int(v[2])<<16, nil
}

// sub splits off the next n bytes as a reader of their own.
func (r *reader) sub(field string, n int) (*reader, error) {
	off := r.off
	v, err := r.take(field, n)
	if err != nil {
		return nil, err
	}
	return &reader{b: v, off: off}, nil
}

// ParseReport parses a GPU attestation report: the SPDM GET_MEASUREMENTS
// request followed by the signed MEASUREMENTS response, as NVML returns
// them. It checks the layout only (versions, codes, every length and
// offset, the opaque fields the verifier relies on, nothing after the
// signature); Verify checks the signature. Every failure is a
// *check.Error with CodeMalformed naming the field, the bytes found and
// their offset.
//
// Parsing then marshaling gives back the same bytes.
func ParseReport(raw []byte) (*Report, error) {
	if len(raw) > MaxReportSize {
		return nil, malformed("length", fmt.Sprintf("%d bytes", len(raw)), fmt.Sprintf("at most %d", MaxReportSize))
	}
	var rep Report
	in := &reader{b: raw}
	if err := rep.parseRequest(in); err != nil {
		return nil, err
	}
	if err := rep.parseResponse(in); err != nil {
		return nil, err
	}
	if len(in.b) < SignatureSize {
		return nil, malformed("signature", fmt.Sprintf("%d bytes at offset %d", len(in.b), in.off), fmt.Sprintf("%d bytes (ecdsa p-384 r || s)", SignatureSize))
	}
	if len(in.b) > SignatureSize {
		return nil, malformed("length", fmt.Sprintf("%d bytes after the signature", len(in.b)-SignatureSize), "none")
	}
	rep.SignedBytes = append([]byte{}, raw[:in.off]...)
	rep.Signature = append([]byte{}, in.b...)
	if err := rep.derive(); err != nil {
		return nil, err
	}
	return &rep, nil
}

func (rep *Report) parseRequest(in *reader) error {
	req, err := in.sub("request", RequestSize)
	if err != nil {
		return err
	}
	b := req.b
	if b[0] != SPDMVersion {
		return malformed("request spdm version", fmt.Sprintf("%#02x", b[0]), fmt.Sprintf("%#02x (spdm 1.1)", SPDMVersion))
	}
	if b[1] != codeGetMeasurements {
		return malformed("request code", fmt.Sprintf("%#02x", b[1]), fmt.Sprintf("%#02x (get_measurements)", codeGetMeasurements))
	}
	if b[2]&paramSignature == 0 {
		return malformed("request param1", fmt.Sprintf("%#02x", b[2]), "bit 0 set (signature requested)")
	}
	if b[3] != paramAllBlocks {
		return malformed("request param2", fmt.Sprintf("%#02x", b[3]), fmt.Sprintf("%#02x (all measurement blocks)", paramAllBlocks))
	}
	if b[36] > 7 {
		return malformed("request slot id", fmt.Sprint(b[36]), "0 to 7")
	}
	rep.Version, rep.RequestParam1, rep.RequestParam2 = b[0], b[2], b[3]
	copy(rep.Nonce[:], b[4:36])
	rep.SlotID = b[36]
	return nil
}

func (rep *Report) parseResponse(in *reader) error {
	hdr, err := in.sub("response header", responseHeaderSize)
	if err != nil {
		return err
	}
	version, _ := hdr.u8("")
	code, _ := hdr.u8("")
	rep.ResponseParam1, _ = hdr.u8("")
	rep.ResponseParam2, _ = hdr.u8("")
	count, _ := hdr.u8("")
	recordLen, _ := hdr.u24("")
	if version != rep.Version {
		return malformed("response spdm version", fmt.Sprintf("%#02x", version), fmt.Sprintf("%#02x (the request's)", rep.Version))
	}
	if code != codeMeasurements {
		return malformed("response code", fmt.Sprintf("%#02x", code), fmt.Sprintf("%#02x (measurements)", codeMeasurements))
	}
	if slot := rep.ResponseParam2 & 0x0f; slot != rep.SlotID {
		return malformed("response slot id", fmt.Sprint(slot), fmt.Sprintf("%d (the request's)", rep.SlotID))
	}
	if count == 0 {
		return malformed("number of blocks", "0", "at least 1")
	}
	record, err := in.sub("measurement record", recordLen)
	if err != nil {
		return err
	}
	if err := rep.parseRecord(record, int(count)); err != nil {
		return err
	}
	nonce, err := in.take("response nonce", 32)
	if err != nil {
		return err
	}
	copy(rep.ResponseNonce[:], nonce)
	opaqueLen, err := in.u16("opaque length")
	if err != nil {
		return err
	}
	if opaqueLen > MaxOpaqueLength {
		return malformed("opaque length", fmt.Sprint(opaqueLen), fmt.Sprintf("at most %d", MaxOpaqueLength))
	}
	opaque, err := in.sub("opaque data", opaqueLen)
	if err != nil {
		return err
	}
	return rep.parseOpaque(opaque)
}

func (rep *Report) parseRecord(in *reader, count int) error {
	var seen [256]bool
	rep.Measurements = make([]Block, 0, count)
	for i := range count {
		// Field names are only built on the error paths: a record has
		// up to 255 blocks.
		name := func(what string) string { return fmt.Sprintf("measurement block %d %s", i, what) }
		if len(in.b) < blockHeaderSize {
			_, err := in.take(name("header"), blockHeaderSize)
			return err
		}
		index, spec, size := in.b[0], in.b[1], int(binary.LittleEndian.Uint16(in.b[2:4]))
		in.b, in.off = in.b[blockHeaderSize:], in.off+blockHeaderSize
		if index == 0 || index == 0xff {
			return malformed(name("index"), fmt.Sprint(index), "1 to 254")
		}
		if seen[index] {
			return malformed(name("index"), fmt.Sprintf("%d again", index), "each index once")
		}
		seen[index] = true
		name = func(what string) string { return fmt.Sprintf("measurement block %d (index %d) %s", i, index, what) }
		if spec != specDMTF {
			return malformed(name("specification"), fmt.Sprintf("%#02x", spec), "0x01 (dmtf)")
		}
		if len(in.b) < size {
			_, err := in.take(name("measurement"), size)
			return err
		}
		m := in.b[:size]
		in.b, in.off = in.b[size:], in.off+size
		if size < dmtfHeaderSize || int(binary.LittleEndian.Uint16(m[1:3])) != size-dmtfHeaderSize {
			found := fmt.Sprintf("a %d-byte measurement", size)
			if size >= dmtfHeaderSize {
				found = fmt.Sprint(binary.LittleEndian.Uint16(m[1:3]))
			}
			return malformed(name("value size"), found, fmt.Sprintf("%d (measurement size %d less the 3-byte dmtf header)", max(size-dmtfHeaderSize, 0), size))
		}
		rep.Measurements = append(rep.Measurements, Block{Index: int(index), ValueType: m[0], Value: append([]byte{}, m[dmtfHeaderSize:]...)})
	}
	if len(in.b) != 0 {
		return malformed("measurement record length", fmt.Sprintf("%d bytes left after %d blocks at offset %d", len(in.b), count, in.off), fmt.Sprintf("a record of exactly %d blocks (number of blocks)", count))
	}
	return nil
}

func (rep *Report) parseOpaque(in *reader) error {
	seen := map[OpaqueFieldType]bool{}
	for len(in.b) > 0 {
		start := in.off
		t, err := in.u16("opaque field type")
		if err != nil {
			return err
		}
		typ := OpaqueFieldType(t)
		field := fmt.Sprintf("opaque field %s at offset %d", typ, start)
		n, err := in.u16(field + " size")
		if err != nil {
			return err
		}
		v, err := in.take(field+" value", n)
		if err != nil {
			return err
		}
		if seen[typ] {
			return malformed("opaque field "+typ.String(), fmt.Sprintf("a second field at offset %d", start), "each field once")
		}
		seen[typ] = true
		rep.Opaque = append(rep.Opaque, OpaqueField{Type: typ, Value: append([]byte{}, v...)})
	}
	return nil
}

// derive fills the derived fields from the opaque data and checks the
// fields the verifier relies on.
func (rep *Report) derive() error {
	dv := rep.OpaqueValue(OpaqueDriverVersion)
	if dv == nil {
		return malformed("opaque field driver_version", "none", "the driver version")
	}
	s := strings.TrimRight(string(dv), "\x00")
	if !printable(s) {
		return malformed("opaque field driver_version", fmt.Sprintf("%q", dv), "printable ascii, then nul bytes")
	}
	rep.DriverVersion = s
	vb := rep.OpaqueValue(OpaqueVBIOSVersion)
	if len(vb) != 8 {
		return malformed("opaque field vbios_version", fmt.Sprintf("%d bytes", len(vb)), "8 bytes")
	}
	rep.VBIOSVersion = formatVBIOS(vb)
	if f := rep.OpaqueValue(OpaqueFWID); f != nil {
		if len(f) != 48 {
			return malformed("opaque field fwid", fmt.Sprintf("%d bytes", len(f)), "48 bytes")
		}
		rep.FWID = f
	}
	if v := rep.OpaqueValue(OpaqueNVDEC0Status); v != nil {
		if len(v) != 1 || (v[0] != NVDEC0Enabled && v[0] != NVDEC0Disabled) {
			return malformed("opaque field nvdec0_status", hex.EncodeToString(v), "one byte, 0xaa or 0x55")
		}
		rep.NVDEC0Disabled = v[0] == NVDEC0Disabled
	}
	if v := rep.OpaqueValue(OpaqueMeasurementCounts); v != nil && len(v)%4 != 0 {
		return malformed("opaque field msrscnt", fmt.Sprintf("%d bytes", len(v)), "a multiple of 4")
	}
	rep.Mode = ModeLegacy
	if v := rep.OpaqueValue(OpaqueFeatureFlag); v != nil {
		if len(v) < 1 || len(v) > 8 {
			return malformed("opaque field feature_flag", fmt.Sprintf("%d bytes", len(v)), "1 to 8 bytes")
		}
		var flag uint64
		for i, b := range v {
			flag |= uint64(b) << (8 * i)
		}
		rep.Mode = modeOf(flag)
	}
	rep.CCMode = rep.Mode.ccMode()
	return nil
}

func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// formatVBIOS formats the 8-byte opaque VBIOS version the way nvtrust
// does (verifier/utils format_vbios_version, and go-nvattest-tools'
// formatGpuVbiosVersion): read the bytes as a little-endian number in hex,
// take its low half then the last byte of its high half, and join the
// bytes with dots. 00 9f 00 96 01 00 00 00 gives "96.00.9f.00.01".
func formatVBIOS(v []byte) string {
	le := make([]byte, len(v))
	for i := range v {
		le[i] = v[len(v)-1-i]
	}
	h := hex.EncodeToString(le)
	half := len(h) / 2
	t := h[half:] + h[half-2:half]
	parts := make([]string, 0, len(t)/2)
	for i := 0; i < len(t); i += 2 {
		parts = append(parts, t[i:i+2])
	}
	return strings.Join(parts, ".")
}

// Marshal encodes the report's wire fields: the request, then the
// response with its signature. It fails on values the encoding cannot
// hold (a block index outside 1 to 254, a value or opaque field over
// 65535 bytes, a record over 16 MiB, opaque data over MaxOpaqueLength, no
// blocks or more than 255).
func (r *Report) Marshal() ([]byte, error) {
	signed, err := r.MarshalSigned()
	if err != nil {
		return nil, err
	}
	return append(signed, r.Signature...), nil
}

// MarshalSigned encodes the bytes the signature covers: the request and
// the response up to the signature.
func (r *Report) MarshalSigned() ([]byte, error) {
	if len(r.Measurements) == 0 || len(r.Measurements) > 255 {
		return nil, fmt.Errorf("nvgpu: %d measurement blocks, want 1 to 255", len(r.Measurements))
	}
	out := []byte{r.Version, codeGetMeasurements, r.RequestParam1, r.RequestParam2}
	out = append(out, r.Nonce[:]...)
	out = append(out, r.SlotID)
	var record []byte
	for _, b := range r.Measurements {
		if b.Index < 1 || b.Index > 254 || len(b.Value) > 0xffff-dmtfHeaderSize {
			return nil, fmt.Errorf("nvgpu: measurement block index %d with %d bytes does not fit", b.Index, len(b.Value))
		}
		record = append(record, byte(b.Index), specDMTF)
		record = binary.LittleEndian.AppendUint16(record, uint16(dmtfHeaderSize+len(b.Value)))
		record = append(record, b.ValueType)
		record = binary.LittleEndian.AppendUint16(record, uint16(len(b.Value)))
		record = append(record, b.Value...)
	}
	if len(record) > 0xffffff {
		return nil, fmt.Errorf("nvgpu: measurement record of %d bytes does not fit", len(record))
	}
	var opaque []byte
	for _, f := range r.Opaque {
		if len(f.Value) > 0xffff {
			return nil, fmt.Errorf("nvgpu: opaque field %s of %d bytes does not fit", f.Type, len(f.Value))
		}
		opaque = binary.LittleEndian.AppendUint16(opaque, uint16(f.Type))
		opaque = binary.LittleEndian.AppendUint16(opaque, uint16(len(f.Value)))
		opaque = append(opaque, f.Value...)
	}
	if len(opaque) > MaxOpaqueLength {
		return nil, fmt.Errorf("nvgpu: opaque data of %d bytes, want at most %d", len(opaque), MaxOpaqueLength)
	}
	out = append(out, r.Version, codeMeasurements, r.ResponseParam1, r.ResponseParam2, byte(len(r.Measurements)))
	out = append(out, byte(len(record)), byte(len(record)>>8), byte(len(record)>>16))
	out = append(out, record...)
	out = append(out, r.ResponseNonce[:]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(opaque)))
	return append(out, opaque...), nil
}
