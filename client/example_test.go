package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/client/internal/gatewaytest"
	"github.com/sealgate/sealgate/proto"
)

// startGateway starts a test double of a gateway on 127.0.0.1, over TLS
// with a self-signed certificate, listing simulated-TEE workers of two
// providers, and returns it with the tenant credential it accepts.
func startGateway() (*gatewaytest.Gateway, string) {
	a, b := gatewaytest.NewProvider("provider-a"), gatewaytest.NewProvider("provider-b")
	var workers []*gatewaytest.Worker
	for _, w := range []struct {
		id string
		p  *gatewaytest.Provider
	}{{"a-1", a}, {"a-2", a}, {"b-1", b}} {
		worker, err := gatewaytest.NewWorker(w.id, w.p, nil)
		if err != nil {
			log.Fatal(err)
		}
		workers = append(workers, worker)
	}
	credential := gatewaytest.Credential()
	return gatewaytest.Start(gatewaytest.Config{Credential: credential, Workers: workers}), credential
}

// A private summarize request. The credential is the tenant's API key, as
// the gateway's operator issued it (read it from a file, not a flag);
// GatewayCA trusts a development gateway's self-signed certificate. Against
// a real gateway, leave Policy nil: the default policy accepts hardware
// TEEs only.
func ExampleClient_Summarize() {
	gw, credential := startGateway()
	defer gw.Close()

	c, err := client.New(client.Config{
		GatewayURL: gw.URL,
		Credential: credential,
		GatewayCA:  gw.CertPEM,                 // the gateway's self-signed certificate, PEM
		Policy:     policy.InsecureSimulated(), // INSECURE: accepts the simulated TEE
		K:          2,
	})
	if err != nil {
		log.Fatal(err)
	}
	text := "Hospitals hesitate to send records to cloud AI. " +
		"Confidential computing keeps records encrypted while a model processes them. " +
		"The weather was pleasant. " +
		"Attestation lets a hospital verify the code that will process its records."
	res, err := c.Summarize(context.Background(), text, client.SummarizeOptions{Sentences: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text)
	fmt.Println("tee:", res.Worker.Kind, "simulated:", res.Worker.Simulated)
	for _, w := range res.Candidates {
		fmt.Println("sealed to", w.ID, "endorsed by", w.ProviderID)
	}
	// Output:
	// Hospitals hesitate to send records to cloud AI. Attestation lets a hospital verify the code that will process its records.
	// tee: sim simulated: true
	// sealed to a-1 endorsed by provider-a
	// sealed to b-1 endorsed by provider-b
}

// Listing and verifying the candidates for a task without sending anything.
func ExampleClient_Workers() {
	gw, credential := startGateway()
	defer gw.Close()

	c, _ := client.New(client.Config{GatewayURL: gw.URL, Credential: credential, GatewayCA: gw.CertPEM}) // hardware-only policy
	verified, refused, err := c.Workers(context.Background(), "summarize")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", len(verified), "refused:", len(refused))
	fmt.Println(refused[0].Err)
	// Output:
	// verified: 0 refused: 3
	// attestation policy: allow_simulated: found simulated TEE evidence, want one of [tdx snp] (policy "default-hardware" does not allow simulated evidence)
}

// Strict mode: each worker the request is sealed to first proves its keys
// with evidence bound to a nonce the client drew just now.
func ExampleConfig_strict() {
	gw, credential := startGateway()
	defer gw.Close()

	c, err := client.New(client.Config{
		GatewayURL: gw.URL, Credential: credential, GatewayCA: gw.CertPEM,
		Policy: policy.InsecureSimulated(), // INSECURE: accepts the simulated TEE
		Strict: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Summarize(context.Background(), "One sentence here. Another one there.", client.SummarizeOptions{Sentences: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("candidates:", len(res.Candidates), "fresh evidence:", res.Worker.Strict)
	// Output:
	// candidates: 3 fresh evidence: true
}

// startChatGateway is startGateway with workers listed for chat and a
// model: the double's chat echoes the last user message, word by word.
func startChatGateway() (*gatewaytest.Gateway, string) {
	p := gatewaytest.NewProvider("provider-a")
	w, err := gatewaytest.NewWorker("chat-1", p, nil)
	if err != nil {
		log.Fatal(err)
	}
	w.Tasks, w.Models = []string{proto.TaskChat}, []string{"echo-1"}
	credential := gatewaytest.Credential()
	return gatewaytest.Start(gatewaytest.Config{Credential: credential, Workers: []*gatewaytest.Worker{w}}), credential
}

// A private chat, streamed: each delta is printed as it arrives,
// authenticated as the verified worker's. An error ends the loop; text
// already shown is then incomplete, and the error says why (a
// *client.TruncatedError when the stream was cut).
func ExampleClient_Chat() {
	gw, credential := startChatGateway()
	defer gw.Close()

	c, err := client.New(client.Config{
		GatewayURL: gw.URL, Credential: credential, GatewayCA: gw.CertPEM,
		Policy: policy.InsecureSimulated(), // INSECURE: accepts the simulated TEE
	})
	if err != nil {
		log.Fatal(err)
	}
	stream, err := c.Chat(context.Background(), proto.ChatRequest{
		Model: "echo-1",
		Messages: []proto.ChatMessage{
			{Role: proto.RoleSystem, Content: "You are terse."},
			{Role: proto.RoleUser, Content: "keep this between us"},
		},
	})
	if err != nil {
		log.Fatal(err) // nothing was sent, or the gateway refused it
	}
	fmt.Println("answering:", stream.Worker.ID, "tee:", stream.Worker.Kind)
	for delta, err := range stream.Deltas() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("[%s]", delta)
	}
	end, _ := stream.End()
	fmt.Printf("\nmodel %s, %d units in, %d out\n", end.Model, end.InputUnits, end.OutputUnits)
	// Output:
	// answering: chat-1 tee: sim
	// [You][ said:][ keep][ this][ between][ us]
	// model echo-1, 7 units in, 6 out
}

// Collecting a chat reply whole, as Summarize does: a stream that is cut
// returns an error and no partial text.
func ExampleChatStream_Collect() {
	gw, credential := startChatGateway()
	defer gw.Close()

	c, err := client.New(client.Config{
		GatewayURL: gw.URL, Credential: credential, GatewayCA: gw.CertPEM,
		Policy: policy.InsecureSimulated(), // INSECURE: accepts the simulated TEE
	})
	if err != nil {
		log.Fatal(err)
	}
	stream, err := c.Chat(context.Background(), proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: "hello"}}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := stream.Collect()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text)
	fmt.Println("worker:", res.Worker.ID, "evidence sha256 bytes:", len(res.Worker.BundleHash)/2, "model:", res.End.Model)
	// Output:
	// You said: hello
	// worker: chat-1 evidence sha256 bytes: 32 model: echo-double
}

// A private translation. The test double here answers from a two-line
// phrasebook (it is not a translator); a real worker's builtin backend
// runs Apertium inside the TEE, and its openai backend a model. An error
// from the worker (an unsupported pair, say) comes back sealed as a
// *client.TaskError.
func ExampleClient_Translate() {
	p := gatewaytest.NewProvider("provider-a")
	w, err := gatewaytest.NewWorker("tr-1", p, nil)
	if err != nil {
		log.Fatal(err)
	}
	w.Tasks = []string{proto.TaskTranslate}
	phrasebook := map[string]string{"Good morning.": "Buenos días.", "Thank you.": "Gracias."}
	credential := gatewaytest.Credential()
	gw := gatewaytest.Start(gatewaytest.Config{Credential: credential, Workers: []*gatewaytest.Worker{w},
		Output: func(task string, payload []byte) (string, error) {
			var req proto.TranslateRequest
			if err := proto.DecodeTask(payload, &req); err != nil {
				return "", err
			}
			if out, ok := phrasebook[req.Text]; ok && req.From == "en" && req.To == "es" {
				return out, nil
			}
			return "", fmt.Errorf("no translation of %q from %s to %s", req.Text, req.From, req.To)
		}})
	defer gw.Close()

	c, err := client.New(client.Config{
		GatewayURL: gw.URL, Credential: credential, GatewayCA: gw.CertPEM,
		Policy: policy.InsecureSimulated(), // INSECURE: accepts the simulated TEE
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Translate(context.Background(), "Good morning.", "en", "es")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text, "from", res.Worker.ID)
	// Output:
	// Buenos días. from tr-1
}
