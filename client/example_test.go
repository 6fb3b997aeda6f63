package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/devnet"
)

// A private summarize request through a local network of simulated-TEE
// workers. Against a real gateway, leave Policy nil: the default policy
// accepts hardware TEEs only.
func ExampleClient_Summarize() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer network.Close()

	c, err := client.New(client.Config{
		GatewayURL: network.GatewayURL,
		Policy:     policy.InsecureSimulated(), // INSECURE: accepts the simulated TEE
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
	// Output:
	// Hospitals hesitate to send records to cloud AI. Attestation lets a hospital verify the code that will process its records.
	// tee: sim simulated: true
}

// Listing and verifying the candidates for a task without sending anything.
func ExampleClient_Workers() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: dir, Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer network.Close()

	c, _ := client.New(client.Config{GatewayURL: network.GatewayURL}) // hardware-only policy
	verified, refused, err := c.Workers(context.Background(), "summarize")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", len(verified), "refused:", len(refused))
	fmt.Println(refused[0].Err)
	// Output:
	// verified: 0 refused: 2
	// attestation policy: allow_simulated: found simulated TEE evidence, want one of [tdx snp] (policy "default-hardware" does not allow simulated evidence)
}
