package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
)

// endpoint is one route of the API with a body its role could send.
type endpoint struct {
	method, path string
	body         func(e *env) any // nil: no body
	sealed       bool             // the body is a sealed request, not JSON
	roles        []string         // the roles it accepts
}

func endpoints() []endpoint {
	return []endpoint{
		{method: http.MethodGet, path: proto.PathCandidates + "?task=summarize", roles: []string{"tenant"}},
		{method: http.MethodPost, path: proto.PathRequests, sealed: true, roles: []string{"tenant"}},
		{method: http.MethodPost, path: proto.PathEvidence, roles: []string{"tenant"}, body: func(*env) any {
			return proto.EvidenceRequest{WorkerID: "w", Nonce: make([]byte, proto.NonceSize)}
		}},
		{method: http.MethodGet, path: proto.PathStatus, roles: []string{"tenant"}},
		{method: http.MethodPost, path: proto.PathChallenge, roles: []string{"provider"}},
		{method: http.MethodPost, path: proto.PathRegister, roles: []string{"provider"}, body: func(e *env) any {
			return e.registration(newWorkerDouble(e.t, "auth-w", e.clock), proto.TaskSummarize)
		}},
		{method: http.MethodPut, path: proto.PathProviderKey, roles: []string{"provider"}, body: func(*env) any {
			pub, _, _ := ed25519.GenerateKey(rand.Reader)
			return proto.ProviderKey{PublicKey: pub}
		}},
		{method: http.MethodPost, path: proto.PathAdminProviders, roles: []string{"admin"}, body: func(*env) any {
			return proto.NewAccount{ID: "made-by-a-stranger"}
		}},
		{method: http.MethodPost, path: proto.PathAdminTenants, roles: []string{"admin"}, body: func(*env) any {
			return proto.NewAccount{ID: "made-by-a-stranger"}
		}},
		{method: http.MethodPost, path: proto.PathAdminRotate, roles: []string{"admin"}, body: func(*env) any {
			return proto.RotateKey{Kind: "tenant", ID: "t1"}
		}},
		{method: http.MethodPost, path: proto.PathAdminPools, roles: []string{"admin"}, body: func(*env) any {
			return proto.PoolSpec{ID: "stranger-pool", TenantID: "t1", Slots: 1}
		}},
		{method: http.MethodDelete, path: proto.PathAdminPools + "/pool-1", roles: []string{"admin"}},
		{method: http.MethodGet, path: proto.PathAdminStatus, roles: []string{"admin"}},
	}
}

// call sends ep's request with credential cred.
func (e *env) call(ep endpoint, cred string) (*http.Response, []byte) {
	e.t.Helper()
	if ep.sealed {
		w := newWorkerDouble(e.t, "sealed-to", e.clock)
		req := e.seal(proto.TaskSummarize, "hello", w.key())
		return e.doAs(cred, ep.method, ep.path, proto.MediaTypeRequest, strings.NewReader(string(req.Bytes())))
	}
	var body any
	if ep.body != nil {
		body = ep.body(e)
	}
	return e.doJSON(cred, ep.method, ep.path, body, nil)
}

