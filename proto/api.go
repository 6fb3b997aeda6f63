package proto

import "time"

// HTTP paths and media types of the gateway and worker APIs. The JSON
// bodies below are their wire types; the sealed bodies are specified in
// SPEC.md.
const (
	// Gateway, for clients.
	PathCandidates = "/v1/candidates" // GET ?task=T&max=N -> CandidateList
	PathRequests   = "/v1/requests"   // POST MediaTypeRequest (a MagicRequest message) -> MediaTypeResponse stream
	// Gateway, for workers.
	PathChallenge = "/v1/workers/challenge" // POST, empty body or application/json -> Challenge
	PathRegister  = "/v1/workers/register"  // POST application/json Registration -> Admission
	// Worker, for the gateway.
	PathServe = "/v1/serve" // POST MediaTypeForward (a MagicForward message) -> MediaTypeResponse stream
	// Both.
	PathHealth = "/healthz"

	MediaTypeRequest  = "application/vnd.sealgate.request"
	MediaTypeForward  = "application/vnd.sealgate.forward"
	MediaTypeResponse = "application/vnd.sealgate.response"

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
}

// CandidateInfo is one listed worker. Nothing in it is trusted by the
// client until it has verified Bundle itself.
type CandidateInfo struct {
	WorkerID string   `json:"worker_id"`
	Tasks    []string `json:"tasks"`
	Bundle   []byte   `json:"bundle"`
}

// ErrorResponse is the body of every JSON error from the gateway or a
// worker.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}
