package policy

import (
	"strings"
	"testing"
)

func TestEmbeddedPolicies(t *testing.T) {
	d := Default()
	if d.AllowSimulated || d.Accepts(KindSim) {
		t.Fatal("default policy accepts simulated evidence")
	}
	s := InsecureSimulated()
	if !s.AllowSimulated || !strings.Contains(s.Name, "INSECURE") {
		t.Fatalf("insecure policy not named insecure: %q", s.Name)
	}
	if d.Hash() == s.Hash() {
		t.Fatal("distinct policies share a hash")
	}
}

func TestParseRejects(t *testing.T) {
	good := `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","sim":{}}`
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("good policy: %v", err)
	}
	tests := []struct{ name, input, wantErr string }{
		{"unknown field", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","allow_debug":true}`, "unknown field"},
		{"missing version", `{"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m"}`, "version: found 0"},
		{"future version", `{"version":2,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m"}`, "version: found 2"},
		{"no name", `{"version":1,"tee_kinds":["tdx"],"max_evidence_age":"10m"}`, "name"},
		{"no kinds", `{"version":1,"name":"p","tee_kinds":[],"max_evidence_age":"10m"}`, "tee_kinds"},
		{"unknown kind", `{"version":1,"name":"p","tee_kinds":["sgx2"],"max_evidence_age":"10m"}`, `found "sgx2"`},
		{"sim without allow", `{"version":1,"name":"p","tee_kinds":["sim"],"max_evidence_age":"10m"}`, "allow_simulated"},
		{"bad duration", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"ten"}`, "duration"},
		{"tiny age", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"1ms"}`, "max_evidence_age"},
		{"weak or unknown suite", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","min_hpke_suite":"p256"}`, "min_hpke_suite"},
		{"bad measurement", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","sim":{"measurements":["abcd"]}}`, "sim.measurements"},
		{"trailing data", good + `{}`, "trailing"},
		{"not json", `version: 1`, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultJSON)
	f.Add(insecureSimulatedJSON)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		// A parsed policy re-validates and its hash is stable.
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		if p.Hash() != p.Hash() {
			t.Fatal("hash not stable")
		}
	})
}