func TestEveryEndpointChecksItsCredential(t *testing.T) {
	e := newEnv(t)
	// A pool and a worker give the destructive calls something to act on.
	e.createPool(proto.PoolSpec{ID: "pool-1", TenantID: "t1", Slots: 1})
	cred := map[string]string{"admin": e.admin, "provider": e.provider.cred, "tenant": e.tenant}
	unauthorized := []struct{ name, cred string }{
		{"none", ""},
		{"malformed", "not-a-credential"},
		{"prefix only", proto.CredentialTenant},
		{"too short", e.tenant[:len(e.tenant)-1]},
		{"not base64url", e.tenant[:len(e.tenant)-1] + "!"},
		{"unknown admin", gateway.NewCredential(proto.CredentialAdmin)},
		{"unknown provider", gateway.NewCredential(proto.CredentialProvider)},
		{"unknown tenant", gateway.NewCredential(proto.CredentialTenant)},
	}
	for _, ep := range endpoints() {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			for _, u := range unauthorized {
				resp, body := e.call(ep, u.cred)
				wantError(t, u.name+" credential", resp, body, http.StatusUnauthorized, "unauthorized")
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Fatalf("%s credential: WWW-Authenticate %q, want a Bearer challenge", u.name, got)
				}
			}
			for _, role := range []string{"admin", "provider", "tenant"} {
				if strings.Contains(strings.Join(ep.roles, ","), role) {
					continue
				}
				resp, body := e.call(ep, cred[role])
				wantError(t, role+" credential", resp, body, http.StatusForbidden, "forbidden")
			}
		})
	}
	// A credential in another scheme, or twice, is no credential.
	for name, header := range map[string][]string{
		"basic scheme": {"Basic " + e.tenant},
		"two headers":  {"Bearer " + e.tenant, "Bearer " + e.tenant},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.url+proto.PathStatus, nil)
		req.Header["Authorization"] = header
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: found %d, want 401", name, resp.StatusCode)
		}
	}

	// None of the refused calls did anything: the accounts, the pool and
	// t1's credential are as they were.
	for _, path := range []string{proto.PathAdminProviders, proto.PathAdminTenants} {
		resp, body := e.doJSON(e.admin, http.MethodPost, path, proto.NewAccount{ID: "made-by-a-stranger"}, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s after the refused calls: found %d %s, want 201", path, resp.StatusCode, body)
		}
	}
	if st := e.status(e.admin); len(st.Pools) != 1 || st.Pools[0].ID != "pool-1" {
		t.Fatalf("pools after the refused calls: found %+v, want only pool-1", st.Pools)
	}
	e.status(e.tenant) // t1's credential was not rotated
	if st := e.status(e.admin); len(st.Workers) != 0 {
		t.Fatalf("workers after the refused calls: found %+v, want none", st.Workers)
	}
}

func TestNoAdminCredentialConfigured(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.AdminCredentialHash = [32]byte{} })
	for _, ep := range endpoints() {
		if !strings.Contains(strings.Join(ep.roles, ","), "admin") {
			continue
		}
		for _, cred := range []string{e.admin, gateway.NewCredential(proto.CredentialAdmin)} {
			resp, body := e.call(ep, cred)
			wantError(t, ep.method+" "+ep.path, resp, body, http.StatusUnauthorized, "unauthorized")
		}
	}
}

func TestCreateAccounts(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		path, kind, prefix string
	}{
		{proto.PathAdminProviders, "provider", proto.CredentialProvider},
		{proto.PathAdminTenants, "tenant", proto.CredentialTenant},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			var acct proto.Account
			resp, body := e.doJSON(e.admin, http.MethodPost, tt.path, proto.NewAccount{ID: "acme", Name: "Acme GPUs"}, &acct)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: found %d %s, want 201", resp.StatusCode, body)
			}
			if acct.Kind != tt.kind || acct.ID != "acme" || acct.Name != "Acme GPUs" || !acct.CreatedAt.Equal(t0) {
				t.Fatalf("account: found %+v", acct)
			}
			if !strings.HasPrefix(acct.Credential, tt.prefix) || !gateway.ValidCredential(acct.Credential, tt.prefix) {
				t.Fatalf("credential %q: want the form of a %s credential", acct.Credential, tt.prefix)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control: found %q, want no-store on a response with a credential", resp.Header.Get("Cache-Control"))
			}
			// The credential works for its role.
			switch tt.kind {
			case "provider":
				pub, _, _ := ed25519.GenerateKey(rand.Reader)
				if resp, body := e.doJSON(acct.Credential, http.MethodPut, proto.PathProviderKey, proto.ProviderKey{PublicKey: pub}, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("the new provider's credential: %d %s", resp.StatusCode, body)
				}
			case "tenant":
				e.listing(acct.Credential, proto.TaskSummarize, 0)
			}
			// It is shown once: creating the same id again is refused
			// and shows no credential.
			resp, body = e.doJSON(e.admin, http.MethodPost, tt.path, proto.NewAccount{ID: "acme"}, nil)
			wantError(t, "second create", resp, body, http.StatusConflict, "exists")
			if strings.Contains(string(body), "credential") || strings.Contains(string(body), tt.prefix) {
				t.Fatalf("second create shows a credential: %s", body)
			}
		})
	}
	// A name defaults to the id.
	var acct proto.Account
	e.doJSON(e.admin, http.MethodPost, proto.PathAdminTenants, proto.NewAccount{ID: "bare"}, &acct)
	if acct.Name != "bare" {
		t.Fatalf("default name: found %q, want the id", acct.Name)
	}
}

