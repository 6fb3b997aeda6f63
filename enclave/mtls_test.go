package enclave

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// TestEnrollOverMutualTLS runs enrollment over real TLS sockets and then
// calls the worker as the gateway, as a stranger and as a client without a
// certificate.
func TestEnrollOverMutualTLS(t *testing.T) {
	pub, priv := testProviderKey(t)
	g := newFakeGateway(t, pub)
	var logs logBuffer
	var arms <-chan armed
	w := runWorker(t, g, priv, Config{Region: "eu-west", Models: []string{"textrank", "apertium"}, MaxConcurrent: 3, Logger: logs.logger()},
		func(w *Worker) { arms = hookWatchdog(w) })

	reg := g.nextRegistration(t)
	watch := nextArm(t, arms)
	if reg.WorkerID != "w-tls" || !strings.HasPrefix(reg.URL, "https://127.0.0.1:") || reg.Capacity != 3 || reg.Region != "eu-west" ||
		!slices.Equal(reg.Models, []string{"textrank", "apertium"}) || !slices.Equal(reg.Tasks, Builtin{}.Tasks()) {
		t.Fatalf("registration %+v", reg)
	}
	if reg.TLSPin != w.pin || reg.TLSPin == "" {
		t.Fatalf("registration pin %q, want the worker's %q", reg.TLSPin, w.pin)
	}
	b, err := proto.ParseBundle(reg.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, proto.EndorsementMessage(reg.WorkerID, b.KeysHash()), reg.Endorsement) {
		t.Fatal("endorsement does not verify under the provider key")
	}
	if !bytes.Equal(w.Bundle(), reg.Bundle) {
		t.Fatal("the registered bundle is not the current one")
	}
	gwCert := g.cert.Load()
	if pins := w.gatewayPinList(); len(pins) != 1 || pins[0] != tlspin.PinOf(gwCert.Leaf) {
		t.Fatalf("gateway pins %v, want the gateway certificate's", pins)
	}
	if watch.d != 2*3*time.Minute {
		t.Fatalf("watchdog armed for %v, want twice the default re-attestation interval", watch.d)
	}

	// The gateway, with its own certificate, is served.
	gw := client(t, gwCert, reg.TLSPin)
	resp, err := gw.Get(reg.URL + proto.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz over mutual TLS: status %d", resp.StatusCode)
	}
	req, fwd := sealTo(t, w, proto.TaskSummarize, []byte(`{"text":"Pinned gateways get served. Strangers do not.","sentences":1}`))
	resp, err = gw.Post(reg.URL+proto.PathServe, proto.MediaTypeForward, bytes.NewReader(fwd))
	if err != nil {
		t.Fatal(err)
	}
	if evs := events(t, req, resp.Body); resp.StatusCode != http.StatusOK || evs[len(evs)-1].Type != proto.EventEnd {
		t.Fatalf("serve over mutual TLS: status %d, events %v", resp.StatusCode, evs)
	}
	resp.Body.Close()

	// A client presenting another key, or none, fails the handshake.
	stranger, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	workerPin, _ := tlspin.ParsePin(reg.TLSPin)
	for name, tt := range map[string]struct {
		cert      *tls.Certificate
		wantAlert string
	}{
		"another key":    {&stranger, "bad certificate"},
		"no certificate": {nil, "certificate required"},
	} {
		c := client(t, tt.cert, reg.TLSPin)
		for _, path := range []string{proto.PathServe, proto.PathAttest, proto.PathQuote} {
			resp, err := c.Post(reg.URL+path, "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: POST %s answered %d, want a failed handshake", name, path, resp.StatusCode)
			}
		}
		// The same over a bare TLS connection, to see the worker's alert.
		conn, err := tls.Dial("tcp", strings.TrimPrefix(reg.URL, "https://"), tlspin.ClientConfig(tt.cert, workerPin))
		if err == nil {
			conn.SetDeadline(time.Now().Add(wait))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantAlert) {
			t.Fatalf("%s: %v, want the worker's %q alert", name, err, tt.wantAlert)
		}
	}

	// The stranger made the worker check the gateway's certificate, which
	// has not changed: the loop goes back to waiting, without enrolling.
	select {
	case <-g.probes:
	case <-time.After(wait):
		t.Fatal("an unpinned client did not make the worker check the gateway's certificate")
	}
	watch.fireNow(t)
	g.nextRegistration(t) // the watchdog's enrollment
	if n := len(g.regs); n != 0 {
		t.Fatalf("%d more registrations, want none", n)
	}

	out := logs.String()
	for name, secret := range map[string]string{
		"credential":          testCredential[len(proto.CredentialProvider):],
		"provider key":        base64.StdEncoding.EncodeToString(priv),
		"provider seed (hex)": hex.EncodeToString(priv.Seed()),
		"bundle":              base64.StdEncoding.EncodeToString(reg.Bundle[:48]),
		"prompt":              "Strangers do not",
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	if !strings.Contains(out, "enrolled with gateway") {
		t.Errorf("logs lack the enrollment:\n%s", out)
	}
}

// TestWatchdogReenrollsWhenChallengesStop runs the watchdog on real
// timers: no challenge comes, so the worker enrolls again.
func TestWatchdogReenrollsWhenChallengesStop(t *testing.T) {
	pub, priv := testProviderKey(t)
	g := newFakeGateway(t, pub)
	runWorker(t, g, priv, Config{ReattestInterval: 20 * time.Millisecond}, nil)
	first := g.nextRegistration(t)
	second := g.nextRegistration(t)
	if bytes.Equal(first.Bundle, second.Bundle) {
		t.Fatal("re-enrollment registered the same bundle")
	}
}

