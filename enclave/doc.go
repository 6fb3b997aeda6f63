// Package enclave is the sealgate worker: the code that runs inside the
// TEE, holds the request keys and sees plaintext. It is the measured
// trusted computing base, so it imports only the standard library, proto,
// seal, internal/tlspin, the evidence sources and its backends
// (cmd/sealgate-worker's imports test enforces the allowlist).
//
// # Enrollment
//
// A Worker generates its keys in memory, asks its EvidenceSource for a
// report binding them (see proto.Bundle.ReportData) to a nonce the gateway
// issued (proto.PathChallenge), has its provider's Ed25519 key endorse
// them (proto.EndorsementMessage), and registers (proto.PathRegister) with
// its URL, tasks, capacity, region, models and TLS pin. Every call to the
// gateway carries the provider's credential as a bearer token, over TLS
// that Config.GatewayTLS verifies.
//
// # Mutual TLS
//
// The worker makes a self-signed TLS certificate at start (in memory
// only) and sends its pin in the registration; the gateway dials it with
// that pin as its only trust anchor. In turn the worker pins the key of
// the certificate the gateway presented to the worker's own enrollment
// calls, and serves only clients presenting that key: the gateway uses
// one certificate as its server and its client certificate. It keeps the
// last two gateway pins, so a gateway that changed its certificate can
// still reach it while it re-enrolls. Nobody reaching a worker directly
// gets inference, evidence or a key rotation out of it.
// Config.InsecurePlainHTTP turns all of this off for tests and benchmarks.
//
// # Re-attestation
//
// After enrolling, the worker does not re-register on a timer: the
// gateway re-challenges it every ReattestInterval at proto.PathAttest, and
// the worker answers each challenge with a new key generation, evidence
// bound to the challenge and its endorsement. A watchdog enrolls again if
// no challenge succeeds within twice ReattestInterval (the gateway
// restarted or lost the worker), and when a client presents an unpinned
// certificate and a fresh connection shows the gateway's key changed.
// proto.PathQuote answers a client's own nonce (strict mode, relayed by
// the gateway) with evidence for the current keys.
//
// Keys rotate at every re-attestation. The previous generation keeps
// serving requests sealed to it until the next rotation, so clients that
// listed the worker just before a rotation are not refused; each
// generation's seal.Opener refuses request ids it has already served, and
// rotation bounds that cache.
//
// # Backends
//
// Builtin serves summarize and translate on the CPU. OpenAI forwards
// chat, summarize and translate to an OpenAI-compatible model server on
// the worker's loopback inside the confidential VM (vLLM, llama.cpp's
// server, Ollama, SGLang); it refuses any other upstream. Summarize and
// translate become chat prompts whose exact text is documented in
// SummarizeSystemPrompt, SummarizePrompt, TranslateSystemPrompt and
// TranslatePrompt. Config.MaxInputBytes bounds each task's sealed input
// before any backend sees it.
//
// # Model identity
//
// A worker that serves a model binds its name and digest into every key
// generation's evidence (Config.ModelDigests, proto.WorkerKeys.Models,
// proto/SPEC.md §10.3), so the TEE report covers it and client policies
// can pin it (policy.ModelRules); the end event of a request names the
// digest of the model that served it (proto.EndBody.ModelDigest), set by
// the worker from what it binds, never by the backend. DigestModelDir
// computes the digest of a directory of weight files; a serving engine's
// own manifest digest can be bound instead. A worker that binds no model
// encodes its evidence exactly as before model digests existed.
//
// # Status codes
//
// proto.PathServe answers 200 with a sealed stream; task failures travel
// sealed inside it. It refuses with 421 (not sealed to a current key),
// 409 (replay), 400 (malformed, stale, bad suite, failed authentication),
// 413 (too large) and 503 with Retry-After (at capacity). The gateway
// fails over on 421 and 5xx. proto.PathAttest and proto.PathQuote answer
// 200 with JSON, 400 for a bad challenge or nonce, 413, 415 (not
// application/json) and 503 with Retry-After when busy or when evidence
// collection failed. Any route answers 403 to a request that did not come
// over mutual TLS from a pinned gateway key.
//
// Nothing here logs a prompt, a completion, a key, a credential, an
// encapsulation or an evidence bundle: logs carry request ids, tasks,
// sizes, durations, public pins and outcomes.
package enclave
