// Package nvgputest builds synthetic NVIDIA GPU evidence for tests: a
// fixture PKI shaped like NVIDIA's (a device identity root CA, two
// intermediate CAs, a device certificate and a P-384 attestation leaf
// carrying the firmware ID), delegated OCSP responders with their
// responses, SPDM 1.1 GET_MEASUREMENTS reports with a chosen nonce,
// driver and VBIOS versions, confidential-computing mode and measurement
// blocks, and driver and VBIOS RIMs signed by a fixture RIM CA through
// package rimtest. Keys come from a seed and every signature is
// deterministic (RFC 6979), so the same inputs give the same bytes.
//
// The fixture names say "sealgate nvgputest", not NVIDIA: nothing here
// verifies under NVIDIA's roots, only where a test passes the fixture
// roots in nvgpu.Options.
//
// TEST-ONLY. Production code never imports this package.
package nvgputest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/sealgate/sealgate/internal/fixturekey"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
	"github.com/sealgate/sealgate/attestation/policy"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// DeriveKey returns a P-384 key derived from seed and label.
func DeriveKey(seed, label string) *ecdsa.PrivateKey {
	return fixturekey.ECDSA(elliptic.P384(), "nvgputest", seed, label)
}

func serial(seed, label string) *big.Int { return fixturekey.Serial("nvgputest", seed, label, 16) }

// Issued is a certificate and its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Signer returns the key as a deterministic crypto.Signer.
func (i Issued) Signer() crypto.Signer { return rimtest.Deterministic(i.Key) }

// PKI is a fixture certificate hierarchy shaped like NVIDIA's: a device
// root, an identity CA, a provisioner CA, the GPU's device certificate,
// the attestation leaf that signs reports, an OCSP responder delegated by
// each CA; and a RIM root, RIM CA and RIM signing certificate with their
// responders.
type PKI struct {
	Root, Identity, Provisioner, Device, Leaf Issued
	// Responders[c] is the OCSP responder the CA c delegated, keyed by
	// the CA's common name.
	Responders map[string]Issued

	RIMRoot, RIMCA, RIMSigner Issued
	// FWID is the firmware ID in the leaf's TCG DICE FWID extension.
	FWID [48]byte
}

// Fixture subject names.
const (
	RootName        = "sealgate nvgputest Device Identity CA"
	IdentityName    = "sealgate nvgputest GH100 Identity"
	ProvisionerName = "sealgate nvgputest GH100 Provisioner ICA 1"
	DeviceName      = "sealgate nvgputest GH100 A01 GSP BROM"
	LeafName        = "sealgate nvgputest GH100 A01 GSP FMC LF"
	RIMRootName     = "sealgate nvgputest RIM Root CA"
	RIMCAName       = "sealgate nvgputest Reference Value GH100 CA"
	RIMSignerName   = "sealgate nvgputest Reference Value GH100 Signer"
)

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"sealgate test fixtures"}}
}

