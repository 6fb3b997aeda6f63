package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
)

// credentialRandom is how many random bytes a credential carries.
const credentialRandom = 32

// credentialLen is the length of every credential: its prefix and the
// unpadded base64url of credentialRandom bytes.
const credentialLen = 4 + 43

// NewCredential returns a fresh credential with prefix, one of
// proto.CredentialAdmin, proto.CredentialProvider or
// proto.CredentialTenant.
func NewCredential(prefix string) string {
	var b [credentialRandom]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashCredential returns what the gateway stores of a credential.
func HashCredential(cred string) [32]byte { return sha256.Sum256([]byte(cred)) }

// ValidCredential reports whether cred has the form of a credential with
// the given prefix. It says nothing about whether the gateway knows it.
func ValidCredential(cred, prefix string) bool {
	if len(cred) != credentialLen || !strings.HasPrefix(cred, prefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(cred[len(prefix):])
	return err == nil
}

var (
	errNoCredential  = api.New(api.Unauthorized, "missing credential: send Authorization: Bearer <credential>")
	errBadCredential = api.New(api.Unauthorized, "unknown credential")
)

// principal is an authenticated caller, with a tenant's limits.
type principal struct {
	api.Principal
	limits TenantLimits
}

// credentialCache remembers recent credential lookups, so that a request
// does not cost a store query.
type credentialCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex // guards entries
	entries map[[32]byte]cachedPrincipal
}

type cachedPrincipal struct {
	p       principal
	expires time.Time
}

// maxCachedCredentials bounds the cache; when full it is emptied.
const maxCachedCredentials = 100_000

func (c *credentialCache) init(ttl time.Duration, now func() time.Time) {
	c.ttl, c.now, c.entries = ttl, now, make(map[[32]byte]cachedPrincipal)
}

func (c *credentialCache) get(h [32]byte) (principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if !ok || !e.expires.After(c.now()) {
		return principal{}, false
	}
	return e.p, true
}

func (c *credentialCache) put(h [32]byte, p principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedCredentials {
		clear(c.entries)
	}
	c.entries[h] = cachedPrincipal{p: p, expires: c.now().Add(c.ttl)}
}

// forget drops every cached credential of the account id with role.
func (c *credentialCache) forget(role api.Role, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.p.Role == role && e.p.ID == id {
			delete(c.entries, h)
		}
	}
}

// authenticate returns the principal whose credential is cred.
func (g *Gateway) authenticate(ctx context.Context, cred string) (principal, error) {
	if cred == "" {
		return principal{}, errNoCredential
	}
	var role api.Role
	switch {
	case ValidCredential(cred, proto.CredentialAdmin):
		role = api.RoleAdmin
	case ValidCredential(cred, proto.CredentialProvider):
		role = api.RoleProvider
	case ValidCredential(cred, proto.CredentialTenant):
		role = api.RoleTenant
	default:
		return principal{}, errBadCredential
	}
	h := HashCredential(cred)
	if role == api.RoleAdmin {
		want := g.cfg.AdminCredentialHash
		if want == ([32]byte{}) || subtle.ConstantTimeCompare(h[:], want[:]) != 1 {
			return principal{}, errBadCredential
		}
		return principal{Principal: api.Principal{Role: api.RoleAdmin}}, nil
	}
	if p, ok := g.creds.get(h); ok {
		return p, nil
	}
	var p principal
	switch role {
	case api.RoleProvider:
		pr, err := g.store.ProviderByKeyHash(ctx, h)
		if err != nil {
			return principal{}, lookupError(err)
		}
		p.Principal = api.Principal{Role: role, ID: pr.ID}
	case api.RoleTenant:
		t, err := g.store.TenantByKeyHash(ctx, h)
		if err != nil {
			return principal{}, lookupError(err)
		}
		p.Principal = api.Principal{Role: role, ID: t.ID}
		p.limits = TenantLimits{RequestsPerSecond: t.RequestsPerSecond, BurstRequests: t.BurstRequests, BytesPerSecond: t.BytesPerSecond, BurstBytes: t.BurstBytes}
	}
	g.creds.put(h, p)
	return p, nil
}

func lookupError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errBadCredential
	}
	return api.Wrap(api.Internal, "internal error", err)
}

// Authenticate checks cred and returns its principal: api.Unauthorized for
// a missing or unknown credential.
func (g *Gateway) Authenticate(ctx context.Context, cred string) (api.Principal, error) {
	p, err := g.authenticate(ctx, cred)
	return p.Principal, err
}

// require authenticates cred and checks its role.
func (g *Gateway) require(ctx context.Context, cred string, role api.Role) (principal, error) {
	p, err := g.authenticate(ctx, cred)
	if err != nil {
		return principal{}, err
	}
	if p.Role != role {
		return principal{}, api.New(api.Forbidden, "this endpoint needs a "+string(role)+" credential")
	}
	return p, nil
}
