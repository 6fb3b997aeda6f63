package nvgpu_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/internal/testenv"
	"github.com/sealgate/sealgate/proto"
)

// The recorded H100 evidence in ../shared/fixtures/nvidia (see its
// README): google/go-nvattest-tools' test data, verified by that
// module's tests at 2025-09-01T01:00:00Z. It is read in place, never
// copied into the repository.
var (
	recordedAt    = time.Date(2025, 9, 1, 1, 0, 0, 0, time.UTC)
	recordedNonce = mustHex32("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
	// The device chain's OCSP responses were produced at
	// 2025-08-21T06:47:07Z with a nextUpdate a day later; the RIM chains'
	// at 2025-10-24T11:32:21Z, also for a day. No single instant has both
	// current, and neither window holds recordedAt.
	deviceOCSPAt = time.Date(2025, 8, 21, 12, 0, 0, 0, time.UTC)
	rimOCSPAt    = time.Date(2025, 10, 24, 12, 0, 0, 0, time.UTC)
)

func mustHex32(s string) [32]byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		panic("bad nonce " + s)
	}
	return [32]byte(b)
}

// recorded is the shared NVIDIA fixture folder, or the test skips (fails
// under CI=true).
func recorded(t testing.TB) string {
	t.Helper()
	return testenv.Shared(t, "fixtures/nvidia")
}

// sharedDir is where the shared NVIDIA fixtures are expected.
func sharedDir(t testing.TB) string {
	return filepath.Join(filepath.Dir(testenv.RepoRoot(t)), "shared", "fixtures", "nvidia")
}

// seedRecorded reports whether the recorded evidence is there, for fuzz
// seeds, which use it when they can and do without it otherwise.
func seedRecorded(t testing.TB) bool {
	_, err := os.Stat(sharedDir(t))
	return err == nil
}

func readShared(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemCerts(t testing.TB, raw []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		t.Fatal("no PEM certificates")
	}
	return out
}

func ocspFile(t testing.TB, dir, name string) []byte {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(readShared(t, dir, filepath.Join("ocsp", name)))))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// recordedEvidence assembles the recorded H100 evidence, with the device
// chain's and the RIM chains' OCSP responses when asked.
func recordedEvidence(t testing.TB, deviceOCSP, rimOCSP bool) *nvgpu.Evidence {
	t.Helper()
	dir := recorded(t)
	e := &nvgpu.Evidence{
		Report:    readShared(t, dir, "test_raw_gpu_attestation_report.dat"),
		CertChain: pemCerts(t, readShared(t, dir, "test_gpu_attestation_certificate_chain.dat")),
		DriverRIM: readShared(t, dir, "rim/NV_GPU_DRIVER_GH100_550.90.07.xml"),
		VBIOSRIM:  readShared(t, dir, "rim/NV_GPU_VBIOS_1010_0200_882_96009F0001.xml"),
	}
	if deviceOCSP {
		for _, l := range []string{"l2", "l3", "l4"} {
			e.OCSP = append(e.OCSP, ocspFile(t, dir, "test_gpu_certificate_"+l+"_base64encoded_ocsp_response.dat"))
		}
	}
	if rimOCSP {
		for _, f := range []string{"test_gpu_rim_l2", "test_gpu_driver_rim_l3", "test_gpu_driver_rim_l4", "test_gpu_vbios_l4"} {
			e.RIMOCSP = append(e.RIMOCSP, ocspFile(t, dir, f+"_base64encoded_ocsp_response.dat"))
		}
	}
	return e
}

