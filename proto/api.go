package proto

import "time"

// HTTP paths and media types of the gateway and worker APIs. The JSON
// bodies below are their wire types; the sealed bodies are specified in
// SPEC.md.
const (
	// Gateway, for clients.
	PathCandidates = "/v1/candidates" // GET ?task=T&max=N -> CandidateList
	PathRequests   = "/v1/requests"   // POST MediaTypeRequest (a MagicRequest message) -> MediaTypeResponse stream
	PathEvidence   = "/v1/evidence"   // POST EvidenceRequest -> Evidence (strict mode: the client's own nonce)
	PathStatus     = "/v1/status"     // GET -> Status (the tenant's pools)
	// Gateway, for providers (and the workers they run).
	PathChallenge   = "/v1/workers/challenge" // POST, empty body or application/json -> Challenge
	PathRegister    = "/v1/workers/register"  // POST application/json Registration -> Admission
	PathProviderKey = "/v1/provider/key"      // PUT ProviderKey -> ProviderKey
	// Gateway, for the operator (admin credential).
	PathAdminProviders = "/v1/admin/providers" // POST NewAccount -> Account
	PathAdminTenants   = "/v1/admin/tenants"   // POST NewAccount -> Account
	PathAdminPools     = "/v1/admin/pools"     // POST PoolSpec -> PoolStatus; DELETE PathAdminPools+"/"+id
	PathAdminRotate    = "/v1/admin/rotate"    // POST RotateKey -> Account (with its new key)
	PathAdminStatus    = "/v1/admin/status"    // GET -> Status (every pool and worker)
	// Worker, for the gateway (mutual TLS).
	PathServe  = "/v1/serve"  // POST MediaTypeForward (a MagicForward message) -> MediaTypeResponse stream
	PathAttest = "/v1/attest" // POST Challenge -> Attestation (new keys, evidence bound to the challenge)
	PathQuote  = "/v1/quote"  // POST EvidenceRequest -> Evidence (current keys, the client's nonce)
	// Both.
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"

	MediaTypeRequest  = "application/vnd.sealgate.request"
	MediaTypeForward  = "application/vnd.sealgate.forward"
	MediaTypeResponse = "application/vnd.sealgate.response"

	// HeaderAuthorization carries a credential as "Bearer " + key.
	HeaderAuthorization = "Authorization"

	// HeaderWorker names, unauthenticated and for information only, the
	// worker the gateway relayed a request to. Clients learn the answering
	// candidate from the sealed response itself.
	HeaderWorker = "Sealgate-Worker"
)

// Limits on the JSON APIs.
const (
	MaxJSONBody     = 8 << 20 // a registration carries a bundle, base64
	MaxWorkerIDLen  = 64
	MaxWorkerURLLen = 256
	MaxListed       = 16
	MaxRegionLen    = 32
	MaxModels       = 16
	MaxModelLen     = 128
	MaxCapacity     = 4096
	MaxNameLen      = 64
	MaxPoolWorkers  = 1024
)

// Credential prefixes. A credential is its prefix and 43 characters of
// unpadded base64url (32 random bytes); the gateway keeps only its
// SHA-256.
const (
	CredentialAdmin    = "sga_"
	CredentialProvider = "sgp_"
	CredentialTenant   = "sgt_"
)

