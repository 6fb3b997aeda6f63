package proto_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/cryptobyte"
)

// withKeysBlock encodes b as Marshal would, but with keys as its keys
// block, so tests can hand the parser blocks Marshal would never write.
func withKeysBlock(b *proto.Bundle, keys []byte) []byte {
	var out cryptobyte.Builder
	out.AddBytes([]byte(proto.MagicBundle))
	out.AddUint16(proto.BundleVersion)
	out.AddUint8(uint8(len(b.Kind)))
	out.AddBytes([]byte(b.Kind))
	out.AddBytes(b.Nonce[:])
	out.AddUint16(uint16(len(keys)))
	out.AddBytes(keys)
	out.AddUint32(uint32(len(b.Report)))
	out.AddBytes(b.Report)
	out.AddUint32(uint32(len(b.Collateral)))
	out.AddBytes(b.Collateral)
	out.AddUint8(uint8(len(b.GPU)))
	for _, g := range b.GPU {
		out.AddUint32(uint32(len(g)))
		out.AddBytes(g)
	}
	out.AddUint16(uint16(len(b.Anchor)))
	out.AddBytes(b.Anchor)
	return out.BytesOrPanic()
}

// legacyKeysBlock is the keys block as SPEC.md laid it out before model
// lists: HPKE keys and the signing key, nothing after.
func legacyKeysBlock(k proto.WorkerKeys) []byte {
	var out []byte
	out = append(out, byte(len(k.HPKE)))
	for _, h := range k.HPKE {
		out = append(out, byte(h.KEM>>8), byte(h.KEM), byte(len(h.PublicKey)>>8), byte(len(h.PublicKey)))
		out = append(out, h.PublicKey...)
	}
	out = append(out, byte(len(k.Signing)))
	return append(out, k.Signing...)
}

// modelList encodes a model list as SPEC.md §10.3 says, from its words.
func modelList(models ...proto.ModelDigest) []byte {
	out := []byte{byte(len(models))}
	for _, m := range models {
		out = append(out, byte(len(m.Name)))
		out = append(out, m.Name...)
		out = append(out, m.SHA256[:]...)
	}
	return out
}

// TestBundleWithoutModelsEncodesAsBefore pins the compatibility promise:
// a bundle binding no model has exactly the bytes, keys hash and
// REPORT_DATA it had before model lists existed.
func TestBundleWithoutModelsEncodesAsBefore(t *testing.T) {
	b := validBundle(t)
	b.Keys.Models = nil
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := withKeysBlock(b, legacyKeysBlock(b.Keys)); !bytes.Equal(enc, want) {
		t.Fatal("a bundle without models does not encode as the legacy layout")
	}
	// A known answer: one X25519 key of 0x01 bytes and a signing key of
	// 0x02 bytes.
	k := proto.WorkerKeys{HPKE: []proto.HPKEKey{{KEM: proto.KEMX25519, PublicKey: bytes.Repeat([]byte{1}, 32)}}, Signing: bytes.Repeat([]byte{2}, 32)}
	b.Keys = k
	enc, err = b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "01" + "0020" + "0020" + strings.Repeat("01", 32) + "20" + strings.Repeat("02", 32)
	off := 4 + 2 + 1 + len(b.Kind) + proto.NonceSize
	if got := hex.EncodeToString(enc[off+2 : off+2+len(want)/2]); got != want || int(enc[off])<<8|int(enc[off+1]) != len(want)/2 {
		t.Fatalf("keys block %s, want %s", got, want)
	}

	// Every bundle in testvectors encodes to its own bytes, and all but
	// the model-list vectors carry no model list: they predate it, and
	// the recorded ones bind REPORT_DATA of the legacy encoding.
	files, err := filepath.Glob("../testvectors/attestation/*/*.bundle")
	if err != nil || len(files) < 40 {
		t.Fatalf("found %d vector bundles (%v), want at least 40", len(files), err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := proto.ParseBundle(raw)
		if err != nil {
			continue // vectors of malformed bundles
		}
		out, err := pb.Marshal()
		if err != nil || !bytes.Equal(out, raw) {
			t.Errorf("%s: re-encodes to other bytes (%v)", f, err)
		}
		if hasModels := len(pb.Keys.Models) != 0; hasModels != strings.Contains(filepath.Base(f), "model") {
			t.Errorf("%s: has a model list: %v", f, hasModels)
		}
	}
}

func TestSpecModelList(t *testing.T) {
	b := validBundle(t)
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := withKeysBlock(b, append(legacyKeysBlock(b.Keys), modelList(b.Keys.Models...)...))
	if !bytes.Equal(enc, want) {
		t.Fatal("the model list is not encoded after the signing key as SPEC.md §10.3 says")
	}
	got, err := proto.ParseBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys.Models) != 2 || got.Keys.Models[1] != b.Keys.Models[1] {
		t.Fatalf("models %v, want %v", got.Keys.Models, b.Keys.Models)
	}
	// The models are in the keys hash, hence in REPORT_DATA.
	other := *b
	other.Keys.Models = []proto.ModelDigest{b.Keys.Models[0], {Name: b.Keys.Models[1].Name, SHA256: [32]byte{0x99}}}
	if other.KeysHash() == b.KeysHash() || other.ReportData() == b.ReportData() {
		t.Fatal("changing a model digest does not change the keys hash and REPORT_DATA")
	}
}