func encode(t testing.TB, e *nvgpu.Evidence) []byte {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPinnedRootIsNVIDIAs(t *testing.T) {
	dir := recorded(t)
	want := pemCerts(t, readShared(t, dir, "device_root.pem"))[0]
	if !bytes.Equal(nvgpu.DeviceRootCA().Raw, want) {
		t.Fatal("the pinned device root is not the recorded device_root.pem")
	}
	chain := pemCerts(t, readShared(t, dir, "test_gpu_attestation_certificate_chain.dat"))
	if !bytes.Equal(chain[len(chain)-1], want) {
		t.Fatal("the recorded chain does not end at device_root.pem")
	}
}

// TestRecordedReport checks the recorded report's layout against the
// fixture README and that it round-trips.
func TestRecordedReport(t *testing.T) {
	raw := readShared(t, recorded(t), "test_raw_gpu_attestation_report.dat")
	r, err := nvgpu.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Nonce != recordedNonce {
		t.Errorf("nonce %x", r.Nonce)
	}
	if len(r.Measurements) != 64 || r.Measurements[0].Index != 1 || r.Measurements[63].Index != 64 {
		t.Errorf("%d blocks", len(r.Measurements))
	}
	for _, b := range r.Measurements {
		if len(b.Value) != 48 || b.ValueType != 1 {
			t.Errorf("block %d: type %d, %d bytes", b.Index, b.ValueType, len(b.Value))
		}
	}
	if r.DriverVersion != "550.90.07" || r.VBIOSVersion != "96.00.9f.00.01" {
		t.Errorf("driver %q vbios %q", r.DriverVersion, r.VBIOSVersion)
	}
	if r.Mode != nvgpu.ModeLegacy || r.CCMode {
		t.Errorf("mode %s, cc mode %v: the recorded report has no feature flag", r.Mode, r.CCMode)
	}
	if !r.NVDEC0Disabled || len(r.FWID) != 48 {
		t.Errorf("nvdec0 disabled %v, fwid %x", r.NVDEC0Disabled, r.FWID)
	}
	// README: the response starts after the 37-byte request; its opaque
	// data at response offset 3562, 422 bytes; the response is 4080 bytes
	// with its 96-byte signature.
	if got := len(r.SignedBytes); got != nvgpu.RequestSize+3562+422 {
		t.Errorf("signed bytes %d", got)
	}
	if len(raw) != nvgpu.RequestSize+4080 || len(r.Signature) != 96 {
		t.Errorf("report %d bytes, signature %d", len(raw), len(r.Signature))
	}
	again, err := r.Marshal()
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("marshal does not give back the report: %v", err)
	}
	chain := pemCerts(t, readShared(t, recorded(t), "test_gpu_attestation_certificate_chain.dat"))
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckSignature(leaf); err != nil {
		t.Fatalf("recorded report signature: %v", err)
	}
}

// TestRecordedVerdicts are the verdicts on the recorded H100 evidence.
func TestRecordedVerdicts(t *testing.T) {
	// A nonce of ours: GPU 0's of a bundle we made.
	ours := proto.GPUNonce([32]byte{0x5e, 0xa1}, 0)
	tests := []struct {
		name                 string
		deviceOCSP, rimOCSP  bool
		at                   time.Time
		nonce                [32]byte
		requireOCSP          bool
		wantCode             check.Code
		wantField            string
		wantOCSP             bool
		wantNextUpdateBefore time.Time
	}{
		{name: "at the readme time without ocsp", at: recordedAt, nonce: recordedNonce, wantCode: ""},
		{name: "at the readme time, ocsp required but not carried", at: recordedAt, nonce: recordedNonce, requireOCSP: true,
			wantCode: check.CodeRevoked, wantField: "ocsp gpu certificate"},
		{name: "at the readme time the device ocsp responses are stale", deviceOCSP: true, at: recordedAt, nonce: recordedNonce,
			wantCode: check.CodeCollateralExpired, wantField: "ocsp gpu certificate"},
		{name: "device ocsp inside its window", deviceOCSP: true, at: deviceOCSPAt, nonce: recordedNonce,
			// OCSP is checked for the device chain but not complete: the
			// RIM chains' responses are not current then.
			wantOCSP: false, wantNextUpdateBefore: deviceOCSPAt.Add(24 * time.Hour)},
		{name: "rim ocsp inside its window", rimOCSP: true, at: rimOCSPAt, nonce: recordedNonce,
			wantNextUpdateBefore: rimOCSPAt.Add(24 * time.Hour)},
		{name: "rim ocsp at the readme time is not yet valid", rimOCSP: true, at: recordedAt, nonce: recordedNonce,
			wantCode: check.CodeCollateralExpired, wantField: "rim"},
		{name: "our nonce", deviceOCSP: true, at: deviceOCSPAt, nonce: ours,
			wantCode: check.CodeBinding, wantField: "gpu nonce"},
		{name: "our nonce at the readme time", at: recordedAt, nonce: ours,
			wantCode: check.CodeBinding, wantField: "gpu nonce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := encode(t, recordedEvidence(t, tc.deviceOCSP, tc.rimOCSP))
			c, err := nvgpu.Verify(ev, nvgpu.Options{Now: tc.at, Nonce: tc.nonce, RequireOCSP: tc.requireOCSP})
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.DriverVersion != "550.90.07" || c.VBIOSVersion != "96.00.9f.00.01" || len(c.MismatchedIndexes) != 0 {
					t.Fatalf("claims %+v", c)
				}
				if c.OCSPChecked != tc.wantOCSP {
					t.Fatalf("ocsp checked %v", c.OCSPChecked)
				}
				if !tc.wantNextUpdateBefore.IsZero() && c.NextUpdate.After(tc.wantNextUpdateBefore) {
					t.Fatalf("next update %s", c.NextUpdate)
				}
				t.Logf("ok: model %s, serial %s, driver rim %s, vbios rim %s, next update %s", c.DeviceModel, c.DeviceSerial, c.DriverRIMID, c.VBIOSRIMID, c.NextUpdate)
				return
			}
			var e *check.Error
			if !asCheck(err, &e) || e.Code != tc.wantCode || !contains(e.Field, tc.wantField) {
				t.Fatalf("Verify: %v, want %s %q", err, tc.wantCode, tc.wantField)
			}
			t.Logf("%s: %v", e.Code, err)
		})
	}
}

