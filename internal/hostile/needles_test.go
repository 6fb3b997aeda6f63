package hostile_test

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// The canary search finds a canary in every form it looks for, at any
// offset, so that the suite's "no canary" checks can fail.
func TestNeedlesFindEveryForm(t *testing.T) {
	_, canaries := document()
	n := newNeedles(canaries)
	c := []byte(canaries[123])
	for name, form := range map[string]string{
		"raw":              string(c),
		"hex":              hex.EncodeToString(c),
		"base64":           base64.StdEncoding.EncodeToString(c),
		"base64, offset 1": base64.StdEncoding.EncodeToString(append([]byte("x"), c...)),
		"base64, offset 2": base64.URLEncoding.EncodeToString(append([]byte("xy"), c...)),
	} {
		if n.find([]byte(`{"log":"`+form+`"}`)) == nil {
			t.Errorf("the %s form of a canary was not found", name)
		}
	}
	if f := n.find([]byte("canary" + canaries[0][6:len(canaries[0])-1])); f != nil {
		t.Errorf("found %q in a shortened canary", f)
	}
}