// NewPKI derives a fixture PKI from seed. Certificates are valid from
// notBefore: the CAs, the device certificate and the leaf for 25 years,
// the OCSP responders and the RIM signing certificate for 3.
func NewPKI(seed string, notBefore time.Time) (*PKI, error) {
	notBefore = notBefore.UTC().Truncate(time.Second)
	p := &PKI{Responders: map[string]Issued{}, FWID: sha512.Sum384([]byte("sealgate nvgputest fwid " + seed))}
	issue := func(label, cn string, parent *Issued, years int, t x509.Certificate) (Issued, error) {
		key := DeriveKey(seed, label)
		t.SerialNumber = serial(seed, label)
		t.Subject = name(cn)
		t.NotBefore, t.NotAfter = notBefore, notBefore.AddDate(years, 0, 0)
		t.SubjectKeyId = keyID(&key.PublicKey)
		parentCert, parentKey := &t, key
		if parent != nil {
			parentCert, parentKey = parent.Cert, parent.Key
		}
		der, err := x509.CreateCertificate(nil, &t, parentCert, &key.PublicKey, parentKey)
		if err != nil {
			return Issued{}, fmt.Errorf("nvgputest: %s: %w", cn, err)
		}
		c, err := x509.ParseCertificate(der)
		return Issued{c, key}, err
	}
	ca := func(pathLen int) x509.Certificate {
		return x509.Certificate{
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true, MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0,
			OCSPServer: []string{"https://sealgate.invalid/nvgputest/ocsp"},
		}
	}
	responder := func(caLabel string, parent *Issued) error {
		r, err := issue(caLabel+" ocsp responder", "sealgate nvgputest OCSP Responder "+parent.Cert.Subject.CommonName, parent, 3, x509.Certificate{
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		})
		p.Responders[parent.Cert.Subject.CommonName] = r
		return err
	}
	fwidExt, err := fwidExtension(DeriveKey(seed, "leaf"), p.FWID[:])
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		func() (err error) { p.Root, err = issue("root", RootName, nil, 25, ca(-1)); return },
		func() (err error) { p.Identity, err = issue("identity", IdentityName, &p.Root, 25, ca(-1)); return },
		func() (err error) {
			p.Provisioner, err = issue("provisioner", ProvisionerName, &p.Identity, 25, ca(-1))
			return
		},
		func() (err error) { p.Device, err = issue("device", DeviceName, &p.Provisioner, 25, ca(0)); return },
		func() (err error) {
			p.Leaf, err = issue("leaf", LeafName, &p.Device, 25, x509.Certificate{
				KeyUsage:        x509.KeyUsageDigitalSignature,
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1}, Value: fwidExt}},
			})
			return
		},
		func() error { return responder("root", &p.Root) },
		func() error { return responder("identity", &p.Identity) },
		func() error { return responder("provisioner", &p.Provisioner) },
		func() (err error) { p.RIMRoot, err = issue("rim root", RIMRootName, nil, 25, ca(-1)); return },
		func() (err error) { p.RIMCA, err = issue("rim ca", RIMCAName, &p.RIMRoot, 25, ca(0)); return },
		func() (err error) {
			p.RIMSigner, err = issue("rim signer", RIMSignerName, &p.RIMCA, 3, x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature})
			return
		},
		func() error { return responder("rim root", &p.RIMRoot) },
		func() error { return responder("rim ca", &p.RIMCA) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func keyID(pub *ecdsa.PublicKey) []byte { return fixturekey.SubjectKeyID(pub) }

// fwidExtension encodes the leaf's TCG DICE FWID extension the way
// NVIDIA's Hopper leaves carry it: SEQUENCE { INTEGER 1,
// SubjectPublicKeyInfo, SEQUENCE { sha-384 OID, OCTET STRING fwid } },
// with the FWID as its last 48 bytes.
func fwidExtension(key *ecdsa.PrivateKey, fwid []byte) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2})
			b.AddASN1OctetString(fwid)
		})
	})
	return b.Bytes()
}

// DeviceRoots returns a pool holding the fixture device root, for
// nvgpu.Options.DeviceRoots.
func (p *PKI) DeviceRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root.Cert)
	return pool
}

// RIMRoots returns a pool holding the fixture RIM root, for
// nvgpu.Options.RIMRoots.
func (p *PKI) RIMRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.RIMRoot.Cert)
	return pool
}

// Chain returns the device certificate chain as a GPU supplies it: leaf
// first, up to the root, DER.
func (p *PKI) Chain() [][]byte {
	return [][]byte{p.Leaf.Cert.Raw, p.Device.Cert.Raw, p.Provisioner.Cert.Raw, p.Identity.Cert.Raw, p.Root.Cert.Raw}
}

// RIMChain is the RIM signing chain the RIMs carry: signer, CA, root.
func (p *PKI) RIMChain() []*x509.Certificate {
	return []*x509.Certificate{p.RIMSigner.Cert, p.RIMCA.Cert, p.RIMRoot.Cert}
}

// OCSPResponse returns a DER OCSP response about cert, which issuer
// issued, with status ocsp.Good, ocsp.Revoked (revoked a day before
// thisUpdate, key compromise) or ocsp.Unknown, valid from thisUpdate to
// nextUpdate, signed by the responder issuer delegated (and carrying its
// certificate), through rimtest.OCSP: SHA-384 CertID hashes as NVIDIA's
// responders use, producedAt = thisUpdate, so the bytes are
// deterministic.
func (p *PKI) OCSPResponse(cert, issuer *x509.Certificate, status int, thisUpdate, nextUpdate time.Time) (out []byte, err error) {
	resp, ok := p.Responders[issuer.Subject.CommonName]
	if !ok {
		return nil, fmt.Errorf("nvgputest: no ocsp responder for %q", issuer.Subject.CommonName)
	}
	defer recoverInto(&err, "ocsp response for "+cert.Subject.CommonName)
	return rimtest.OCSP(panicTB{}, cert, issuer, resp.Signer(), rimtest.OCSPResponse{
		Status: status, ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
		RevokedAt: thisUpdate.Add(-24 * time.Hour), Reason: ocsp.KeyCompromise,
		Responder: resp.Cert,
	}), nil
}

