package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/http"
	"strings"

	"github.com/sealgate/sealgate/proto"
)

const providerUsage = `usage: sealgate provider <command> [flags]

commands:
  keygen        -out FILE
  register-key  -gateway URL -credential-file FILE -key-file FILE [-gateway-ca FILE] [-insecure-plain-http]

keygen writes a new Ed25519 endorsement key (PKCS#8 PEM, mode 0600) and
prints its public key in base64; sealgate-worker reads the key file with
-provider-key-file. register-key registers its public key at the gateway
with the provider's credential.
`

// maxKeyFile bounds a provider key file.
const maxKeyFile = 16 << 10

func runProvider(ctx context.Context, args []string, sio stdio) error {
	if len(args) == 0 {
		return &usageError{strings.TrimSuffix(providerUsage, "\n")}
	}
	switch args[0] {
	case "keygen":
		return runProviderKeygen(args[1:], sio)
	case "register-key":
		return runProviderRegisterKey(ctx, args[1:], sio)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(sio.stdout, providerUsage)
		return nil
	}
	return &usageError{fmt.Sprintf("unknown provider command %q: want keygen or register-key", args[0])}
}

func runProviderKeygen(args []string, sio stdio) error {
	fs := flag.NewFlagSet("sealgate provider keygen", flag.ContinueOnError)
	fs.SetOutput(sio.stderr)
	out := fs.String("out", "", "write the private key to this new file (required; mode 0600)")
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return &usageError{"-out is required"}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := createSecretFile(*out)
	if err != nil {
		return err
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %v", *out, werr)
	}
	fmt.Fprintf(sio.stderr, "sealgate: wrote a new Ed25519 endorsement key to %s; its public key follows\n", *out)
	_, err = fmt.Fprintln(sio.stdout, base64.StdEncoding.EncodeToString(pub))
	return err
}

func runProviderRegisterKey(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("sealgate provider register-key", flag.ContinueOnError)
	fs.SetOutput(sio.stderr)
	var gf gatewayFlags
	gf.register(fs, sio.getenv, "", "file holding the provider's credential (sgp_...) (required)")
	keyFile := fs.String("key-file", "", "the provider's endorsement key, as written by 'sealgate provider keygen' (required)")
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	if *keyFile == "" {
		return &usageError{"-key-file is required"}
	}
	priv, err := readProviderKey(*keyFile)
	if err != nil {
		return err
	}
	pub := priv.Public().(ed25519.PublicKey)
	raw, err := gf.do(ctx, sio, providerCredential, http.MethodPut, proto.PathProviderKey, proto.ProviderKey{PublicKey: pub})
	if err != nil {
		return err
	}
	var got proto.ProviderKey
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("gateway answer to PUT %s: %v", proto.PathProviderKey, err)
	}
	if !bytes.Equal(got.PublicKey, pub) {
		return fmt.Errorf("gateway answer to PUT %s: public key %s, want the registered %s", proto.PathProviderKey,
			base64.StdEncoding.EncodeToString(got.PublicKey), base64.StdEncoding.EncodeToString(pub))
	}
	if gf.json {
		return printJSON(sio.stdout, raw)
	}
	_, err = fmt.Fprintf(sio.stdout, "registered endorsement key %s\n", base64.StdEncoding.EncodeToString(pub))
	return err
}

// readProviderKey reads an Ed25519 private key from a PKCS#8 PEM file.
// Errors never quote the file's content.
func readProviderKey(path string) (ed25519.PrivateKey, error) {
	data, err := readLimited(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("-key-file: %v", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("-key-file %s: want one PEM PRIVATE KEY block, as 'sealgate provider keygen' writes", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("-key-file %s: %v", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("-key-file %s: found a %T, want an Ed25519 key", path, key)
	}
	return priv, nil
}