func TestAccountValidation(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxRequestBody = 1 << 20 })
	tests := []struct {
		name string
		path string
		acct proto.NewAccount
	}{
		{"negative requests per second", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", RequestsPerSecond: -1}},
		{"requests per second too high", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", RequestsPerSecond: 2e6}},
		{"negative burst", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", BurstRequests: -1}},
		{"negative bytes per second", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", BytesPerSecond: -1}},
		{"negative burst bytes", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", BurstBytes: -1}},
		{"burst bytes below the largest request", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", BurstBytes: 1<<20 - 1}},
		{"limits on a provider", proto.PathAdminProviders, proto.NewAccount{ID: "valid-id", RequestsPerSecond: 1}},
		{"id with a space", proto.PathAdminTenants, proto.NewAccount{ID: "a b"}},
		{"empty id", proto.PathAdminTenants, proto.NewAccount{}},
		{"name too long", proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", Name: strings.Repeat("n", proto.MaxNameLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.doJSON(e.admin, http.MethodPost, tt.path, tt.acct, nil)
			wantError(t, "create", resp, body, http.StatusBadRequest, "bad_request")
		})
	}
	// The refusals created nothing: the id is still free.
	if resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminTenants, proto.NewAccount{ID: "valid-id", BurstBytes: 1 << 20}, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("a valid tenant after the refusals: %d %s", resp.StatusCode, body)
	}
}

func TestRotateCredential(t *testing.T) {
	e := newEnv(t)
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	for _, tt := range []struct {
		kind, id, old, prefix string
		use                   func(cred string) int // a call needing the credential; its status
	}{
		{"tenant", "t1", e.tenant, proto.CredentialTenant, func(cred string) int {
			resp, _ := e.doAs(cred, http.MethodGet, proto.PathCandidates+"?task=summarize", "", nil)
			return resp.StatusCode
		}},
		{"provider", "p1", e.provider.cred, proto.CredentialProvider, func(cred string) int {
			resp, _ := e.doAs(cred, http.MethodPost, proto.PathChallenge, "", nil)
			return resp.StatusCode
		}},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			// The old credential works, and is now in the cache.
			if got := tt.use(tt.old); got != http.StatusOK {
				t.Fatalf("old credential before rotation: found %d, want 200", got)
			}
			var acct proto.Account
			resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminRotate, proto.RotateKey{Kind: tt.kind, ID: tt.id}, &acct)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("rotate: %d %s", resp.StatusCode, body)
			}
			if !gateway.ValidCredential(acct.Credential, tt.prefix) || acct.Credential == tt.old {
				t.Fatalf("rotated credential %q: want a new %s credential", acct.Credential, tt.prefix)
			}
			if got := tt.use(tt.old); got != http.StatusUnauthorized {
				t.Fatalf("old credential right after rotation: found %d, want 401", got)
			}
			if got := tt.use(acct.Credential); got != http.StatusOK {
				t.Fatalf("new credential: found %d, want 200", got)
			}
			if tt.kind == "tenant" {
				e.tenant = acct.Credential
			}
		})
	}
	// The provider's worker stays admitted across its credential's
	// rotation.
	if _, ok := e.candidates(proto.TaskSummarize)[w.id]; !ok {
		t.Fatal("the worker is not listed after its provider's rotation")
	}
	resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminRotate, proto.RotateKey{Kind: "tenant", ID: "nobody"}, nil)
	wantError(t, "rotate an unknown tenant", resp, body, http.StatusNotFound, "not_found")
	resp, body = e.doJSON(e.admin, http.MethodPost, proto.PathAdminRotate, proto.RotateKey{Kind: "admin", ID: "t1"}, nil)
	wantError(t, "rotate an unknown kind", resp, body, http.StatusBadRequest, "bad_request")
}

