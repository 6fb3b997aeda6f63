package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

const adminUsage = `usage: sealgate admin <command> -gateway URL [flags]

commands:
  provider create -id ID [-name NAME] [-credential-out FILE]
  tenant create   -id ID [-name NAME] [-rps F] [-burst N] [-bytes-per-second N] [-burst-bytes N] [-credential-out FILE]
  rotate          -kind provider|tenant -id ID [-credential-out FILE]
  pool create     -id ID -tenant TENANT [-name NAME] [-workers A,B,...] [-slots N] [-lend]
  pool delete     -id ID
  status

Every command also takes -credential-file FILE (the admin credential; env
SEALGATE_ADMIN_CREDENTIAL_FILE), -gateway-ca FILE, -insecure-plain-http,
-json and -timeout. Run 'sealgate admin <command> -h' for its flags.
`

// Limits on what the CLI reads from the gateway and from files.
const (
	maxResponse       = 1 << 20 // one JSON answer from the gateway
	maxCredentialFile = 1 << 10
	maxCAFile         = 1 << 20
	maxShownMessage   = 200 // characters of a gateway error message shown
)

// stdio is what a command takes from its process. main passes os.Stdout,
// os.Stderr and os.Getenv; tests pass buffers and a fixed environment.
type stdio struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func runAdmin(ctx context.Context, args []string, sio stdio) error {
	verb := strings.Join(args[:min(len(args), 2)], " ")
	switch {
	case len(args) == 0:
		return &usageError{strings.TrimSuffix(adminUsage, "\n")}
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(sio.stdout, adminUsage)
		return nil
	case verb == "provider create":
		return runAdminCreate(ctx, "provider", args[2:], sio)
	case verb == "tenant create":
		return runAdminCreate(ctx, "tenant", args[2:], sio)
	case args[0] == "rotate":
		return runAdminRotate(ctx, args[1:], sio)
	case verb == "pool create":
		return runAdminPoolCreate(ctx, args[2:], sio)
	case verb == "pool delete":
		return runAdminPoolDelete(ctx, args[2:], sio)
	case args[0] == "status":
		return runAdminStatus(ctx, args[1:], sio)
	case args[0] == "provider" || args[0] == "tenant" || args[0] == "pool":
		want := "create"
		if args[0] == "pool" {
			want = "create or delete"
		}
		if len(args) == 1 {
			return &usageError{fmt.Sprintf("admin %s needs a command: %s", args[0], want)}
		}
		return &usageError{fmt.Sprintf("unknown admin %s command %q: want %s", args[0], args[1], want)}
	}
	return &usageError{fmt.Sprintf("unknown admin command %q: want provider, tenant, rotate, pool or status", args[0])}
}

// adminFlagSet returns a flag set with the flags every admin command
// shares, bound to gf.
func adminFlagSet(name string, gf *gatewayFlags, sio stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("sealgate admin "+name, flag.ContinueOnError)
	fs.SetOutput(sio.stderr)
	gf.register(fs, sio.getenv, sio.getenv("SEALGATE_ADMIN_CREDENTIAL_FILE"),
		"file holding the admin credential (sga_...) (env SEALGATE_ADMIN_CREDENTIAL_FILE)")
	return fs
}

