package tlspin

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// A pin whose text form uses both base64url-only characters ('-' and '_').
var samplePin = Pin{0xfb, 0xff, 0xbf, 0x01, 0x02, 0x03, 0xfe, 0xff}

func TestPinStringIsCanonicalForm(t *testing.T) {
	s := samplePin.String()
	if want := "sha256/-_-_AQID_v8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
	if len(s) != 50 {
		t.Fatalf("len(String()) = %d, want 50", len(s))
	}
	got, err := ParsePin(s)
	if err != nil {
		t.Fatalf("ParsePin(%q): %v", s, err)
	}
	if got != samplePin {
		t.Fatalf("ParsePin(String()) = %x, want %x", got, samplePin)
	}
}

func TestPinRoundTripsEveryByte(t *testing.T) {
	// Each byte value at each position, so every alphabet character and
	// every last-character value is exercised.
	for v := 0; v < 256; v++ {
		var p Pin
		for i := range p {
			p[i] = byte(v + i)
		}
		q, err := ParsePin(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePin(%q) = %x, %v; want %x", p.String(), q, err, p)
		}
	}
}

func TestParsePinRejects(t *testing.T) {
	valid := samplePin.String()
	b64 := strings.TrimPrefix(valid, "sha256/")
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", `want prefix "sha256/"`},
		{"no prefix", b64, `want prefix "sha256/"`},
		{"upper-case prefix", "SHA256/" + b64, `want prefix "sha256/"`},
		{"hpkp colon prefix", "sha256:" + b64, `want prefix "sha256/"`},
		{"other hash", "sha384/" + b64, `want prefix "sha256/"`},
		{"padded", valid + "=", "44 characters after"},
		{"short", valid[:49], "42 characters after"},
		{"long", valid + "A", "44 characters after"},
		{"trailing newline", valid + "\n", "44 characters after"},
		{"leading space", " " + valid, `want prefix "sha256/"`},
		{"standard base64 plus", "sha256/+" + b64[1:], `byte "+" at offset 7`},
		{"standard base64 slash", "sha256/" + b64[:42] + "/", `byte "/" at offset 49`},
		{"embedded newline", "sha256/" + b64[:20] + "\n" + b64[21:], `byte "\n" at offset 27`},
		{"embedded padding", "sha256/" + b64[:41] + "==", `byte "=" at offset 48`},
		{"non-ascii", "sha256/" + b64[:41] + "é", `byte "\xc3" at offset 48`},
		{"stray low bits", "sha256/" + b64[:42] + "B", "stray low bits"},
		{"stray low bits max", "sha256/" + b64[:42] + "_", "stray low bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePin(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParsePin(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestPinJSON(t *testing.T) {
	type reg struct {
		Pin Pin `json:"pin"`
	}
	b, err := json.Marshal(reg{samplePin})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pin":"` + samplePin.String() + `"}`; string(b) != want {
		t.Fatalf("json.Marshal = %s, want %s", b, want)
	}
	var got reg
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Pin != samplePin {
		t.Fatalf("json round trip = %x, want %x", got.Pin, samplePin)
	}

	for _, in := range []string{`{"pin":""}`, `{"pin":"sha256/AAAA"}`, `{"pin":42}`} {
		var r reg
		err := json.Unmarshal([]byte(in), &r)
		if err == nil {
			t.Errorf("json.Unmarshal(%s) succeeded, want error", in)
		}
		if r.Pin != (Pin{}) {
			t.Errorf("json.Unmarshal(%s) set pin %s on error", in, r.Pin)
		}
	}
	var r reg
	if err := json.Unmarshal([]byte(`{"pin":"sha256/AAAA"}`), &r); err == nil || !strings.Contains(err.Error(), "4 characters after") {
		t.Errorf("json.Unmarshal short pin: error = %v, want the ParsePin error", err)
	}
}

func TestPinOfHashesSubjectPublicKeyInfo(t *testing.T) {
	cert, err := SelfSigned(nil, testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := PinOf(cert.Leaf), Pin(sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)); got != want {
		t.Fatalf("PinOf = %s, want %s", got, want)
	}
	// Same key, new certificate: same pin.
	again := *cert.Leaf
	again.SerialNumber = nil
	if PinOf(&again) != PinOf(cert.Leaf) {
		t.Fatal("PinOf depends on more than the public key")
	}
}

func TestPeerPin(t *testing.T) {
	cert, err := SelfSigned(nil, testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PeerPin(nil); err == nil || !strings.Contains(err.Error(), "handshake not complete") {
		t.Errorf("PeerPin(nil) error = %v, want handshake not complete", err)
	}
	if _, err := PeerPin(&tls.ConnectionState{}); err == nil || !strings.Contains(err.Error(), "handshake not complete") {
		t.Errorf("PeerPin(incomplete) error = %v, want handshake not complete", err)
	}
	if _, err := PeerPin(&tls.ConnectionState{HandshakeComplete: true}); !errors.Is(err, ErrNoPeerCertificate) {
		t.Errorf("PeerPin(no certs) error = %v, want ErrNoPeerCertificate", err)
	}
	got, err := PeerPin(&tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cert.Leaf}})
	if err != nil || got != PinOf(cert.Leaf) {
		t.Errorf("PeerPin = %s, %v; want %s", got, err, PinOf(cert.Leaf))
	}
}

func FuzzParsePin(f *testing.F) {
	fuzzseed.Add(f, samplePin.String())
	fuzzseed.Add(f, Pin{}.String())
	fuzzseed.Add(f, "sha256/"+strings.Repeat("_", 43))
	fuzzseed.Add(f, "sha256/"+strings.Repeat("A", 42)+"E")
	fuzzseed.Add(f, "sha256/"+strings.Repeat("A", 43)+"=")
	fuzzseed.Add(f, "sha256:"+strings.Repeat("A", 43))
	fuzzseed.Add(f, "")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePin(s)
		var q Pin
		uerr := q.UnmarshalText([]byte(s))
		if (err == nil) != (uerr == nil) || p != q {
			t.Fatalf("ParsePin(%q) = %s, %v but UnmarshalText = %s, %v", s, p, err, q, uerr)
		}
		if err != nil {
			if p != (Pin{}) {
				t.Fatalf("ParsePin(%q) returned %s with error %v", s, p, err)
			}
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("ParsePin(%q).String() = %q: not the input", s, got)
		}
		text, _ := p.MarshalText()
		if string(text) != s {
			t.Fatalf("ParsePin(%q).MarshalText() = %q: not the input", s, text)
		}
	})
}