// GPU is what a fixture report says.
type GPU struct {
	// DriverVersion, such as "550.90.07".
	DriverVersion string
	// VBIOSVersion in nvtrust's format, such as "96.00.9f.00.01".
	VBIOSVersion string
	// FeatureFlag is the opaque feature flag (0 SPT, 1 MPT, 2 PPCIE);
	// negative leaves the field out (a legacy report).
	FeatureFlag int
	// NVDEC0 is the NVDEC0 status byte (nvgpu.NVDEC0Enabled or
	// nvgpu.NVDEC0Disabled).
	NVDEC0 byte
	// Measurements are the 64 measurement blocks' values: block i+1 is
	// Measurements[i].
	Measurements [][]byte
	// FWID overrides the report's firmware ID; nil means the PKI's.
	FWID []byte
}

// Measurement returns a fixture measurement: SHA-384 of a label.
func Measurement(label string) []byte {
	h := sha512.Sum384([]byte("sealgate nvgputest measurement " + label))
	return h[:]
}

// NumBlocks is the number of measurement blocks of a fixture report, as
// on an H100.
const NumBlocks = 64

// DriverIndexes and VBIOSIndexes are the RIM indexes (block index - 1)
// the fixture driver and VBIOS RIMs cover; the other blocks are not
// compared, as NVIDIA's RIMs leave some indexes inactive.
var (
	DriverIndexes = []int{7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 35}
	VBIOSIndexes  = []int{0, 1, 2, 3, 4, 5, 6, 8, 32, 33, 34, 36}
)

// DefaultGPU is an H100 with driver 550.90.07 and VBIOS 96.00.9f.00.01
// in single-GPU passthrough CC mode with NVDEC0 enabled.
func DefaultGPU() GPU {
	g := GPU{DriverVersion: "550.90.07", VBIOSVersion: "96.00.9f.00.01", FeatureFlag: 0, NVDEC0: nvgpu.NVDEC0Enabled}
	for i := range NumBlocks {
		g.Measurements = append(g.Measurements, Measurement(fmt.Sprint("block ", i+1)))
	}
	return g
}

// DefaultRules are GPU rules the default GPU passes: driver at least
// 550.90.07, VBIOS at least 96.00.9f.00.01, CC mode and OCSP required.
func DefaultRules() policy.GPURules {
	return policy.GPURules{MinDriverVersion: "550.90.07", MinVBIOSVersion: "96.00.9f.00.01"}
}

// vbiosBytes encodes a version in nvtrust's format as the opaque field's
// 8 bytes: the inverse of nvgpu's formatting.
func vbiosBytes(v string) ([]byte, error) {
	parts := strings.Split(v, ".")
	if len(parts) != 5 {
		return nil, fmt.Errorf("nvgputest: vbios version %q, want 5 hex parts", v)
	}
	var p [5]byte
	for i, s := range parts {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != 1 {
			return nil, fmt.Errorf("nvgputest: vbios version %q, want 5 hex parts", v)
		}
		p[i] = b[0]
	}
	return []byte{p[3], p[2], p[1], p[0], p[4], 0, 0, 0}, nil
}

// Tamper selects one defect to build into evidence.
type Tamper int

// Evidence defects.
const (
	Intact Tamper = iota
	// BadSignature: the leaf signs other bytes than the report's.
	BadSignature
)