func runAdminCreate(ctx context.Context, kind string, args []string, sio stdio) error {
	var gf gatewayFlags
	fs := adminFlagSet(kind+" create", &gf, sio)
	var acct proto.NewAccount
	fs.StringVar(&acct.ID, "id", "", "the "+kind+"'s id (required)")
	fs.StringVar(&acct.Name, "name", "", "a display name")
	credOut := fs.String("credential-out", "", "write the new credential to this new file (mode 0600) instead of printing it")
	if kind == "tenant" {
		fs.Float64Var(&acct.RequestsPerSecond, "rps", 0, "requests per second (0: the gateway's default)")
		fs.IntVar(&acct.BurstRequests, "burst", 0, "burst of requests (0: the gateway's default)")
		fs.Int64Var(&acct.BytesPerSecond, "bytes-per-second", 0, "request bytes per second (0: the gateway's default)")
		fs.Int64Var(&acct.BurstBytes, "burst-bytes", 0, "burst of request bytes (0: the gateway's default)")
	}
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	if err := checkID("-id", acct.ID); err != nil {
		return err
	}
	if math.IsNaN(acct.RequestsPerSecond) || math.IsInf(acct.RequestsPerSecond, 0) || acct.RequestsPerSecond < 0 {
		return &usageError{fmt.Sprintf("-rps: found %v, want a finite number >= 0", acct.RequestsPerSecond)}
	}
	for _, n := range []struct {
		flag string
		v    int64
	}{{"-burst", int64(acct.BurstRequests)}, {"-bytes-per-second", acct.BytesPerSecond}, {"-burst-bytes", acct.BurstBytes}} {
		if n.v < 0 {
			return &usageError{fmt.Sprintf("%s: found %d, want >= 0", n.flag, n.v)}
		}
	}
	path := proto.PathAdminProviders
	if kind == "tenant" {
		path = proto.PathAdminTenants
	}
	return accountCall(ctx, sio, &gf, *credOut, path, acct, kind, acct.ID, "created")
}

func runAdminRotate(ctx context.Context, args []string, sio stdio) error {
	var gf gatewayFlags
	fs := adminFlagSet("rotate", &gf, sio)
	var rk proto.RotateKey
	fs.StringVar(&rk.Kind, "kind", "", "provider or tenant (required)")
	fs.StringVar(&rk.ID, "id", "", "the account's id (required)")
	credOut := fs.String("credential-out", "", "write the new credential to this new file (mode 0600) instead of printing it")
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	if rk.Kind != "provider" && rk.Kind != "tenant" {
		return &usageError{fmt.Sprintf("-kind: found %q, want provider or tenant", rk.Kind)}
	}
	if err := checkID("-id", rk.ID); err != nil {
		return err
	}
	return accountCall(ctx, sio, &gf, *credOut, proto.PathAdminRotate, rk, rk.Kind, rk.ID, "rotated")
}

// accountCall creates an account or rotates its credential, and hands the
// new credential to the operator exactly once: printed, or written to
// credOut. credOut is created before the call, so that an existing file
// stops the command before the gateway changes anything.
func accountCall(ctx context.Context, sio stdio, gf *gatewayFlags, credOut, path string, body any, kind, id, done string) (err error) {
	var out *os.File
	if credOut != "" {
		if out, err = createSecretFile(credOut); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				out.Close()
				os.Remove(credOut)
			}
		}()
	}
	raw, err := gf.do(ctx, sio, adminCredential, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	var acct proto.Account
	if err := json.Unmarshal(raw, &acct); err != nil {
		return fmt.Errorf("gateway answer to POST %s: %v", path, err)
	}
	lost := fmt.Sprintf("run 'sealgate admin rotate -kind %s -id %s' for a new one", kind, id)
	if !validCredential(acct.Credential, credentialPrefix(kind)) {
		return fmt.Errorf("gateway answer to POST %s: credential is not a %s credential (%s and %d base64url characters); %s",
			path, kind, credentialPrefix(kind), credentialKeyLen, lost)
	}
	if out != nil {
		_, werr := out.WriteString(acct.Credential + "\n")
		if cerr := out.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("writing the new credential: %v; the credential is lost: %s", werr, lost)
		}
	}
	if gf.json {
		if out != nil {
			if raw, err = withoutField(raw, "credential"); err != nil {
				return err
			}
		}
		if err := printJSON(sio.stdout, raw); err != nil {
			return err
		}
		if out == nil {
			fmt.Fprintln(sio.stderr, "sealgate: the credential in this answer is shown only once: store it now")
		}
		return nil
	}
	shownKind, shownID := printable(acct.Kind), printable(acct.ID)
	if shownKind == "" {
		shownKind = kind
	}
	if shownID == "" {
		shownID = id
	}
	what := fmt.Sprintf("%s %s", shownKind, shownID)
	if done == "rotated" {
		what = fmt.Sprintf("the credential of %s %s; the old one no longer works", shownKind, shownID)
	}
	if out != nil {
		_, err = fmt.Fprintf(sio.stdout, "%s %s\nthe new credential is in %s (mode 0600)\n", done, what, credOut)
		return err
	}
	_, err = fmt.Fprintf(sio.stdout, "%s %s\ncredential: %s\nThis credential is shown only once: store it now. The gateway keeps only its hash.\n",
		done, what, acct.Credential)
	return err
}

