package seal

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

// The fuzz targets take their genuine messages from the known-answer
// vectors: fuzz workers run in other processes, and only deterministic
// messages are genuine in every one of them.

// addCorruptions seeds f with each genuine message and a few corruptions
// of it: cut in half, a flipped byte near the end, a trailing byte.
func addCorruptions(f *testing.F, genuine [][]byte) {
	for _, g := range genuine {
		fuzzseed.Add(f, g)
		fuzzseed.Add(f, g[:len(g)/2])
		flip := bytes.Clone(g)
		flip[len(flip)-20] ^= 1
		fuzzseed.Add(f, flip)
		fuzzseed.Add(f, append(bytes.Clone(g), 0))
	}
	fuzzseed.Add(f, []byte{})
}

// FuzzOpen feeds arbitrary bytes to Opener.Open. It must never panic, and
// it may succeed only on a message a client actually sealed (every
// vector's request, forwarded to each of its candidates): anything else
// that opens is a forgery.
func FuzzOpen(f *testing.F) {
	var keys []*PrivateKey
	var genuine [][]byte
	vectors := loadVectors(f)
	for _, name := range slices.Sorted(maps.Keys(vectors)) { // in order: the committed seeds are the first few
		v := vectors[name]
		if v.TimestampMS != testNow.UnixMilli() {
			f.Fatalf("vector timestamp %d, want %d", v.TimestampMS, testNow.UnixMilli())
		}
		keys = append(keys, vectorKeys(f, v)...)
		req := splitRequest(f, v.ClientMessage)
		for i := range v.Recipients {
			genuine = append(genuine, req.forward(i))
		}
	}
	addCorruptions(f, genuine)
	fuzzseed.Add(f, []byte(proto.MagicForward))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := newTestOpener(t, testNow, keys).Open(bytes.NewReader(data))
		if err == nil && !slices.ContainsFunc(genuine, func(g []byte) bool { return bytes.Equal(g, data) }) {
			t.Fatal("Open accepted bytes no client sealed")
		}
	})
}

// FuzzOpenResponse feeds arbitrary bytes to Request.OpenResponse, for the
// requests of two vectors, and reads every event. It must never panic, and
// a stream may be read to its end only if it is the vector's response.
func FuzzOpenResponse(f *testing.F) {
	vectors := loadVectors(f)
	var reqs []*Request
	var genuine [][]byte
	for _, name := range []string{"x25519-3cand-1kib", "mlkem768x25519-3cand-1kib"} {
		v := vectors[name]
		if v == nil {
			f.Fatalf("no vector %s", name)
		}
		reqs = append(reqs, vectorRequest(f, v, vectorKeys(f, v)))
		genuine = append(genuine, v.ResponseMessage)
	}
	addCorruptions(f, genuine)
	fuzzseed.Add(f, []byte(proto.MagicResponse))
	f.Fuzz(func(t *testing.T, data []byte) {
		for i, req := range reqs {
			if _, _, err := readResponse(req, data); err == nil && !bytes.Equal(data, genuine[i]) {
				t.Fatalf("request %d: a response no candidate wrote was read to its end", i)
			}
		}
	})
}

// FuzzParsePublicKey feeds ParsePublicKey a worker key as a bundle carries
// it (a KEM id and bytes): it never panics, refuses every KEM it does not
// support, and a key it accepts is exactly its canonical encoding.
func FuzzParsePublicKey(f *testing.F) {
	for _, kemID := range []uint16{proto.KEMMLKEM768X25519, proto.KEMX25519} {
		k, err := GenerateKey(kemID)
		if err != nil {
			f.Fatal(err)
		}
		pub := k.Public()
		fuzzseed.Add(f, pub.KEM, pub.PublicKey)
		fuzzseed.Add(f, pub.KEM, pub.PublicKey[1:])
	}
	fuzzseed.Add(f, uint16(0x0012), make([]byte, 133))
	f.Fuzz(func(t *testing.T, kemID uint16, pub []byte) {
		k := proto.HPKEKey{KEM: kemID, PublicKey: pub}
		p, err := ParsePublicKey(k)
		if err != nil {
			return
		}
		if kemID != proto.KEMMLKEM768X25519 && kemID != proto.KEMX25519 {
			t.Fatalf("kem 0x%04x accepted", kemID)
		}
		if !bytes.Equal(p.pk.Bytes(), pub) {
			t.Fatal("an accepted key is not its own encoding")
		}
		if p.id != k.ID() {
			t.Fatal("the key id is not the key's")
		}
	})
}