// Report returns a signed attestation report for g with nonce, signed by
// the PKI's leaf.
func (p *PKI) Report(g GPU, nonce [32]byte, tamper Tamper) ([]byte, error) {
	vb, err := vbiosBytes(g.VBIOSVersion)
	if err != nil {
		return nil, err
	}
	fwid := g.FWID
	if fwid == nil {
		fwid = p.FWID[:]
	}
	counts := make([]byte, 0, 4*len(g.Measurements))
	for range g.Measurements {
		counts = binary.LittleEndian.AppendUint32(counts, 1)
	}
	ascii := func(s string, n int) []byte { b := make([]byte, n); copy(b, s); return b }
	opaque := []nvgpu.OpaqueField{
		{Type: nvgpu.OpaqueVBIOSVersion, Value: vb},
		{Type: nvgpu.OpaqueBoardID, Value: []byte{0xb1, 0x03, 0, 0}},
		{Type: nvgpu.OpaqueChipSKU, Value: ascii("882", 9)},
		{Type: nvgpu.OpaqueChipSKUMod, Value: ascii("0", 5)},
		{Type: nvgpu.OpaqueProject, Value: ascii("1010", 5)},
		{Type: nvgpu.OpaqueProjectSKU, Value: ascii("0200", 5)},
		{Type: nvgpu.OpaqueProjectSKUMod, Value: []byte{0, 0}},
		{Type: nvgpu.OpaqueDriverVersion, Value: append([]byte(g.DriverVersion), 0)},
		{Type: nvgpu.OpaqueGPUInfo, Value: []byte{0x80, 0x01, 0, 0, 0, 0, 0, 0}},
		{Type: nvgpu.OpaqueMeasurementCounts, Value: counts},
		{Type: nvgpu.OpaqueNVDEC0Status, Value: []byte{g.NVDEC0}},
		{Type: nvgpu.OpaqueFWID, Value: fwid},
		{Type: nvgpu.OpaqueProtectedPCIeStatus, Value: []byte{0x55}},
	}
	if g.FeatureFlag >= 0 {
		opaque = append(opaque,
			nvgpu.OpaqueField{Type: nvgpu.OpaqueDataVersion, Value: []byte("1.0\x00")},
			nvgpu.OpaqueField{Type: nvgpu.OpaqueFeatureFlag, Value: []byte{byte(g.FeatureFlag)}})
	}
	r := &nvgpu.Report{
		Version: nvgpu.SPDMVersion, RequestParam1: 0x01, RequestParam2: 0xff, Nonce: nonce,
		ResponseNonce: sha256.Sum256(append([]byte("sealgate nvgputest responder nonce "), nonce[:]...)),
		Opaque:        opaque,
	}
	for i, v := range g.Measurements {
		r.Measurements = append(r.Measurements, nvgpu.Block{Index: i + 1, ValueType: 0x01, Value: v})
	}
	signed, err := r.MarshalSigned()
	if err != nil {
		return nil, err
	}
	msg := signed
	if tamper == BadSignature {
		msg = append([]byte("another report"), signed...)
	}
	digest := sha512.Sum384(msg)
	der, err := p.Leaf.Key.Sign(nil, digest[:], crypto.SHA384)
	if err != nil {
		return nil, err
	}
	var rr, ss big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&rr) || !seq.ReadASN1Integer(&ss) {
		return nil, fmt.Errorf("nvgputest: bad ecdsa signature encoding")
	}
	sig := make([]byte, nvgpu.SignatureSize)
	rr.FillBytes(sig[:48])
	ss.FillBytes(sig[48:])
	return append(signed, sig...), nil
}

// RIMSpec describes a fixture RIM: its identity and golden measurements.
type RIMSpec struct {
	ID, ColloquialVersion, Version string
	Measurements                   []rim.Measurement
}

// RIMs returns the driver and VBIOS RIM specs that describe g. Like
// NVIDIA's, both list every index (RIM index i is block i+1): the driver
// RIM marks DriverIndexes active and the VBIOS RIM VBIOSIndexes, with the
// block's own value as the golden one; inactive indexes carry zeros. RIM
// index 7 has a second, other alternative first, to exercise
// alternatives.
func RIMs(g GPU) (driver, vbios RIMSpec) {
	golden := func(active []int) []rim.Measurement {
		var out []rim.Measurement
		for ri, v := range g.Measurements {
			m := rim.Measurement{Index: ri, Size: len(v), Alternatives: [][]byte{make([]byte, len(v))}}
			if slices.Contains(active, ri) {
				m.Active = true
				m.Alternatives = [][]byte{v}
				if ri == 7 {
					m.Alternatives = [][]byte{Measurement("block 8, an older driver"), v}
				}
			}
			out = append(out, m)
		}
		return out
	}
	driver = RIMSpec{ID: "NV_GPU_DRIVER_GH100_" + g.DriverVersion, ColloquialVersion: g.DriverVersion, Version: g.DriverVersion, Measurements: golden(DriverIndexes)}
	vb := strings.ToUpper(g.VBIOSVersion)
	vbios = RIMSpec{ID: "NV_GPU_VBIOS_1010_0200_882_" + strings.ReplaceAll(vb, ".", ""), ColloquialVersion: vb, Version: vb, Measurements: golden(VBIOSIndexes)}
	return driver, vbios
}