func runAdminPoolCreate(ctx context.Context, args []string, sio stdio) error {
	var gf gatewayFlags
	fs := adminFlagSet("pool create", &gf, sio)
	var spec proto.PoolSpec
	fs.StringVar(&spec.ID, "id", "", "the pool's id (required)")
	fs.StringVar(&spec.TenantID, "tenant", "", "the tenant holding the pool (required)")
	fs.StringVar(&spec.Name, "name", "", "a display name")
	workers := fs.String("workers", "", "comma-separated ids of the workers reserved for the pool")
	fs.IntVar(&spec.Slots, "slots", 0, "concurrent requests reserved from the network's capacity")
	fs.BoolVar(&spec.Lend, "lend", false, "list the pool's spare capacity to other tenants")
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	if err := checkID("-id", spec.ID); err != nil {
		return err
	}
	if err := checkID("-tenant", spec.TenantID); err != nil {
		return err
	}
	if *workers != "" {
		for _, w := range strings.Split(*workers, ",") {
			if w = strings.TrimSpace(w); w == "" {
				return &usageError{fmt.Sprintf("-workers: found %q, want worker ids separated by single commas", *workers)}
			}
			spec.Workers = append(spec.Workers, w)
		}
	}
	if spec.Slots < 0 {
		return &usageError{fmt.Sprintf("-slots: found %d, want >= 0", spec.Slots)}
	}
	if len(spec.Workers) == 0 && spec.Slots == 0 {
		return &usageError{"a pool needs -workers, -slots or both"}
	}
	raw, err := gf.do(ctx, sio, adminCredential, http.MethodPost, proto.PathAdminPools, spec)
	if err != nil {
		return err
	}
	if gf.json {
		return printJSON(sio.stdout, raw)
	}
	var ps proto.PoolStatus
	if err := json.Unmarshal(raw, &ps); err != nil {
		return fmt.Errorf("gateway answer to POST %s: %v", proto.PathAdminPools, err)
	}
	_, err = fmt.Fprintf(sio.stdout, "created pool %s for tenant %s: capacity %d, %d in use, %d/%d workers admitted\n",
		printable(ps.ID), printable(ps.TenantID), ps.Capacity, ps.InUse, ps.WorkersAdmitted, len(ps.Workers))
	return err
}

func runAdminPoolDelete(ctx context.Context, args []string, sio stdio) error {
	var gf gatewayFlags
	fs := adminFlagSet("pool delete", &gf, sio)
	id := fs.String("id", "", "the pool's id (required)")
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	if err := checkID("-id", *id); err != nil {
		return err
	}
	raw, err := gf.do(ctx, sio, adminCredential, http.MethodDelete, proto.PathAdminPools+"/"+url.PathEscape(*id), nil)
	if err != nil {
		return err
	}
	if gf.json {
		if len(raw) == 0 {
			return nil // 204: no answer to print
		}
		return printJSON(sio.stdout, raw)
	}
	_, err = fmt.Fprintf(sio.stdout, "deleted pool %s\n", *id)
	return err
}