func TestParseBundleModelRules(t *testing.T) {
	b := validBundle(t)
	legacy := legacyKeysBlock(b.Keys)
	m := func(name string, d byte) proto.ModelDigest { return proto.ModelDigest{Name: name, SHA256: [32]byte{d}} }
	many := make([]proto.ModelDigest, proto.MaxModels+1)
	for i := range many {
		many[i] = m(string(rune('a'+i)), byte(i))
	}
	tests := []struct {
		name    string
		list    []byte
		wantErr string
	}{
		{"empty list present", []byte{0}, "model count: found 0"},
		{"too many", modelList(many...), "model count: found 17"},
		{"unsorted", modelList(m("b", 1), m("a", 2)), "model order"},
		{"twice", modelList(m("a", 1), m("a", 2)), "model order"},
		{"empty name", modelList(m("", 1)), "model name"},
		{"space in name", modelList(m("a b", 1)), "model name"},
		{"comma in name", modelList(m("a,b", 1)), "model name"},
		{"control byte in name", modelList(m("a\nb", 1)), "model name"},
		{"name too long", modelList(m(strings.Repeat("x", proto.MaxModelLen+1), 1)), "model name"},
		{"digest truncated", modelList(m("a", 1))[:1+1+1+31], "truncated"},
		{"name truncated", []byte{1, 5, 'a'}, "truncated"},
		{"count only", []byte{1}, "truncated"},
		{"trailing byte", append(modelList(m("a", 1)), 0), "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proto.ParseBundle(withKeysBlock(b, append(bytes.Clone(legacy), tt.list...)))
			if !errors.Is(err, proto.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrMalformed with %q", err, tt.wantErr)
			}
		})
	}
	// Marshal refuses what the parser would.
	for _, models := range [][]proto.ModelDigest{{m("b", 1), m("a", 1)}, {m("a", 1), m("a", 1)}, {m("", 1)}, many} {
		c := *b
		c.Keys.Models = models
		if _, err := c.Marshal(); !errors.Is(err, proto.ErrMalformed) {
			t.Errorf("Marshal with models %v: err = %v, want ErrMalformed", models, err)
		}
	}
	// The largest list fits the bundle limit.
	c := *b
	c.Keys.Models = nil
	for i := range proto.MaxModels {
		c.Keys.Models = append(c.Keys.Models, m(string(rune('a'+i))+strings.Repeat("x", proto.MaxModelLen-1), byte(i)))
	}
	enc, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proto.ParseBundle(enc); err != nil {
		t.Fatalf("largest model list: %v", err)
	}
}

func TestModelDigestText(t *testing.T) {
	d := [32]byte{0xab, 0x01}
	s := proto.FormatModelDigest(d)
	if s != "sha256:ab01"+strings.Repeat("00", 30) {
		t.Fatalf("FormatModelDigest = %s", s)
	}
	if got, err := proto.ParseModelDigest(s); err != nil || got != d {
		t.Fatalf("ParseModelDigest(%s) = %x, %v", s, got, err)
	}
	for _, bad := range []string{
		"", "ab01" + strings.Repeat("00", 30), "sha512:" + strings.Repeat("00", 32), "SHA256:" + strings.Repeat("00", 32),
		"sha256:" + strings.Repeat("00", 31), "sha256:" + strings.Repeat("00", 33), "sha256:" + strings.Repeat("AB", 32),
		"sha256:" + strings.Repeat("0g", 32), "sha256: " + strings.Repeat("00", 32),
	} {
		if _, err := proto.ParseModelDigest(bad); !errors.Is(err, proto.ErrMalformed) {
			t.Errorf("ParseModelDigest(%q): err = %v, want ErrMalformed", bad, err)
		}
	}
	if got := (proto.ModelDigest{Name: "m", SHA256: d}).String(); got != "m="+s {
		t.Errorf("String = %s", got)
	}
}
