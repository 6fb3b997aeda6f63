package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/internal/fuzzseed"
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
	good := `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","sim":{},"tdx":{"any_measurement":true}}`
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
		{"tdx kind without rules", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m"}`, "tdx: found none"},
		{"snp kind without rules", `{"version":1,"name":"p","tee_kinds":["snp"],"max_evidence_age":"10m"}`, "snp: found none"},
		{"bad mrtd", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"measurements":[{"mrtd":"00"}]}}`, "tdx.measurements[0].mrtd"},
		{"bad rtmr", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"measurements":[{"mrtd":"` + strings.Repeat("00", 48) + `","rtmr2":"zz"}]}}`, "rtmr2"},
		{"bad tcb status", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true,"accepted_tcb_statuses":["Fine"]}}`, "accepted_tcb_statuses"},
		{"bad svn", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true,"min_tee_tcb_svn":"01"}}`, "min_tee_tcb_svn"},
		{"bad snp measurement", `{"version":1,"name":"p","tee_kinds":["snp"],"max_evidence_age":"10m","snp":{"measurements":["ab"]}}`, "snp.measurements[0]"},
		{"bad host data", `{"version":1,"name":"p","tee_kinds":["snp"],"max_evidence_age":"10m","snp":{"any_measurement":true,"host_data":["ab"]}}`, "snp.host_data[0]"},
		{"bad smt", `{"version":1,"name":"p","tee_kinds":["snp"],"max_evidence_age":"10m","snp":{"any_measurement":true,"smt":"maybe"}}`, "snp.smt"},
		{"unknown tdx field", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"mrtd":"00"}}`, "unknown field"},
		{"weak or unknown suite", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","min_hpke_suite":"p256"}`, "min_hpke_suite"},
		{"bad measurement", `{"version":1,"name":"p","tee_kinds":["sim"],"allow_simulated":true,"max_evidence_age":"10m","sim":{"measurements":["abcd"]}}`, "sim.measurements"},
		{"models without digests", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":[]}}`, "models.allowed_digests: found none"},
		{"models missing digests", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{}}`, "models.allowed_digests: found none"},
		{"model digest without prefix", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":["` + strings.Repeat("ab", 32) + `"]}}`, "models.allowed_digests[0]"},
		{"model digest short", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":["sha256:abcd"]}}`, "models.allowed_digests[0]"},
		{"model digest uppercase", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":["sha256:` + strings.Repeat("AB", 32) + `"]}}`, "models.allowed_digests[0]"},
		{"model digest other algorithm", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":["sha512:` + strings.Repeat("ab", 32) + `"]}}`, "models.allowed_digests[0]"},
		{"model digest twice", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":["sha256:` + strings.Repeat("ab", 32) + `","sha256:` + strings.Repeat("ab", 32) + `"]}}`, "models.allowed_digests[1]: found"},
		{"model digest not a string", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":[1]}}`, "cannot unmarshal"},
		{"unknown models field", `{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed":["x"]}}`, "unknown field"},
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
	fuzzseed.Add(f, defaultJSON)
	fuzzseed.Add(f, insecureSimulatedJSON)
	fuzzseed.Add(f, []byte(`{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","sim":{},"tdx":{"any_measurement":true},"models":{"allowed_digests":["sha256:`+strings.Repeat("0a", 32)+`"]}}`))
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
		// Its canonical encoding, which the hash covers (and the log
		// records), parses back to the same policy.
		canon, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("the canonical encoding %s does not parse: %v", canon, err)
		}
		if again.Hash() != p.Hash() {
			t.Fatalf("the canonical encoding %s parses to another policy", canon)
		}
	})
}

func TestModelRules(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	p, err := Parse([]byte(`{"version":1,"name":"p","tee_kinds":["tdx"],"max_evidence_age":"10m","tdx":{"any_measurement":true},"models":{"allowed_digests":["` + digest + `"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	for i := range d {
		d[i] = 0xab
	}
	if !p.Models.Allows(d) {
		t.Error("the allowed digest is not allowed")
	}
	d[31] = 0
	if p.Models.Allows(d) {
		t.Error("another digest is allowed")
	}
	// A policy without models rules hashes as it did before they existed.
	q := *p
	q.Models = nil
	if b, _ := json.Marshal(&q); strings.Contains(string(b), "models") {
		t.Errorf("a policy without models rules encodes %s", b)
	}
	if q.Hash() == p.Hash() {
		t.Error("models rules do not change the policy hash")
	}
}