func runAdminStatus(ctx context.Context, args []string, sio stdio) error {
	var gf gatewayFlags
	fs := adminFlagSet("status", &gf, sio)
	if err := parseVerb(fs, args); err != nil {
		return err
	}
	raw, err := gf.do(ctx, sio, adminCredential, http.MethodGet, proto.PathAdminStatus, nil)
	if err != nil {
		return err
	}
	if gf.json {
		return printJSON(sio.stdout, raw)
	}
	var st proto.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("gateway answer to GET %s: %v", proto.PathAdminStatus, err)
	}
	return printStatus(sio.stdout, &st)
}

// printStatus writes st as two tables, pools then workers.
func printStatus(w io.Writer, st *proto.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "network: capacity %d, in use %d\n\n", st.Capacity, st.InUse)
	if len(st.Pools) == 0 {
		fmt.Fprintln(tw, "no pools")
	} else {
		fmt.Fprintln(tw, "POOL\tTENANT\tCAPACITY\tIN USE\tWORKERS ADMITTED")
		for _, p := range st.Pools {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d/%d\n", printable(p.ID), printable(p.TenantID), p.Capacity, p.InUse, p.WorkersAdmitted, len(p.Workers))
		}
	}
	fmt.Fprintln(tw)
	if len(st.Workers) == 0 {
		fmt.Fprintln(tw, "no workers")
	} else {
		fmt.Fprintln(tw, "WORKER\tPROVIDER\tKIND\tSTATE\tCAPACITY\tOUTSTANDING\tBREAKER\tEXPIRES")
		for _, wk := range st.Workers {
			expires := "-"
			if !wk.ExpiresAt.IsZero() {
				expires = wk.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", printable(wk.WorkerID), printable(wk.ProviderID), printable(wk.Kind),
				printable(wk.State), wk.Capacity, wk.Outstanding, printable(wk.Breaker), expires)
		}
	}
	return tw.Flush()
}

// parseVerb parses a leaf command's flags; the command takes no
// positional arguments.
func parseVerb(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// checkID refuses an id the gateway could not hold. The gateway checks
// the rest; this keeps ids that change a URL's meaning out of paths.
func checkID(flagName, id string) error {
	switch id {
	case "":
		return &usageError{flagName + " is required"}
	case ".", "..":
		return &usageError{fmt.Sprintf("%s: found %q, want an id", flagName, id)}
	}
	return nil
}

// gatewayFlags are the flags of every command that calls the gateway's
// JSON API with a credential.
type gatewayFlags struct {
	gateway        string
	credentialFile string
	caFile         string
	plainHTTP      bool
	json           bool
	timeout        time.Duration
}

func (f *gatewayFlags) register(fs *flag.FlagSet, getenv func(string) string, credentialDefault, credentialUsage string) {
	fs.StringVar(&f.gateway, "gateway", getenv("SEALGATE_GATEWAY"), "gateway base URL, https://HOST[:PORT] (required; env SEALGATE_GATEWAY)")
	fs.StringVar(&f.credentialFile, "credential-file", credentialDefault, credentialUsage)
	fs.StringVar(&f.caFile, "gateway-ca", getenv("SEALGATE_GATEWAY_CA"), "PEM file of the certificates to trust for the gateway instead of the system roots (a development gateway's self-signed certificate; env SEALGATE_GATEWAY_CA)")
	fs.BoolVar(&f.plainHTTP, "insecure-plain-http", false, "INSECURE: allow an http:// gateway URL, to a loopback host only")
	fs.BoolVar(&f.json, "json", false, "print the gateway's JSON answer")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long")
}

// credentialKind names a role's credential and its prefix.
type credentialKind struct{ name, prefix string }

var (
	adminCredential    = credentialKind{"admin", proto.CredentialAdmin}
	providerCredential = credentialKind{"provider", proto.CredentialProvider}
)

// credentialKeyLen is the length of a credential after its prefix:
// unpadded base64url of 32 bytes.
const credentialKeyLen = 43

func credentialPrefix(kind string) string {
	if kind == "tenant" {
		return proto.CredentialTenant
	}
	return proto.CredentialProvider
}

func validCredential(cred, prefix string) bool {
	key, ok := strings.CutPrefix(cred, prefix)
	if !ok || len(key) != credentialKeyLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(key)
	return err == nil
}

// readCredential reads a credential of the given kind from a file holding
// it and, optionally, surrounding white space. Errors never quote the
// file's content.
func readCredential(path string, want credentialKind) (string, error) {
	data, err := readLimited(path, maxCredentialFile)
	if err != nil {
		return "", fmt.Errorf("credential file: %v", err)
	}
	cred := strings.TrimSpace(string(data))
	if validCredential(cred, want.prefix) {
		return cred, nil
	}
	for _, other := range []credentialKind{adminCredential, providerCredential, {"tenant", proto.CredentialTenant}} {
		if validCredential(cred, other.prefix) {
			return "", fmt.Errorf("credential file %s holds %s credential, want the %s credential", path, withArticle(other.name), want.name)
		}
	}
	return "", fmt.Errorf("credential file %s: want %s credential (%s and %d base64url characters)", path, withArticle(want.name), want.prefix, credentialKeyLen)
}

// withArticle returns the credential kind name with its indefinite article.
func withArticle(name string) string {
	if name == "admin" {
		return "an " + name
	}
	return "a " + name
}

// readLimited reads a whole file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// createSecretFile creates a new file readable by its owner only. It
// refuses to overwrite, or to follow a symbolic link at, an existing
// path.
func createSecretFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s exists; refusing to overwrite it", path)
	}
	return f, err
}

