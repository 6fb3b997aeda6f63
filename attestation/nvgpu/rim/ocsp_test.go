package rim_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
	"golang.org/x/crypto/ocsp"
)

// TestOCSPTestdata drives the committed OCSP responses about the fixture
// signing certificate.
func TestOCSPTestdata(t *testing.T) {
	p := fixturePKI(t)
	raw := testdata(t, "driver.xml")
	opts := func(resp string, require bool) rim.Options {
		return rim.Options{Now: testdataNow, Roots: p.Roots(), OCSP: [][]byte{testdata(t, resp)}, RequireOCSP: require}
	}
	r := verified(t, raw, opts("ocsp_leaf_good.der", true))
	if want := testdataNow.Add(7 * 24 * time.Hour); !r.NextUpdate.Equal(want) {
		t.Errorf("NextUpdate %v, want the response's next update %v", r.NextUpdate, want)
	}
	for _, require := range []bool{false, true} {
		_, err := rim.Verify(raw, opts("ocsp_leaf_revoked.der", require))
		if e := wantCode(t, err, check.CodeRevoked); !strings.Contains(e.Found, "revoked") {
			t.Errorf("revoked: %v", err)
		}
		_, err = rim.Verify(raw, opts("ocsp_leaf_unknown.der", require))
		if e := wantCode(t, err, check.CodeRevoked); !strings.Contains(e.Found, "unknown") {
			t.Errorf("unknown: %v", err)
		}
	}
	// The vbios RIM has the same signing certificate.
	_, err := rim.Verify(testdata(t, "vbios.xml"), opts("ocsp_leaf_revoked.der", false))
	wantCode(t, err, check.CodeRevoked)
}

func TestOCSP(t *testing.T) {
	p := fixturePKI(t)
	other := rimtest.NewPKI("another fixture PKI", testdataNow)
	raw := testdata(t, "driver.xml")
	now := testdataNow
	this, next := now.Add(-time.Hour), now.Add(24*time.Hour)
	responder, responderKey := p.Responder(true, now.Add(-time.Hour), now.Add(2*time.Hour))
	noEKU, noEKUKey := p.Responder(false, now.Add(-time.Hour), now.Add(2*time.Hour))
	expired, expiredKey := p.Responder(true, now.Add(-48*time.Hour), now.Add(-time.Hour))
	good := p.OCSP(t, p.Leaf, ocsp.Good, this, next)
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1

	for _, tc := range []struct {
		name    string
		resps   [][]byte
		require bool
		code    check.Code // "" for success
		field   string
		next    time.Time // NextUpdate on success
	}{
		{name: "none", next: p.Leaf.NotAfter},
		{name: "none, required", require: true, code: check.CodeRevoked, field: "ocsp signing chain[0]"},
		{name: "good", resps: [][]byte{good}, require: true, next: next},
		{name: "good twice", resps: [][]byte{good, good}, require: true, next: next},
		{name: "revoked", resps: [][]byte{good, p.OCSP(t, p.Leaf, ocsp.Revoked, this, next)}, code: check.CodeRevoked, field: "ocsp[1]"},
		{name: "revoked, stale", resps: [][]byte{p.OCSP(t, p.Leaf, ocsp.Revoked, now.Add(-48*time.Hour), now.Add(-24*time.Hour))}, code: check.CodeRevoked, field: "ocsp[0]"},
		{name: "unknown", resps: [][]byte{p.OCSP(t, p.Leaf, ocsp.Unknown, this, next)}, code: check.CodeRevoked, field: "ocsp[0]"},
		{name: "not yet valid", resps: [][]byte{p.OCSP(t, p.Leaf, ocsp.Good, now.Add(time.Minute), next)}, code: check.CodeCollateralExpired, field: "ocsp[0] this update"},
		{name: "past its next update", resps: [][]byte{p.OCSP(t, p.Leaf, ocsp.Good, now.Add(-48*time.Hour), now)}, code: check.CodeCollateralExpired, field: "ocsp[0] next update"},
		{name: "no next update", resps: [][]byte{rimtest.OCSP(t, p.Leaf, p.Root, p.RootKey, rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this})}, code: check.CodeCollateralExpired, field: "ocsp[0] next update"},
		{name: "tampered", resps: [][]byte{tampered}, code: check.CodeSignature, field: "ocsp[0]"},
		{name: "malformed", resps: [][]byte{[]byte("not ocsp")}, code: check.CodeMalformed, field: "ocsp[0]"},
		{name: "too large", resps: [][]byte{append(bytes.Clone(good), make([]byte, rim.MaxOCSPSize)...)}, code: check.CodeMalformed, field: "ocsp[0]"},
		{name: "too many", resps: slices.Repeat([][]byte{good}, rim.MaxOCSPResponses+1), code: check.CodeMalformed, field: "ocsp"},
		{name: "delegated responder", resps: [][]byte{rimtest.OCSP(t, p.Leaf, p.Root, responderKey, rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this, NextUpdate: next, Responder: responder})}, require: true, next: responder.NotAfter},
		{name: "responder without the OCSPSigning usage", resps: [][]byte{rimtest.OCSP(t, p.Leaf, p.Root, noEKUKey, rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this, NextUpdate: next, Responder: noEKU})}, code: check.CodeSignature, field: "ocsp[0] responder"},
		{name: "expired responder", resps: [][]byte{rimtest.OCSP(t, p.Leaf, p.Root, expiredKey, rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this, NextUpdate: next, Responder: expired})}, code: check.CodeCollateralExpired, field: "ocsp[0] responder"},
		{name: "naming our root, signed by another", resps: [][]byte{rimtest.OCSP(t, p.Leaf, p.Root, other.RootKey, rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this, NextUpdate: next})}, code: check.CodeSignature, field: "ocsp[0]"},
		{name: "responder of another root", resps: [][]byte{rimtest.OCSP(t, p.Leaf, p.Root, other.LeafKey, rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this, NextUpdate: next, Responder: other.Leaf})}, code: check.CodeSignature, field: "ocsp[0]"},
		// Responses about other certificates are ignored: another CA's
		// certificate, and our serial number under another issuer.
		{name: "about another chain", resps: [][]byte{other.OCSP(t, other.Leaf, ocsp.Revoked, this, next)}, next: p.Leaf.NotAfter},
		{name: "about another chain, required", resps: [][]byte{other.OCSP(t, other.Leaf, ocsp.Good, this, next)}, require: true, code: check.CodeRevoked, field: "ocsp signing chain[0]"},
		{name: "our serial under another issuer", resps: [][]byte{rimtest.OCSP(t, p.Leaf, other.Root, other.RootKey, rimtest.OCSPResponse{Status: ocsp.Revoked, ThisUpdate: this, NextUpdate: next, RevokedAt: this})}, next: p.Leaf.NotAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := rim.Verify(raw, rim.Options{Now: now, Roots: p.Roots(), OCSP: tc.resps, RequireOCSP: tc.require})
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !r.NextUpdate.Equal(tc.next) {
					t.Errorf("NextUpdate %v, want %v", r.NextUpdate, tc.next)
				}
				return
			}
			if e := wantCode(t, err, tc.code); e.Field != tc.field {
				t.Fatalf("field %q (%v), want %q", e.Field, err, tc.field)
			}
		})
	}
}
