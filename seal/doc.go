// Package seal encrypts requests to attested workers and their responses
// back, following the format in ../proto/SPEC.md.
//
// A client calls Seal with the HPKE public keys of up to
// proto.MaxCandidates verified workers. The request body is encrypted once
// under a fresh data key; the data key is wrapped to every candidate with
// HPKE (RFC 9180, base mode, Go's crypto/hpke); the header carries a
// key-commitment tag; and the whole encoded header is the associated data of
// every wrap and every chunk. The answering worker derives its response key
// from its own HPKE exporter secret, a nonce of its own and the header hash,
// so only a candidate that opened the request can answer it, and the client
// learns, authenticated, which candidate did.
//
// Errors a caller branches on are sentinels: ErrAuthentication (any tamper
// with authenticated bytes, deliberately indistinguishable), ErrTruncated,
// ErrTrailingData, ErrNotCandidate, ErrReplay, ErrUnknownKey, ErrStale and
// ErrSuite. Framing errors wrap proto.ErrMalformed.
//
// Nothing in this package logs. Options.KeyLog is an insecure test hook in
// the manner of crypto/tls's KeyLogWriter: it writes secrets and must never
// be set in production.
package seal
