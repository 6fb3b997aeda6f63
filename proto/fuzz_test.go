package proto_test

// One fuzz target per parser. Each asserts that parsing never panics, that
// every failure is ErrMalformed (or, for stream readers, io.EOF /
// io.ErrUnexpectedEOF), and that parse-then-marshal gives back exactly the
// bytes that were parsed: the encodings are canonical.

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

// checkErr fails unless err is a parse failure of the documented kinds.
func checkErr(t *testing.T, err error, stream bool) {
	t.Helper()
	if errors.Is(err, proto.ErrMalformed) {
		return
	}
	if stream && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return
	}
	t.Fatalf("unexpected error kind: %v", err)
}

// consumed returns the prefix of data that r has read.
func consumed(data []byte, r *bytes.Reader) []byte { return data[:len(data)-r.Len()] }

func requireSame(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s does not re-marshal to the parsed bytes:\n got %x\nwant %x", what, got, want)
	}
}

func FuzzParseHeader(f *testing.F) {
	var valid [][]byte
	for _, m := range sealedSamples(f).requests {
		h, _ := requestParts(f, m)
		valid = append(valid, h)
	}
	addWithCorruptions(f, valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := proto.ParseHeader(data)
		if err != nil {
			checkErr(t, err, false)
			return
		}
		b, err := h.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed header: %v", err)
		}
		requireSame(t, "header", b, data)
		ti, err := h.TagInput()
		if err != nil || !bytes.Equal(ti, data[:len(data)-proto.TagSize]) {
			t.Fatalf("tag input is not the header without its tag (%v)", err)
		}
	})
}

func FuzzParseResponseHeader(f *testing.F) {
	var valid [][]byte
	for _, m := range sealedSamples(f).responses {
		valid = append(valid, m[:proto.ResponseHeaderSize])
	}
	addWithCorruptions(f, valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := proto.ParseResponseHeader(data)
		if err != nil {
			checkErr(t, err, false)
			return
		}
		b, err := h.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed response header: %v", err)
		}
		requireSame(t, "response header", b, data)
	})
}

// FuzzReadChunk covers both chunk kinds: response selects the kind.
func FuzzReadChunk(f *testing.F) {
	s := sealedSamples(f)
	var reqChunks, respChunks [][]byte
	for _, m := range s.requests {
		_, c := requestParts(f, m)
		reqChunks = append(reqChunks, c)
	}
	for _, m := range s.responses {
		respChunks = append(respChunks, m[proto.ResponseHeaderSize:])
	}
	addWithCorruptions(f, reqChunks, false)
	addWithCorruptions(f, respChunks, true)
	f.Fuzz(func(t *testing.T, data []byte, response bool) {
		kind := proto.RequestChunk
		if response {
			kind = proto.ResponseChunk
		}
		r := bytes.NewReader(data)
		c, err := proto.ReadChunk(r, kind)
		if err != nil {
			checkErr(t, err, true)
			return
		}
		requireSame(t, "chunk", proto.AppendChunk(nil, c), consumed(data, r))
		if response && len(c.Ciphertext) != proto.ResponseChunkSize+proto.AEADOverhead {
			t.Fatalf("response chunk of %d bytes accepted", len(c.Ciphertext))
		}
	})
}

func FuzzReadRequestPreamble(f *testing.F) {
	addWithCorruptions(f, sealedSamples(f).requests)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		p, err := proto.ReadRequestPreamble(r)
		if err != nil {
			checkErr(t, err, true)
			return
		}
		requireSame(t, "request preamble", proto.AppendRequestPreamble(nil, p.HeaderBytes, p.Wraps), consumed(data, r))
		hb, err := p.Header.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		requireSame(t, "preamble header", hb, p.HeaderBytes)
		if len(p.Wraps) != len(p.Header.Candidates) {
			t.Fatalf("%d wraps for %d candidates", len(p.Wraps), len(p.Header.Candidates))
		}
	})
}

func FuzzReadForwardPreamble(f *testing.F) {
	addWithCorruptions(f, sealedSamples(f).forwards)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		p, err := proto.ReadForwardPreamble(r)
		if err != nil {
			checkErr(t, err, true)
			return
		}
		requireSame(t, "forward preamble", proto.AppendForwardPreamble(nil, p.HeaderBytes, p.Index, p.Wrap), consumed(data, r))
		hb, err := p.Header.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		requireSame(t, "preamble header", hb, p.HeaderBytes)
		if p.Index >= len(p.Header.Candidates) {
			t.Fatalf("index %d of %d candidates accepted", p.Index, len(p.Header.Candidates))
		}
	})
}

func FuzzUnpadRequest(f *testing.F) {
	var valid [][]byte
	for _, n := range []int{0, 1, 1020, 1021, 5000, 16380, 16381, 40000} {
		p, err := proto.PadRequest(bytes.Repeat([]byte{0xa5}, n))
		if err != nil {
			f.Fatal(err)
		}
		valid = append(valid, p)
	}
	addWithCorruptions(f, valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, err := proto.UnpadRequest(data)
		if err != nil {
			checkErr(t, err, false)
			return
		}
		p, err := proto.PadRequest(payload)
		if err != nil {
			t.Fatal(err)
		}
		requireSame(t, "padded request", p, data)
	})
}