// TestChallengeResetsWatchdog shows a successful re-attestation rearms the
// watchdog, and that when it fires the worker enrolls again.
func TestChallengeResetsWatchdog(t *testing.T) {
	pub, priv := testProviderKey(t)
	g := newFakeGateway(t, pub)
	var arms <-chan armed
	w := runWorker(t, g, priv, Config{ReattestInterval: time.Hour}, func(w *Worker) { arms = hookWatchdog(w) })
	reg := g.nextRegistration(t)
	if a := nextArm(t, arms); a.d != 2*time.Hour {
		t.Fatalf("watchdog armed for %v, want 2h", a.d)
	}

	gw := client(t, g.cert.Load(), reg.TLSPin)
	var att proto.Attestation
	if resp := postJSONTo(t, gw, reg.URL+proto.PathAttest, g.challenge(), &att); resp.StatusCode != http.StatusOK {
		t.Fatalf("attest: status %d", resp.StatusCode)
	}
	rearmed := nextArm(t, arms)
	if rearmed.d != 2*time.Hour {
		t.Fatalf("watchdog rearmed for %v, want 2h", rearmed.d)
	}
	if !bytes.Equal(w.Bundle(), att.Bundle) {
		t.Fatal("the attested bundle is not current")
	}

	rearmed.fireNow(t)
	again := g.nextRegistration(t)
	if bytes.Equal(again.Bundle, att.Bundle) {
		t.Fatal("the watchdog's enrollment did not make new keys")
	}
	nextArm(t, arms)
}

// TestReenrollWhenGatewayCertChanges: a gateway that comes back with a
// new certificate is refused in the handshake, the worker notices, finds
// the gateway's key changed, enrolls again and then serves the new key
// (and, for now, the old one).
func TestReenrollWhenGatewayCertChanges(t *testing.T) {
	pub, priv := testProviderKey(t)
	g := newFakeGateway(t, pub)
	var arms <-chan armed
	w := runWorker(t, g, priv, Config{ReattestInterval: time.Hour}, func(w *Worker) { arms = hookWatchdog(w) })
	reg := g.nextRegistration(t)
	nextArm(t, arms)
	oldCert := g.cert.Load()

	newCert := g.rotateCert()
	gw := client(t, newCert, reg.TLSPin)
	if resp, err := gw.Post(reg.URL+proto.PathAttest, "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Fatalf("a gateway with an unpinned certificate was answered %d", resp.StatusCode)
	}
	again := g.nextRegistration(t)
	nextArm(t, arms) // the enrollment is over: the gateway's answer is in
	if again.TLSPin != reg.TLSPin {
		t.Fatal("the worker's own pin changed")
	}
	want := []tlspin.Pin{tlspin.PinOf(newCert.Leaf), tlspin.PinOf(oldCert.Leaf)}
	if pins := w.gatewayPinList(); !slices.Equal(pins, want) {
		t.Fatalf("gateway pins %v, want %v", pins, want)
	}

	var att proto.Attestation
	if resp := postJSONTo(t, gw, reg.URL+proto.PathAttest, g.challenge(), &att); resp.StatusCode != http.StatusOK {
		t.Fatalf("attest with the new certificate: status %d", resp.StatusCode)
	}
	resp, err := client(t, oldCert, reg.TLSPin).Get(reg.URL + proto.PathHealth)
	if err != nil {
		t.Fatalf("the previous gateway certificate: %v", err)
	}
	resp.Body.Close()
}

func TestGatewayPinsKeepTheLastTwo(t *testing.T) {
	w, _ := testWorker(t, Config{})
	a, b, c := tlspin.Pin{1}, tlspin.Pin{2}, tlspin.Pin{3}
	for _, step := range []struct {
		learn tlspin.Pin
		want  []tlspin.Pin
	}{
		{a, []tlspin.Pin{a}},
		{a, []tlspin.Pin{a}},
		{b, []tlspin.Pin{b, a}},
		{a, []tlspin.Pin{a, b}},
		{c, []tlspin.Pin{c, a}},
	} {
		w.learnGatewayPin(step.learn)
		if got := w.gatewayPinList(); !slices.Equal(got, step.want) {
			t.Fatalf("after learning %v: pins %v, want %v", step.learn, got, step.want)
		}
	}
	if w.gatewayPinned(b) || !w.gatewayPinned(a) || !w.gatewayPinned(c) {
		t.Fatal("gatewayPinned disagrees with the pin list")
	}
}

// TestHandlerRefusesWithoutPinnedTLS mounts a TLS worker's handler on a
// plain server: every route refuses.
func TestHandlerRefusesWithoutPinnedTLS(t *testing.T) {
	_, priv := testProviderKey(t)
	w, err := New(Config{ID: "w", GatewayURL: "https://127.0.0.1:1", Credential: testCredential, ProviderKey: priv, Evidence: SimulatedEvidence{}})
	if err != nil {
		t.Fatal(err)
	}
	w.learnGatewayPin(tlspin.Pin{9})
	for _, path := range []string{proto.PathServe, proto.PathAttest, proto.PathQuote} {
		rw := httptest.NewRecorder()
		w.Handler().ServeHTTP(rw, httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}")))
		if rw.Code != http.StatusForbidden {
			t.Fatalf("%s without TLS: status %d, want 403", path, rw.Code)
		}
	}
}