// TestRecordedMeasurementsMatchRIMs checks every active golden value of
// the real RIMs against the real report, the step Verify relies on.
func TestRecordedMeasurementsMatchRIMs(t *testing.T) {
	ev := encode(t, recordedEvidence(t, false, false))
	c, err := nvgpu.Verify(ev, nvgpu.Options{Now: recordedAt, Nonce: recordedNonce})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Measurements) != 64 || len(c.MismatchedIndexes) != 0 {
		t.Fatalf("%d blocks, mismatches %v", len(c.Measurements), c.MismatchedIndexes)
	}
	// Swap the RIMs: each is then checked against the other's version.
	e := recordedEvidence(t, false, false)
	e.DriverRIM, e.VBIOSRIM = e.VBIOSRIM, e.DriverRIM
	_, err = nvgpu.Verify(encode(t, e), nvgpu.Options{Now: recordedAt, Nonce: recordedNonce})
	if check.CodeOf(err) != check.CodePolicy {
		t.Fatalf("swapped rims: %v", err)
	}
}

// TestRecordedChainToUnpinnedRoot verifies the real chain against a pool
// without NVIDIA's root.
func TestRecordedChainToUnpinnedRoot(t *testing.T) {
	ev := encode(t, recordedEvidence(t, false, false))
	_, err := nvgpu.Verify(ev, nvgpu.Options{Now: recordedAt, Nonce: recordedNonce, DeviceRoots: x509.NewCertPool()})
	if check.CodeOf(err) != check.CodeChain {
		t.Fatalf("Verify: %v, want chain", err)
	}
}

// TestRecordedFlipEveryByte flips one bit of every byte of the real
// report in turn (the signed request and response, then the signature)
// and requires the report check (parse, signature by the chain's leaf,
// nonce) to refuse it.
func TestRecordedFlipEveryByte(t *testing.T) {
	dir := recorded(t)
	raw := readShared(t, dir, "test_raw_gpu_attestation_report.dat")
	leaf, err := x509.ParseCertificate(pemCerts(t, readShared(t, dir, "test_gpu_attestation_certificate_chain.dat"))[0])
	if err != nil {
		t.Fatal(err)
	}
	flipAll(t, raw, func(b []byte) error { return reportCheck(b, leaf, recordedNonce) })
}

// reportCheck is the report part of Verify: parse, signature, nonce.
func reportCheck(raw []byte, leaf *x509.Certificate, nonce [32]byte) error {
	r, err := nvgpu.ParseReport(raw)
	if err != nil {
		return err
	}
	if err := r.CheckSignature(leaf); err != nil {
		return err
	}
	if r.Nonce != nonce {
		return check.Fail(check.CodeBinding, "gpu nonce", "", "")
	}
	return nil
}

// flipAll flips bit 0 of each byte of raw in turn (every 17th in short
// and race runs) and requires verify to refuse every result.
func flipAll(t *testing.T, raw []byte, verify func([]byte) error) {
	t.Helper()
	if err := verify(raw); err != nil {
		t.Fatalf("unflipped: %v", err)
	}
	codes := map[check.Code]int{}
	step := 1
	if testing.Short() || raceEnabled {
		step = 17
	}
	for i := 0; i < len(raw); i += step {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		err := verify(b)
		if err == nil {
			t.Errorf("flipping bit 0 of byte %d (%#x) is accepted", i, i)
			continue
		}
		codes[check.CodeOf(err)]++
	}
	t.Logf("%d-byte report, every %d, flips refused: %v", len(raw), step, codes)
}