func FuzzUnpadResponseChunk(f *testing.F) {
	var valid [][]byte
	for _, n := range []int{0, 1, 500, proto.ResponseChunkData} {
		var p [proto.ResponseChunkSize]byte
		if err := proto.PadResponseChunk(&p, bytes.Repeat([]byte{0x5a}, n)); err != nil {
			f.Fatal(err)
		}
		valid = append(valid, p[:])
	}
	addWithCorruptions(f, valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		stream, err := proto.UnpadResponseChunk(data)
		if err != nil {
			checkErr(t, err, false)
			return
		}
		var p [proto.ResponseChunkSize]byte
		if err := proto.PadResponseChunk(&p, stream); err != nil {
			t.Fatal(err)
		}
		requireSame(t, "response chunk", p[:], data)
	})
}

func FuzzReadEvent(f *testing.F) {
	var stream []byte
	var valid [][]byte
	for _, e := range testEvents() {
		valid = append(valid, proto.AppendEvent(nil, e))
		stream = proto.AppendEvent(stream, e)
	}
	errBody := proto.AppendEvent(nil, proto.Event{Type: proto.EventError, Data: []byte(`{"code":"bad_request","message":"no"}`)})
	valid = append(valid, stream, errBody, proto.AppendEvent(nil, proto.Event{Type: proto.EventData}))
	addWithCorruptions(f, valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		e, err := proto.ReadEvent(r)
		if err != nil {
			checkErr(t, err, true)
			return
		}
		requireSame(t, "event", proto.AppendEvent(nil, e), consumed(data, r))
	})
}

func FuzzParseBundle(f *testing.F) {
	b := validBundle(f)
	full, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	b.GPU, b.Report, b.Collateral, b.Anchor = nil, nil, nil, nil
	b.Keys.HPKE = b.Keys.HPKE[1:]
	oneModel := *b
	oneModel.Keys.Models = b.Keys.Models[:1]
	withModel, err := oneModel.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	b.Keys.Models = nil
	minimal, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	addWithCorruptions(f, [][]byte{full, withModel, minimal})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := proto.ParseBundle(data)
		if err != nil {
			checkErr(t, err, false)
			return
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed bundle: %v", err)
		}
		requireSame(t, "bundle", out, data)
		_ = b.ReportData()
	})
}

func FuzzParseAnchor(f *testing.F) {
	addWithCorruptions(f, [][]byte{testAnchor(f)})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := proto.ParseAnchor(in)
		if err != nil {
			if !errors.Is(err, proto.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := a.Marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed anchor: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("parse then marshal changed the bytes")
		}
		if proto.AnchoredNonce(out) != proto.AnchoredNonce(in) {
			t.Fatal("anchored nonce not a function of the bytes")
		}
	})
}

func FuzzDecodeTask(f *testing.F) {
	fuzzseed.Add(f, []byte(`{"text":"One. Two.","sentences":1}`))
	fuzzseed.Add(f, []byte(`{"text":"hola","from":"es","to":"en"}`))
	fuzzseed.Add(f, []byte(`{"text":"a"} {}`))
	fuzzseed.Add(f, []byte{0xff, '{'})
	f.Fuzz(func(t *testing.T, in []byte) {
		var s proto.SummarizeRequest
		if err := proto.DecodeTask(in, &s); err != nil {
			if !errors.Is(err, proto.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !utf8.ValidString(s.Text) {
			t.Fatal("decoded text is not valid UTF-8")
		}
	})
}

// FuzzParseModelDigest: a digest parses only in its one canonical text
// form (policies and end events carry it), and every failure is
// ErrMalformed without quoting more than a few bytes of the input.
func FuzzParseModelDigest(f *testing.F) {
	fuzzseed.Add(f, proto.FormatModelDigest([32]byte{0x0a, 0xff, 0x10}))
	fuzzseed.Add(f, "sha256:"+strings.Repeat("A", 64))
	fuzzseed.Add(f, "sha256:"+strings.Repeat("0", 63)+"g")
	fuzzseed.Add(f, "SHA256:"+strings.Repeat("0", 64))
	fuzzseed.Add(f, "sha256:")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := proto.ParseModelDigest(s)
		if err != nil {
			checkErr(t, err, false)
			if len(s) > 16 && strings.Contains(err.Error(), s) {
				t.Fatal("error quotes the input")
			}
			return
		}
		if got := proto.FormatModelDigest(d); got != s {
			t.Fatalf("ParseModelDigest(%q) formats back as %q", s, got)
		}
	})
}

// FuzzParseSuite: a suite parses only from its own name.
func FuzzParseSuite(f *testing.F) {
	for _, s := range proto.Suites() {
		fuzzseed.Add(f, s.String())
	}
	fuzzseed.Add(f, "x25519")
	f.Fuzz(func(t *testing.T, name string) {
		s, err := proto.ParseSuite(name)
		if err != nil {
			return
		}
		if s.String() != name {
			t.Fatalf("ParseSuite(%q) = %v", name, s)
		}
		if _, ok := proto.SuiteForKEM(s.KEM); !ok {
			t.Fatalf("parsed suite %v is not supported", s)
		}
	})
}
