package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/translog"
)

// Without a log key, a hardware policy refuses every candidate unless
// the INSECURE skip is set; a simulated policy (already INSECURE) does not
// check the log; a pinned key always does.
func TestLogChecksWithoutAKey(t *testing.T) {
	_, vkey, err := translog.GenerateKey("example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		cfg       Config
		wantCheck bool
		wantErr   error
	}{
		{"hardware policy, no key", Config{Policy: policy.Default()}, true, ErrNoLogKey},
		{"hardware policy, INSECURE skip", Config{Policy: policy.Default(), InsecureSkipLog: true}, false, nil},
		{"hardware policy, key", Config{Policy: policy.Default(), LogKey: vkey}, true, nil},
		{"simulated policy, no key", Config{Policy: policy.InsecureSimulated()}, false, nil},
		{"simulated policy, key", Config{Policy: policy.InsecureSimulated(), LogKey: vkey}, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.GatewayURL = "https://gateway.test"
			c, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			check, err := c.logChecks()
			if check != tt.wantCheck || !errors.Is(err, tt.wantErr) || (tt.wantErr != nil) != (err != nil) {
				t.Fatalf("logChecks() = %v, %v; want %v, %v", check, err, tt.wantCheck, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrLog) {
				t.Fatalf("%v does not match ErrLog", err)
			}
		})
	}
	if _, err := New(Config{GatewayURL: "https://gateway.test", LogKey: "not a key"}); err == nil || !strings.Contains(err.Error(), "log key") {
		t.Fatalf("New with a malformed log key: %v", err)
	}
	cfg := Config{GatewayURL: "https://gateway.test", InsecureSkipLog: true}
	if s := cfg.String(); !strings.Contains(s, "INSECURE_skip_log=true") {
		t.Fatalf("Config.String() = %s, want the INSECURE skip named", s)
	}
}
