// Command sealgate is the gateway, the client CLI and the demo.
//
//	sealgate gateway    run a gateway
//	sealgate summarize  summarize a file or stdin through a gateway
//	sealgate translate  translate a file or stdin through a gateway
//	sealgate chat       chat with a verified worker, streaming the reply
//	sealgate proxy      serve an OpenAI-compatible API on loopback, sealing every request
//	sealgate workers    list a gateway's candidates for a task with this client's verdicts
//	sealgate demo       run a local network and a private summarize request; -serve keeps it up
//	sealgate attest     verify or inspect an evidence bundle offline
//	sealgate admin      manage a gateway's providers, tenants, pools and credentials
//	sealgate provider   make and register a provider's endorsement key
//	sealgate version    print the version
//
// Exit codes: 0 success; 1 other error; 2 usage; 3 no verified candidate
// (attestation refused); 4 gateway error or overload; 5 the task failed in
// the worker; 6 the response failed integrity checks (truncated or forged).
// 7 the gateway refused the credential (401 or 403); 8 rate limited by the
// gateway (429).
// `sealgate attest verify` exits 10 to 19 by verdict class: 10 malformed,
// 11 unknown kind, 12 signature, 13 certificate chain, 14 revocation, 15
// collateral expired, 16 policy, 17 binding, 18 stale, 19 options.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/sealgate/sealgate/audit"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/seal"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = ""

const usage = `usage: sealgate <command> [flags]

commands:
  gateway    run a gateway
  summarize  summarize a file or stdin through a gateway
  translate  translate a file or stdin through a gateway
  chat       send a message to a verified chat worker and stream its reply
  proxy      serve an OpenAI-compatible API on loopback that verifies and seals every request
  workers    list a gateway's candidates for a task with this client's verification verdicts
  demo       run a local gateway and simulated-TEE workers and summarize a sample document
             (-serve DIR keeps the network up for the other commands)
  attest     verify or inspect a worker's evidence bundle offline
  audit      replay a gateway's transparency log and re-verify every admission
  admin      manage a gateway's providers, tenants, pools and credentials
  provider   make and register a provider's endorsement key
  version    print the version

Run 'sealgate <command> -h' for a command's flags.

exit codes of summarize and translate:
  0 success, 1 other error, 2 usage, 3 no verified candidate (refused by
  attestation, endorsement or strict mode), 4 gateway error or overload,
  5 the task failed in the worker, 6 the response was truncated or forged,
  7 the gateway refused the credential (401/403), 8 rate limited (429)
  workers exits 0 when at least one candidate is verified, 3 when none is
  chat exits as summarize does; a reply cut off mid-stream has been partly
  printed, is followed by an error on stderr and exits 6 (5 if the task failed)
  proxy exits 0 on SIGINT or SIGTERM, 2 for a non-loopback -listen
  audit replay exits 0 when it finds nothing, 20 when the log holds entries
  that should not be there (JSON lines on stdout say which), 21 when the log
  itself fails a check (signature, tree, fork)
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "gateway":
		err = runGateway(ctx, args[1:], os.Getenv)
	case "summarize":
		err = runSummarize(ctx, args[1:])
	case "translate":
		err = runTranslate(ctx, args[1:])
	case "chat":
		err = runChat(ctx, args[1:], os.Stdout)
	case "proxy":
		err = runProxy(ctx, args[1:])
	case "workers":
		err = runWorkers(ctx, args[1:], os.Stdout)
	case "demo":
		err = runDemo(ctx, args[1:])
	case "attest":
		err = runAttest(ctx, args[1:])
	case "audit":
		err = runAudit(ctx, args[1:], os.Stdout, os.Stderr)
	case "admin":
		err = runAdmin(ctx, args[1:], stdio{os.Stdout, os.Stderr, os.Getenv})
	case "provider":
		err = runProvider(ctx, args[1:], stdio{os.Stdout, os.Stderr, os.Getenv})
	case "version":
		fmt.Println("sealgate", buildVersion())
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "sealgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(os.Stderr, "sealgate:", err)
	return exitCode(err)
}

// usageError marks a command-line mistake (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseFlags parses args, reporting a bad flag as a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return &usageError{err.Error()}
	}
	return err
}

func exitCode(err error) int {
	var ue *usageError
	var ve *verdictError
	var te *client.TaskError
	var ge *client.GatewayError
	var af *auditFindings
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &af):
		return exitAuditFindings
	case errors.Is(err, audit.ErrLog):
		return exitAuditLog
	case errors.As(err, &ve):
		if c, ok := attestExit[ve.code]; ok {
			return c
		}
		return 1
	case errors.Is(err, client.ErrNoCandidate):
		return 3
	case errors.Is(err, client.ErrUnauthorized):
		return 7
	case errors.Is(err, client.ErrRateLimited):
		return 8
	case errors.Is(err, client.ErrTruncated):
		return 6
	case errors.Is(err, client.ErrModel):
		return 6
	case errors.As(err, &ge), errors.Is(err, client.ErrOverloaded):
		return 4
	case errors.As(err, &te):
		return 5
	case errors.Is(err, seal.ErrTruncated), errors.Is(err, seal.ErrAuthentication),
		errors.Is(err, seal.ErrTrailingData), errors.Is(err, seal.ErrNotCandidate):
		return 6
	}
	return 1
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