// TestRecordedPolicy is the recorded evidence under GPU rules: its report
// has no feature flag (legacy opaque data), so it does not state CC mode
// and default rules refuse it; rules that allow CC mode off accept it.
func TestRecordedPolicy(t *testing.T) {
	c, err := nvgpu.Verify(encode(t, recordedEvidence(t, true, false)), nvgpu.Options{Now: deviceOCSPAt, Nonce: recordedNonce})
	if err != nil {
		t.Fatal(err)
	}
	if c.OCSPChecked {
		t.Fatal("ocsp checked without the rims' ocsp responses")
	}
	no := false
	rules := policy.GPURules{MinDriverVersion: "550.90.07", MinVBIOSVersion: "96.00.9f.00.01", RequireOCSP: &no}
	err = nvgpu.Validate(c, &rules)
	var e *check.Error
	if !asCheck(err, &e) || e.Code != check.CodePolicy || e.Field != "cc_mode" {
		t.Fatalf("Validate: %v, want policy cc_mode", err)
	}
	t.Logf("default rules: %v", err)
	rules.AllowCCModeOff = true
	if err := nvgpu.Validate(c, &rules); err != nil {
		t.Fatalf("with allow_cc_mode_off: %v", err)
	}
	rules.MinDriverVersion = "550.127.05"
	if err := nvgpu.Validate(c, &rules); check.CodeOf(err) != check.CodePolicy {
		t.Fatalf("driver below minimum: %v", err)
	}
}

// TestRecordedFlipChainAndRIMs flips bit 0 of bytes of the recorded
// certificate chain and RIMs and requires Verify (at the README time,
// without OCSP) to refuse each: every byte of the leaf certificate, and,
// to keep the run short, every 11th byte of the other certificates and
// every 61st of the RIMs (each RIM check is an XML-DSig verification).
// RIM flips must fail in that RIM's check.
func TestRecordedFlipChainAndRIMs(t *testing.T) {
	e := recordedEvidence(t, false, false)
	opts := nvgpu.Options{Now: recordedAt, Nonce: recordedNonce}
	type flip struct {
		what string
		mut  func(*nvgpu.Evidence) []byte // the field to flip in
		step int
		want string // a prefix of the failing field, or ""
		// tolerate reports a byte whose flip may be accepted; nil means
		// none may.
		tolerate func(int) bool
	}
	var flips []flip
	for i := range e.CertChain {
		step := 11
		if i == 0 {
			step = 1
		}
		flips = append(flips, flip{fmt.Sprintf("certificate %d", i), func(e *nvgpu.Evidence) []byte { return e.CertChain[i] }, step, "", nil})
	}
	flips = append(flips,
		flip{"driver rim", func(e *nvgpu.Evidence) []byte { return e.DriverRIM }, 61, "driver rim", nil},
		flip{"vbios rim", func(e *nvgpu.Evidence) []byte { return e.VBIOSRIM }, 61, "vbios rim", nil})
	if testing.Short() || raceEnabled {
		for i := range flips {
			flips[i].step *= 7
		}
	}
	for _, f := range flips {
		t.Run(f.what, func(t *testing.T) {
			n := len(f.mut(e))
			var (
				mu        sync.Mutex // guards codes and tolerated
				codes     = map[check.Code]int{}
				tolerated int
				wg        sync.WaitGroup
			)
			const workers = 2
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w * f.step; i < n; i += workers * f.step {
						c := cloneEvidence(e)
						f.mut(c)[i] ^= 0x01
						_, err := nvgpu.Verify(encode(t, c), opts)
						var ce *check.Error
						switch {
						case err == nil && f.tolerate != nil && f.tolerate(i):
							mu.Lock()
							tolerated++
							mu.Unlock()
						case err == nil:
							t.Errorf("flipping bit 0 of byte %d is accepted", i)
						case !asCheck(err, &ce):
							t.Errorf("byte %d: %v is not a *check.Error", i, err)
						case f.want != "" && !strings.HasPrefix(ce.Field, f.want):
							t.Errorf("byte %d: %v, want a %s failure", i, err, f.want)
						default:
							mu.Lock()
							codes[ce.Code]++
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			t.Logf("%d bytes, flips refused by code: %v", n, codes)
			if tolerated > 0 {
				t.Errorf("%d flips were tolerated", tolerated)
			}
		})
	}
}

func cloneEvidence(e *nvgpu.Evidence) *nvgpu.Evidence {
	c := *e
	c.CertChain = make([][]byte, len(e.CertChain))
	for i, d := range e.CertChain {
		c.CertChain[i] = bytes.Clone(d)
	}
	c.DriverRIM, c.VBIOSRIM, c.Report = bytes.Clone(e.DriverRIM), bytes.Clone(e.VBIOSRIM), bytes.Clone(e.Report)
	return &c
}