// Challenge is a fresh nonce the gateway issues a worker to bind into its
// evidence.
type Challenge struct {
	// Nonce is the nonce the evidence must bind: NonceSize bytes, base64
	// in JSON. It equals AnchoredNonce(Anchor).
	Nonce []byte `json:"nonce"`
	// Anchor is the encoded time anchor the nonce derives from; the worker
	// puts it in its bundle.
	Anchor    []byte    `json:"anchor"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Registration is a worker's request to be admitted.
type Registration struct {
	// WorkerID is the worker's stable name: 1 to MaxWorkerIDLen characters
	// from [A-Za-z0-9._-].
	WorkerID string `json:"worker_id"`
	// URL is where the gateway reaches the worker's PathServe.
	URL string `json:"url"`
	// Tasks lists the tasks the worker serves.
	Tasks []string `json:"tasks"`
	// Bundle is the encoded evidence bundle, bound to a nonce from a
	// Challenge.
	Bundle []byte `json:"bundle"`
	// Endorsement is the provider's Ed25519 signature over
	// EndorsementMessage(WorkerID, keys hash of Bundle), under the signing
	// key the provider registered at PathProviderKey.
	Endorsement []byte `json:"endorsement"`
	// TLSPin is the pin ("sha256/" + base64url of the SHA-256 of the
	// SubjectPublicKeyInfo) of the certificate the worker serves with, or
	// empty for an INSECURE plain-http worker.
	TLSPin string `json:"tls_pin,omitempty"`
	// Capacity is how many requests the worker serves at once, 1 to
	// MaxCapacity.
	Capacity int `json:"capacity"`
	// Region is a free-form placement label such as "eu-west", up to
	// MaxRegionLen characters of [a-z0-9-]; empty means unknown.
	Region string `json:"region,omitempty"`
	// Models lists the models the worker serves, up to MaxModels names.
	Models []string `json:"models,omitempty"`
}

// Attestation is a worker's answer to a re-attestation challenge the
// gateway sends to PathAttest: fresh keys, evidence bound to the
// challenge, and the provider's endorsement of the new keys.
type Attestation struct {
	Bundle      []byte `json:"bundle"`
	Endorsement []byte `json:"endorsement"`
}

// EvidenceRequest asks for evidence of a worker's current keys bound to
// the client's own nonce (strict mode). WorkerID names the worker at the
// gateway and is not sent on to the worker.
type EvidenceRequest struct {
	WorkerID string `json:"worker_id,omitempty"`
	Nonce    []byte `json:"nonce"`
}

// Evidence answers an EvidenceRequest: a bundle whose nonce is the
// client's.
type Evidence struct {
	Bundle []byte `json:"bundle"`
}

// ProviderKey is a provider's Ed25519 endorsement public key.
type ProviderKey struct {
	PublicKey []byte `json:"public_key"`
}

// NewAccount creates a provider or a tenant. The limits apply to tenants
// only; zero means the gateway's defaults.
type NewAccount struct {
	ID                string  `json:"id"`
	Name              string  `json:"name,omitempty"`
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	BurstRequests     int     `json:"burst_requests,omitempty"`
	BytesPerSecond    int64   `json:"bytes_per_second,omitempty"`
	BurstBytes        int64   `json:"burst_bytes,omitempty"`
}

// Account answers NewAccount and RotateKey. Credential is shown once and
// never stored.
type Account struct {
	Kind       string    `json:"kind"` // "provider" or "tenant"
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	Credential string    `json:"credential,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// RotateKey replaces the credential of a provider or tenant; the old one
// stops working at once.
type RotateKey struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// PoolSpec creates a tenant's reserved pool: named nodes, a share of the
// network's capacity in concurrent requests (Slots), or both. Lend lets
// other tenants be listed the pool's nodes while they have spare capacity.
type PoolSpec struct {
	ID       string   `json:"id"`
	TenantID string   `json:"tenant_id"`
	Name     string   `json:"name,omitempty"`
	Workers  []string `json:"workers,omitempty"`
	Slots    int      `json:"slots,omitempty"`
	Lend     bool     `json:"lend,omitempty"`
}

// PoolStatus is a pool's capacity and use now.
type PoolStatus struct {
	PoolSpec
	// Capacity is the pool's concurrent requests: its admitted nodes'
	// capacity plus Slots.
	Capacity int `json:"capacity"`
	// InUse is the tenant's requests in flight on the pool.
	InUse int `json:"in_use"`
	// WorkersAdmitted counts the pool's nodes that are admitted now.
	WorkersAdmitted int `json:"workers_admitted"`
}

// WorkerStatus is one worker as the operator sees it.
type WorkerStatus struct {
	WorkerID    string    `json:"worker_id"`
	ProviderID  string    `json:"provider_id"`
	Kind        string    `json:"kind"`
	State       string    `json:"state"` // "active", "draining"
	Capacity    int       `json:"capacity"`
	Outstanding int       `json:"outstanding"`
	Region      string    `json:"region,omitempty"`
	Breaker     string    `json:"breaker"`
	ExpiresAt   time.Time `json:"expires_at"`
	AttestedAt  time.Time `json:"attested_at"`
}

// Status answers PathStatus (a tenant's pools) and PathAdminStatus
// (every pool and worker).
type Status struct {
	Pools   []PoolStatus   `json:"pools"`
	Workers []WorkerStatus `json:"workers,omitempty"`
	// Capacity and InUse are the listed network's, pools included.
	Capacity int `json:"capacity"`
	InUse    int `json:"in_use"`
}

// Admission is the gateway's answer to an accepted Registration.
type Admission struct {
	WorkerID   string    `json:"worker_id"`
	Kind       string    `json:"kind"`
	AdmittedAt time.Time `json:"admitted_at"`
	// ExpiresAt is when the evidence leaves the freshness window; the
	// worker must register fresh evidence before then.
	ExpiresAt time.Time `json:"expires_at"`
	Policy    string    `json:"policy"`
}

// CandidateList answers PathCandidates.
type CandidateList struct {
	Candidates []CandidateInfo `json:"candidates"`
	// LogCheckpoint is the gateway's latest signed transparency-log
	// checkpoint (a C2SP signed note) that the candidates' Log proofs
	// are against. Gateways before the log leave it out.
	LogCheckpoint []byte `json:"log_checkpoint,omitempty"`
}

// CandidateInfo is one listed worker. Nothing in it is trusted by the
// client until it has verified Bundle itself.
type CandidateInfo struct {
	WorkerID string   `json:"worker_id"`
	Tasks    []string `json:"tasks"`
	Bundle   []byte   `json:"bundle"`
	// ProviderID names the worker's provider, and ProviderKey is the
	// Ed25519 key whose Endorsement over the bundle's keys the client
	// checks; distinct ProviderKeys are independent providers.
	ProviderID  string   `json:"provider_id"`
	ProviderKey []byte   `json:"provider_key"`
	Endorsement []byte   `json:"endorsement"`
	Region      string   `json:"region,omitempty"`
	Models      []string `json:"models,omitempty"`
	Capacity    int      `json:"capacity"`
	// Pool is the id of the caller's reserved pool this worker belongs
	// to, if any.
	Pool string `json:"pool,omitempty"`
	// Log places this candidate's evidence in the transparency log;
	// nil when the gateway could not prove it (a client that checks the
	// log refuses such a candidate) or has no log.
	Log *LogInclusion `json:"log,omitempty"`
}

// ErrorResponse is the body of every JSON error from the gateway or a
// worker.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// endorsementLabel separates endorsement signatures from every other use
// of a provider's key.
const endorsementLabel = "sealgate/v1 endorsement\x00"

// EndorsementMessage is what a provider signs to endorse a node: the
// worker's name and the SHA-256 of its keys as the bundle encodes them
// (Bundle.KeysHash), so the endorsement covers exactly the keys the
// evidence binds. It is at most 1+MaxWorkerIDLen+32 bytes past the label.
func EndorsementMessage(workerID string, keysHash [32]byte) []byte {
	m := make([]byte, 0, len(endorsementLabel)+1+len(workerID)+32)
	m = append(m, endorsementLabel...)
	m = append(m, byte(len(workerID)))
	m = append(m, workerID...)
	return append(m, keysHash[:]...)
}