func TestEnrollmentRefusals(t *testing.T) {
	e := newEnv(t)
	p2 := e.newProvider("p2")
	owned := newWorkerDouble(t, "owned", e.clock)
	e.register(owned, proto.TaskSummarize) // by p1

	// A provider with an account but no endorsement key.
	var keyless proto.Account
	if resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminProviders, proto.NewAccount{ID: "keyless"}, &keyless); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create keyless provider: %d %s", resp.StatusCode, body)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	keylessDouble := &providerDouble{id: "keyless", cred: keyless.Credential, key: otherKey}

	tests := []struct {
		name       string
		provider   *providerDouble // who registers; nil means p1
		id         string          // the worker id; "" means a fresh one
		edit       func(*proto.Registration)
		wantStatus int
		wantCode   string
	}{
		{name: "endorsed by another provider's key", edit: func(r *proto.Registration) {
			r.Endorsement = p2.endorse(r.WorkerID, r.Bundle)
		}, wantStatus: http.StatusForbidden, wantCode: "endorsement_refused"},
		{name: "endorsement of another worker id", edit: func(r *proto.Registration) {
			r.Endorsement = e.provider.endorse("another-id", r.Bundle)
		}, wantStatus: http.StatusForbidden, wantCode: "endorsement_refused"},
		{name: "provider without an endorsement key", provider: keylessDouble,
			wantStatus: http.StatusForbidden, wantCode: "endorsement_refused"},
		{name: "worker id of another provider's worker", provider: p2, id: owned.id,
			wantStatus: http.StatusForbidden, wantCode: "forbidden"},
		{name: "endorsement of the wrong length", edit: func(r *proto.Registration) { r.Endorsement = r.Endorsement[:10] },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "https without a tls pin", edit: func(r *proto.Registration) {
			r.URL = "https" + strings.TrimPrefix(r.URL, "http")
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "https with a malformed tls pin", edit: func(r *proto.Registration) {
			r.URL, r.TLSPin = "https"+strings.TrimPrefix(r.URL, "http"), "sha256/short"
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "http with a tls pin", edit: func(r *proto.Registration) {
			r.TLSPin = "sha256/" + strings.Repeat("A", 43)
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "capacity 0", edit: func(r *proto.Registration) { r.Capacity = 0 },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "capacity too big", edit: func(r *proto.Registration) { r.Capacity = proto.MaxCapacity + 1 },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "region with capitals", edit: func(r *proto.Registration) { r.Region = "EU-West" },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "region too long", edit: func(r *proto.Registration) { r.Region = strings.Repeat("a", proto.MaxRegionLen+1) },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "model with a space", edit: func(r *proto.Registration) { r.Models = []string{"llama 3"} },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "model too long", edit: func(r *proto.Registration) { r.Models = []string{strings.Repeat("m", proto.MaxModelLen+1)} },
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "too many models", edit: func(r *proto.Registration) {
			r.Models = make([]string, proto.MaxModels+1)
			for i := range r.Models {
				r.Models[i] = "m" + strings.Repeat("x", i%8)
			}
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if id == "" {
				id = "refused-" + string(rune('a'+i))
			}
			w := newWorkerDouble(t, id, e.clock)
			w.provider = tt.provider
			reg := e.registration(w, proto.TaskSummarize)
			if tt.edit != nil {
				tt.edit(&reg)
			}
			p := tt.provider
			if p == nil {
				p = e.provider
			}
			resp, body := e.postJSONAs(p.cred, proto.PathRegister, reg)
			wantError(t, "register", resp, body, tt.wantStatus, tt.wantCode)
			// Nothing changed: a refused worker is not listed, and the
			// owned one still belongs to p1.
			for _, c := range e.listing(e.tenant, proto.TaskSummarize, proto.MaxListed) {
				if c.WorkerID == id && id != owned.id {
					t.Fatalf("refused worker %s is listed", id)
				}
				if c.WorkerID == owned.id && c.ProviderID != "p1" {
					t.Fatalf("worker %s: listed for provider %q, want p1", owned.id, c.ProviderID)
				}
			}
		})
	}
	// The owned worker still routes to its own keys.
	e.relayOK(e.seal(proto.TaskSummarize, "still p1's", owned.key()), "still p1's", owned)
	// p2 can enroll a worker of its own under a fresh id.
	mine := newWorkerDouble(t, "p2-own", e.clock)
	mine.provider = p2
	e.register(mine, proto.TaskSummarize)
}

func TestPlainWorkersRefusedByDefault(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.InsecurePlainWorkers = false })
	w := newWorkerDouble(t, "plain", e.clock)
	resp, body := e.postJSON(proto.PathRegister, e.registration(w, proto.TaskSummarize))
	wantError(t, "plain-http worker", resp, body, http.StatusBadRequest, "bad_request")
	if !strings.Contains(string(body), "https") {
		t.Fatalf("the refusal does not say https is wanted: %s", body)
	}
}