// gatewayURL checks a -gateway URL. https is required unless plainHTTP
// allows http to a loopback host, so that no credential crosses a
// network in clear.
func gatewayURL(raw string, plainHTTP bool) (*url.URL, error) {
	if raw == "" {
		return nil, &usageError{"-gateway is required"}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, &usageError{fmt.Sprintf("-gateway: found %q, want a URL such as https://gateway.example:8443", raw)}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !plainHTTP {
			return nil, &usageError{fmt.Sprintf("-gateway %s: plain http would send the credential in clear; use https (or -insecure-plain-http for a gateway on this machine)", u.Redacted())}
		}
		if !isLoopback(u.Hostname()) {
			return nil, &usageError{fmt.Sprintf("-insecure-plain-http allows only a loopback gateway (127.0.0.1, ::1 or localhost), found host %q", u.Hostname())}
		}
	default:
		return nil, &usageError{fmt.Sprintf("-gateway: found scheme %q, want https", u.Scheme)}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// loadCAFile reads a PEM file of one or more certificates as a root pool.
func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := readLimited(path, maxCAFile)
	if err != nil {
		return nil, fmt.Errorf("-gateway-ca: %v", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for len(data) > 0 {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("-gateway-ca %s: certificate %d: %v", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("-gateway-ca %s: found no PEM CERTIFICATE block", path)
	}
	return pool, nil
}

// gatewayConn calls the gateway's JSON API with one credential.
type gatewayConn struct {
	base       string // the gateway URL, without a trailing slash
	credential string
	timeout    time.Duration // the -timeout, for messages
	hc         *http.Client
}

// dial checks the flags, reads the credential, and returns a connection
// that trusts only the -gateway-ca certificates if given, else the system
// roots. It never follows redirects, so the credential goes to -gateway
// only.
func (f *gatewayFlags) dial(want credentialKind, sio stdio) (*gatewayConn, error) {
	base, err := gatewayURL(f.gateway, f.plainHTTP)
	if err != nil {
		return nil, err
	}
	if base.Scheme == "http" && f.caFile != "" {
		return nil, &usageError{"-gateway-ca applies to an https gateway, found an http:// URL"}
	}
	if f.timeout <= 0 {
		return nil, &usageError{fmt.Sprintf("-timeout: found %v, want > 0", f.timeout)}
	}
	if f.credentialFile == "" {
		if want == adminCredential {
			return nil, &usageError{"-credential-file (or SEALGATE_ADMIN_CREDENTIAL_FILE) is required"}
		}
		return nil, &usageError{"-credential-file is required"}
	}
	cred, err := readCredential(f.credentialFile, want)
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile != "" {
		if tlsConf.RootCAs, err = loadCAFile(f.caFile); err != nil {
			return nil, err
		}
	}
	if base.Scheme == "http" {
		fmt.Fprintf(sio.stderr, "sealgate: WARNING: INSECURE plain http to %s: the credential travels unencrypted on this machine\n", base.Host)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	hc := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return fmt.Errorf("gateway redirected to %s; sealgate sends credentials only to -gateway and follows no redirect", req.URL.Redacted())
		},
	}
	return &gatewayConn{base: base.String(), credential: cred, timeout: f.timeout, hc: hc}, nil
}

func (c *gatewayConn) close() { c.hc.CloseIdleConnections() }

// do makes one call to the gateway with the credential of kind want,
// within the -timeout: dial, call, close.
func (gf *gatewayFlags) do(ctx context.Context, sio stdio, want credentialKind, method, path string, in any) ([]byte, error) {
	conn, err := gf.dial(want, sio)
	if err != nil {
		return nil, err
	}
	defer conn.close()
	ctx, cancel := context.WithTimeout(ctx, gf.timeout)
	defer cancel()
	return conn.call(ctx, method, path, in)
}

// call sends in, unless nil, as JSON to path with the credential, and
// returns the body of a 2xx answer. An error answer becomes a
// *refusedError.
func (c *gatewayConn) call(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(proto.HeaderAuthorization, "Bearer "+c.credential)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sealgate/"+buildVersion())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, c.transportError(method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, refused(resp, data)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("gateway answer to %s %s is larger than %d bytes", method, path, maxResponse)
	}
	return data, nil
}

func (c *gatewayConn) transportError(method, path string, err error) error {
	var cve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cve):
		return fmt.Errorf("gateway %s: certificate not trusted: %v (pass the gateway's CA or development certificate with -gateway-ca FILE)", c.base, cve.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: no answer from %s within -timeout %v", method, path, c.base, c.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s %s%s: %v", method, c.base, path, err)
}

// refusedError is an error answer from the gateway. Unwrap gives the
// *client.GatewayError it also is, so the CLI's exit code for gateway
// errors (4) applies.
type refusedError struct {
	status  int
	code    string
	message string
	// retryAfter is the answer's Retry-After as shown, or empty.
	retryAfter string
}

func (e *refusedError) Error() string {
	s := fmt.Sprintf("gateway refused: %s: %s (HTTP %d)", e.code, e.message, e.status)
	if e.retryAfter != "" {
		s += "; retry after " + e.retryAfter
	}
	return s
}

func (e *refusedError) Unwrap() error {
	return &client.GatewayError{Status: e.status, Code: e.code, Message: e.message}
}

// refused turns an error answer into a *refusedError. The gateway's code
// and message are shown as printable text, cut to a bounded length.
func refused(resp *http.Response, body []byte) *refusedError {
	e := &refusedError{status: resp.StatusCode, code: "unknown", message: http.StatusText(resp.StatusCode)}
	var er proto.ErrorResponse
	if json.Unmarshal(body, &er) == nil && er.Error.Code != "" {
		e.code, e.message = printable(er.Error.Code), printable(er.Error.Message)
	}
	if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			e.retryAfter = (time.Duration(secs) * time.Second).String()
		} else if t, err := http.ParseTime(ra); err == nil {
			e.retryAfter = t.UTC().Format(time.RFC3339)
		}
	}
	return e
}

// printable returns s with every non-printing character replaced by '?',
// cut to maxShownMessage characters: text from the gateway must not drive
// the terminal.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxShownMessage {
			b.WriteString("...")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// printJSON writes a JSON answer indented, as the gateway sent it.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("gateway answer is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// withoutField returns the JSON object raw without one of its fields.
func withoutField(raw []byte, field string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("gateway answer is not a JSON object: %v", err)
	}
	delete(obj, field)
	return json.Marshal(obj)
}
