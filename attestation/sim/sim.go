// Package sim is a simulated TEE: a software "device" that signs reports
// with a development root key, for development and tests on machines
// without a TEE.
//
// INSECURE. The development root's private key is derived from a fixed,
// published seed, so anyone can produce simulated evidence for any key and
// any measurement. Simulated evidence proves nothing about where a worker
// runs. Policies refuse it unless they say allow_simulated: true, and every
// program that accepts it says so loudly.
//
// The report binds REPORT_DATA the way the hardware kinds do (see
// proto.Bundle.ReportData), so the rest of the system treats it exactly like
// a TDX or SNP report. Like go-sev-guest, the package is split into the
// raw layout (Report, ParseReport), collection (Device) and cryptographic
// verification (Verify); policy is checked by package attestation.
package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Layout of a simulated report.
const (
	Magic           = "SGSIM"
	ReportVersion   = 1
	MeasurementSize = 48
	ReportDataSize  = 64
	signedSize      = len(Magic) + 2 + MeasurementSize + ReportDataSize + 8 + 1
	ReportSize      = signedSize + ed25519.SignatureSize
)

// rootSeedLabel is the published seed of the INSECURE development root.
const rootSeedLabel = "sealgate INSECURE simulated TEE development root v1"

// Report is a parsed simulated report.
type Report struct {
	Measurement [MeasurementSize]byte
	ReportData  [ReportDataSize]byte
	// Timestamp is when the simulated device signed the report. Hardware
	// reports carry no trustworthy time; the simulated device's clock is
	// trusted only because simulated evidence is trusted for nothing.
	Timestamp time.Time
	Debug     bool
	Signature [ed25519.SignatureSize]byte
}

// ErrSignature: the report's signature does not verify under the root.
var ErrSignature = errors.New("simulated report signature does not verify")

func (r *Report) signed() []byte {
	b := make([]byte, 0, signedSize)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, ReportVersion)
	b = append(b, r.Measurement[:]...)
	b = append(b, r.ReportData[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixMilli()))
	if r.Debug {
		return append(b, 1)
	}
	return append(b, 0)
}

// Marshal returns the report's encoding.
func (r *Report) Marshal() []byte { return append(r.signed(), r.Signature[:]...) }

// ParseReport parses an encoded report without checking its signature.
func ParseReport(b []byte) (*Report, error) {
	if len(b) != ReportSize {
		return nil, fmt.Errorf("simulated report: length: found %d bytes, want %d", len(b), ReportSize)
	}
	if string(b[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("simulated report: magic: found %q, want %q", b[:len(Magic)], Magic)
	}
	b = b[len(Magic):]
	if v := binary.BigEndian.Uint16(b); v != ReportVersion {
		return nil, fmt.Errorf("simulated report: version: found %d, want %d", v, ReportVersion)
	}
	b = b[2:]
	var r Report
	b = b[copy(r.Measurement[:], b):]
	b = b[copy(r.ReportData[:], b):]
	ms := binary.BigEndian.Uint64(b)
	if ms == 0 || ms > 1<<62 {
		return nil, fmt.Errorf("simulated report: timestamp: found %d, want a positive number of milliseconds", ms)
	}
	r.Timestamp = time.UnixMilli(int64(ms)).UTC()
	b = b[8:]
	switch b[0] {
	case 0:
	case 1:
		r.Debug = true
	default:
		return nil, fmt.Errorf("simulated report: debug: found %d, want 0 or 1", b[0])
	}
	copy(r.Signature[:], b[1:])
	return &r, nil
}

func rootKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(rootSeedLabel))
	return ed25519.NewKeyFromSeed(seed[:])
}

// RootPublicKey returns the development root's public key, the pin for
// simulated evidence.
func RootPublicKey() ed25519.PublicKey { return rootKey().Public().(ed25519.PublicKey) }

// Verify parses raw and checks its signature under root.
func Verify(raw []byte, root ed25519.PublicKey) (*Report, error) {
	r, err := ParseReport(raw)
	if err != nil {
		return nil, err
	}
	if len(root) != ed25519.PublicKeySize || !ed25519.Verify(root, r.signed(), r.Signature[:]) {
		return nil, ErrSignature
	}
	return r, nil
}

// Device is the simulated TEE's collection side. INSECURE.
type Device struct {
	key         ed25519.PrivateKey
	measurement [MeasurementSize]byte
	now         func() time.Time
	debug       bool
}

// DeviceConfig configures a simulated Device.
type DeviceConfig struct {
	// Measurement is what the device reports the guest to be; workers put
	// a hash of their own binary here. The zero value reports all zeros.
	Measurement [MeasurementSize]byte
	// Now stamps reports. Nil means time.Now.
	Now func() time.Time
	// Debug sets the report's debug flag, as a debug TD or guest would.
	Debug bool
	// SigningKey overrides the development root, for tests that need
	// evidence under another root. Nil means the development root.
	SigningKey ed25519.PrivateKey
}

// NewDevice returns a simulated TEE device. INSECURE.
func NewDevice(cfg DeviceConfig) *Device {
	d := &Device{key: cfg.SigningKey, measurement: cfg.Measurement, now: cfg.Now, debug: cfg.Debug}
	if d.key == nil {
		d.key = rootKey()
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d
}

// Report returns a signed report carrying reportData.
func (d *Device) Report(reportData [ReportDataSize]byte) []byte {
	r := Report{Measurement: d.measurement, ReportData: reportData, Timestamp: d.now(), Debug: d.debug}
	copy(r.Signature[:], ed25519.Sign(d.key, r.signed()))
	return r.Marshal()
}
