// Package client is sealgate's Go SDK. A Client discovers candidate workers
// through a gateway it does not trust, verifies each worker's evidence
// itself against its own attestation policy and the worker's provider
// endorsement of the attested keys, seals the request to up to K verified
// workers from distinct providers where it can (package seal), sends it
// through the gateway and opens the streamed response, learning
// (authenticated) which worker answered.
//
//	c, err := client.New(client.Config{
//		GatewayURL: "https://gateway.example",
//		Credential: tenantKey, // "sgt_…", from a file, never a flag
//	})
//	res, err := c.Summarize(ctx, text, client.SummarizeOptions{Sentences: 3})
//	fmt.Println(res.Text, res.Worker.ID, res.Worker.Kind, res.Worker.ProviderID)
//
// Chat streams: Client.Chat returns a ChatStream whose Deltas yield the
// reply's text as each sealed chunk arrives and authenticates, ending with
// an error if the stream is cut (so a short reply is never mistaken for a
// whole one); ChatStream.Collect gathers it instead, as Summarize does.
//
//	stream, err := c.Chat(ctx, proto.ChatRequest{Messages: msgs, Model: "llama-3.1-8b"})
//	for delta, err := range stream.Deltas() { ... }
//	end, ok := stream.End() // backend, model, token counts
//
// # Trust decisions
//
//   - Transport. The credential goes on every call, so the gateway is
//     reached over https only: against the system roots, or exactly the
//     certificates in Config.GatewayCA (a development gateway's
//     self-signed certificate). Plain http is allowed only to a loopback
//     address with Config.InsecurePlainHTTP. Redirects are refused.
//     TLS authenticates the gateway, not the workers: confidentiality
//     rests on the attestation and the sealing below, never on the
//     gateway.
//   - Evidence. Each listed bundle must pass Config.Policy.
//   - Endorsement. Each listed candidate must carry its provider's Ed25519
//     signature over proto.EndorsementMessage(worker id, the bundle's
//     keys hash), under the provider key listed with it, and that key must
//     be among Config.TrustedProviders when that is set. Its worker and
//     provider ids must be ones the gateway admits ([A-Za-z0-9._-], 1 to
//     64), so no control character reaches the caller. Provider
//     diversity counts distinct endorsing keys, never the gateway's
//     provider names. With Config.MinProviders, a request whose verified
//     candidates have fewer distinct keys is not sent (*DiversityError).
//   - Strict mode (Config.Strict). Each chosen candidate must also answer
//     a nonce the client draws with fresh evidence of the same keys.
//
// A candidate that fails any of these is a Refusal and is never sealed to.
//
// # Errors
//
// Errors a caller branches on: ErrNoCandidate (nothing verifiable to seal
// to; it wraps each refusal: *attestation.Error, *EndorsementError,
// *StrictEvidenceError), ErrDiversity (*DiversityError: fewer distinct
// provider keys among the verified candidates than Config.MinProviders),
// ErrUnauthorized (*AuthError: 401 or 403),
// ErrRateLimited (*RateLimitedError with RetryAfter: 429), ErrOverloaded
// (*OverloadedError with RetryAfter: 503), *GatewayError, *TaskError,
// ErrTruncated (*TruncatedError: the stream ended before its final sealed
// chunk, so no partial answer is returned; ChatStream.Deltas ends with it
// after the deltas that did arrive), ErrModel (*ModelError: the end
// event names a model digest the answering worker's verified evidence
// does not bind, or, when Config.Policy pins model digests, a model it
// does not bind), ErrInvalidRequest (*RequestError: a
// chat request the client refused to send), and seal's ErrAuthentication,
// ErrTrailingData and ErrNotCandidate for a forged response stream.
//
// The package does not log. Config and Client implement slog.LogValuer
// and fmt.Stringer without the credential. Config.KeyLog is an insecure
// test hook.
package client
