// Package enclave is the sealgate worker: the code that runs inside the
// TEE, holds the request keys and sees plaintext. It is the measured
// trusted computing base, so it imports only the standard library, proto,
// seal, the evidence sources and its backends (cmd/sealgate-worker's
// imports test enforces the allowlist).
//
// A Worker generates its keys in memory, asks its EvidenceSource for a
// report binding them (see proto.Bundle.ReportData) to a nonce the gateway
// issued, registers with the gateway, and serves sealed requests on
// proto.PathServe: it opens each request, runs the task on its Backend and
// streams the result back sealed under a key only the client can derive.
//
// Keys rotate at every re-attestation. The previous generation keeps
// serving requests sealed to it until the next rotation, so clients that
// listed the worker just before a rotation are not refused; each
// generation's seal.Opener refuses request ids it has already served, and
// rotation bounds that cache.
//
// Nothing here logs a prompt, a completion, a key or an encapsulation:
// logs carry request ids, tasks, sizes, durations and outcomes.
package enclave
