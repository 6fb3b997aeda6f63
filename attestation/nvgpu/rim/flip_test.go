package rim_test

import (
	"bytes"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
)

// Where the signed bytes of a RIM are, for the flip tests: the golden
// values, the versions and the tagId (signed content), and the
// SignatureValue and DigestValue (the signature).
var (
	hashValue       = regexp.MustCompile(`ns2:Hash[0-9]+="([0-9a-fA-F]+)"`)
	activeResource  = regexp.MustCompile(`<ns0:Resource [^>]*active="True"[^>]*>`)
	versionValue    = regexp.MustCompile(`(?:colloquialVersion|\sversion|tagId)="([^"]+)"`)
	signatureValues = regexp.MustCompile(`<ds:(?:SignatureValue|DigestValue)>([^<]+)<`)
)

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// flipHex changes a hex digit into another hex digit.
func flipHex(c byte) byte {
	switch c {
	case 'a', 'A':
		return c + 1
	case 'f', 'F':
		return c - 1
	}
	return c ^ 1
}

// flipBase64 changes a base64 character into another one.
func flipBase64(c byte) byte {
	i := strings.IndexByte(base64Alphabet, c)
	return base64Alphabet[(i+1)%len(base64Alphabet)]
}

// flipText changes a printable character of a version into another one
// that XML still accepts in an attribute value.
func flipText(c byte) byte {
	if d := c ^ 1; d != '"' && d != '<' && d != '&' && d != '\'' && d > ' ' {
		return d
	}
	return c ^ 2
}

// span is a range of bytes to flip and how.
type span struct {
	what       string
	start, end int
	flip       func(byte) byte
}

func groupSpans(raw []byte, re *regexp.Regexp, what string, flip func(byte) byte) []span {
	var out []span
	for _, m := range re.FindAllSubmatchIndex(raw, -1) {
		out = append(out, span{what, m[2], m[3], flip})
	}
	return out
}

// signedSpans returns the spans of raw to flip: the values of active
// measurements, of inactive ones, and the rest (the versions and tagId,
// the signature and digest values).
func signedSpans(raw []byte) (active, inactive, rest []span) {
	activeRanges := activeResource.FindAllIndex(raw, -1)
	inActive := func(pos int) bool {
		for _, r := range activeRanges {
			if pos >= r[0] && pos < r[1] {
				return true
			}
		}
		return false
	}
	for _, s := range groupSpans(raw, hashValue, "measurement value", flipHex) {
		if inActive(s.start) {
			active = append(active, s)
		} else {
			inactive = append(inactive, s)
		}
	}
	rest = append(groupSpans(raw, versionValue, "version or tagId", flipText),
		groupSpans(raw, signatureValues, "signature", flipBase64)...)
	return active, inactive, rest
}

// flipAll flips, one at a time, every stride-th byte of each span and
// requires Verify to fail with CodeSignature.
func flipAll(t *testing.T, raw []byte, opts rim.Options, spans []span, stride int) int {
	t.Helper()
	type job struct {
		s   span
		pos int
	}
	var jobs []job
	for k, s := range spans {
		// Each span starts at another offset, so a stride still reaches
		// every position of a value across the values.
		for pos := s.start + k%stride; pos < s.end; pos += stride {
			jobs = append(jobs, job{s, pos})
		}
	}
	const workers = 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards fail
		fail []string
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				j := jobs[i]
				b := bytes.Clone(raw)
				b[j.pos] = j.s.flip(b[j.pos])
				_, err := rim.Verify(b, opts)
				if code := check.CodeOf(err); code != check.CodeSignature {
					mu.Lock()
					fail = append(fail, fmt.Sprintf("%s at byte %d (%q->%q): code %q: %v", j.s.what, j.pos, raw[j.pos], b[j.pos], code, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i, f := range fail {
		if i == 10 {
			t.Errorf("... and %d more", len(fail)-10)
			break
		}
		t.Error(f)
	}
	return len(jobs)
}

var flipEvery = flag.Bool("flipall", false, "flip every signed byte of the real RIMs, not a stride (some 14,000 Verify calls, two minutes)")

// TestFlipRealRIMs flips the signed bytes of NVIDIA's real RIMs, one at
// a time: every byte of the versions, the tagId and the signature and
// digest values; every third byte of the active measurements' values and
// every seventeenth of the inactive ones (each value from another
// offset). With -flipall, every byte of all of them; under -short or the
// race detector, sparser strides. Each Verify checks four P-384
// signatures, which is what costs.
func TestFlipRealRIMs(t *testing.T) {
	for _, tc := range realRIMs {
		t.Run(tc.file, func(t *testing.T) {
			raw := readRIM(t, tc.file)
			opts := rim.Options{Now: recordedAt}
			verified(t, raw, opts)
			active, inactive, rest := signedSpans(raw)
			strides := [3]int{1, 3, 17} // rest, active values, inactive values
			switch {
			case *flipEvery:
				strides = [3]int{1, 1, 1}
			case testing.Short() || raceEnabled:
				strides = [3]int{7, 29, 97}
			}
			n := flipAll(t, raw, opts, rest, strides[0])
			n += flipAll(t, raw, opts, active, strides[1])
			n += flipAll(t, raw, opts, inactive, strides[2])
			t.Logf("%d flips", n)
		})
	}
}

// TestFlipSynthetic flips every byte of every value of the synthetic
// driver RIM, active or not.
func TestFlipSynthetic(t *testing.T) {
	raw := testdata(t, "driver.xml")
	opts := rim.Options{Now: testdataNow, Roots: fixturePKI(t).Roots()}
	verified(t, raw, opts)
	active, inactive, rest := signedSpans(raw)
	stride := 1
	if testing.Short() || raceEnabled {
		stride = 13
	}
	t.Logf("%d flips", flipAll(t, raw, opts, slices.Concat(active, inactive, rest), stride))
}
