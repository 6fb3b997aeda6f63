// Package client is sealgate's Go SDK. A Client discovers candidate workers
// through a gateway it does not trust, verifies each worker's evidence
// itself against its own attestation policy, seals the request to up to K
// verified workers (package seal), sends it through the gateway and opens
// the streamed response, learning (authenticated) which worker answered.
//
//	c, err := client.New(client.Config{GatewayURL: "https://gateway.example"})
//	res, err := c.Summarize(ctx, text, client.SummarizeOptions{Sentences: 3})
//	fmt.Println(res.Text, res.Worker.ID, res.Worker.Kind)
//
// Errors a caller branches on: ErrNoCandidate (nothing verifiable to seal
// to; it wraps the attestation refusals, see Refusals), ErrOverloaded (with
// RetryAfter), *GatewayError, *TaskError, and seal's ErrTruncated and
// ErrAuthentication for a broken or forged response stream.
//
// The package does not log. Config.KeyLog is an insecure test hook.
package client
