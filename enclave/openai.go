package enclave

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// The prompts the openai backend turns summarize and translate tasks
// into. Each task becomes two chat messages: the system prompt, and the
// user prompt with its placeholders replaced. Placeholders are replaced
// in one pass, so a document that contains "{text}" is not expanded
// again. Both tasks are sampled at TaskTemperature; a chat request's own
// temperature, or the engine's default, applies to chat.
const (
	// SummarizeSystemPrompt is the system message of a summarize task.
	SummarizeSystemPrompt = "You summarize documents. Reply with the summary only, with no preamble, title or comment. " +
		"Write it in the language of the document. State only what the document states, and keep its names and numbers exact."
	// SummarizePrompt is the user message of a summarize task. {length}
	// becomes "in one sentence" or "in at most N sentences" when the
	// request asks for N sentences, "in about P% of its length" when it
	// asks for a ratio, and "in a few sentences" otherwise; {text} becomes
	// the document.
	SummarizePrompt = "Summarize the following document {length}.\n\n{text}"
	// TranslateSystemPrompt is the system message of a translate task.
	TranslateSystemPrompt = "You translate text. Reply with the translation only, with no preamble, notes or quotation marks. " +
		"Keep the meaning, tone, formatting and line breaks of the original, and leave names, code and URLs as they are."
	// TranslatePrompt is the user message of a translate task. {from}
	// becomes "from " and the source language's English name (or "the
	// language with ISO 639 code xx" for a code the worker does not
	// name), or "from whatever language it is in" when the request's
	// source is empty or "auto"; {to} becomes the target language, named
	// the same way; {text} becomes the text.
	TranslatePrompt = "Translate the following text {from} into {to}.\n\n{text}"
	// TaskTemperature is the sampling temperature of summarize and
	// translate tasks: low, for faithful output.
	TaskTemperature = 0.2
)

// languageNames names the languages prompts mention, by ISO 639-1 and
// 639-3 code.
var languageNames = map[string]string{
	"ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
	"el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fi": "Finnish",
	"fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
	"hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian",
	"lv": "Latvian", "nb": "Norwegian Bokmål", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
	"ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish",
	"th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
	"eng": "English", "spa": "Spanish", "cat": "Catalan", "fra": "French", "por": "Portuguese", "ita": "Italian",
	"deu": "German", "nld": "Dutch", "pol": "Polish", "rus": "Russian", "ukr": "Ukrainian", "zho": "Chinese",
	"jpn": "Japanese", "kor": "Korean", "ara": "Arabic", "glg": "Galician", "eus": "Basque",
}

// Defaults of OpenAIConfig.
const (
	defaultOpenAIMaxInput    = 1 << 20
	defaultConnectTimeout    = 5 * time.Second
	defaultFirstTokenTimeout = time.Minute
	defaultStallTimeout      = 30 * time.Second
	defaultTotalTimeout      = 10 * time.Minute
	defaultMaxStreamBytes    = 16 << 20
	// maxSSELine bounds one line of the upstream's event stream: a chunk
	// carries a token or a few, so even with log probabilities it is far
	// smaller.
	maxSSELine = 256 << 10
	// maxErrorDrain is how much of an upstream error body is read (and
	// discarded) so the connection can be reused.
	maxErrorDrain = 64 << 10
)

// OpenAIConfig configures an OpenAI backend. BaseURL and Model are
// required.
type OpenAIConfig struct {
	// BaseURL is the upstream's OpenAI-compatible base URL on the
	// worker's loopback: "http://127.0.0.1:8000/v1" for vLLM,
	// "http://127.0.0.1:11434/v1" for Ollama, "http://127.0.0.1:8080/v1"
	// for llama.cpp's server, "http://127.0.0.1:30000/v1" for SGLang. The
	// backend posts to BaseURL + "/chat/completions"; a URL without a path
	// means "/v1". It must be http or https, its host 127.0.0.0/8, ::1 or
	// localhost, with no user information, query or fragment: the
	// plaintext never leaves the confidential VM. NewOpenAI refuses any
	// other URL, and the backend's own client dials only loopback
	// addresses, whatever a name resolves to.
	BaseURL string
	// Model is the served model name: sent upstream as "model", named in
	// end events, and the name the worker binds a digest for
	// (Config.ModelDigests). 1 to proto.MaxModelLen bytes of printable
	// ASCII other than space and comma. A chat request naming another
	// model is refused; an empty one means this one.
	Model string
	// MaxInputBytes bounds a task's text: the document of summarize and
	// translate, the sum of the messages' contents of chat. Zero means 1
	// MiB.
	MaxInputBytes int
	// MaxTokens is the most completion tokens a request may ask for, and
	// what is asked for when a request names none. Zero means no bound of
	// the worker's own: a request's max_tokens passes through, and none is
	// sent when it names none (the engine's default applies).
	MaxTokens int
	// ConnectTimeout bounds connecting to the upstream. Zero means 5s.
	// Used only by the backend's own client (HTTPClient nil).
	ConnectTimeout time.Duration
	// FirstTokenTimeout bounds the wait from sending the request to the
	// first event of the upstream's stream, which covers prompt
	// processing. Zero means 1 minute.
	FirstTokenTimeout time.Duration
	// StallTimeout bounds the wait between two events of the stream.
	// Zero means 30s.
	StallTimeout time.Duration
	// TotalTimeout bounds the whole upstream call. Zero means 10 minutes.
	// The worker's Config.RequestTimeout bounds the request as well.
	TotalTimeout time.Duration
	// MaxStreamBytes bounds the upstream's event stream for one request.
	// Zero means 16 MiB.
	MaxStreamBytes int64
	// HTTPClient, when set, makes the upstream calls instead of the
	// backend's own client. Its transport must reach only the loopback:
	// the backend then checks BaseURL but not where the client dials.
	// Nil means a client whose dialer refuses non-loopback addresses,
	// which uses no proxy.
	HTTPClient *http.Client
	// Logger receives upstream failures (status codes and error classes,
	// never bodies, prompts or completions). Nil discards them.
	Logger *slog.Logger
}

// OpenAI is the backend that forwards tasks to an OpenAI-compatible
// server on the worker's loopback (vLLM, llama.cpp's server, Ollama,
// SGLang): it serves chat, and summarize and translate through the
// documented prompts (SummarizePrompt, TranslatePrompt). It calls POST
// /chat/completions with stream true and stream_options.include_usage
// true, parses the server-sent events strictly and within bounds, emits
// each content delta as it arrives, and counts tokens from the usage the
// upstream reports; an upstream that reports none is counted as zero
// input tokens and one output token per content delta. Reasoning deltas
// (reasoning_content) are not forwarded. Failures reach the client as
// TaskError codes that never quote the upstream's body or the prompt:
//
//	bad_request          the request is invalid, or the upstream refused it (HTTP 400, 422)
//	too_large            the input exceeds MaxInputBytes, or the upstream refused it as too large (HTTP 413)
//	model_unavailable    a chat request names a model this worker does not serve
//	backend_unavailable  the upstream is unreachable, or failed (HTTP 401, 403, 404, 5xx other than 503)
//	backend_busy         the upstream is at capacity (HTTP 429, 503)
//	backend_timeout      no first event within FirstTokenTimeout, a stall longer than StallTimeout, or past TotalTimeout (or HTTP 408, 504)
//	backend_error        the upstream reported an error in its stream, or sent a malformed or oversized stream, or ended it early
//
// When the request's context ends (the client went away, or the
// worker's request timeout passed) the upstream call is cancelled, which
// makes the engines stop generating. Nothing here logs a prompt or a
// completion.
type OpenAI struct {
	cfg      OpenAIConfig
	endpoint string
	client   *http.Client
	own      *http.Transport // the backend's own transport, or nil
	log      *slog.Logger
}

var _ Backend = (*OpenAI)(nil)

// NewOpenAI validates cfg and returns the backend. It refuses an upstream
// that is not on the loopback.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	endpoint, err := openAIEndpoint(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := proto.CheckModelName(cfg.Model); err != nil {
		return nil, configErr("Model", "%s", problem(err))
	}
	if cfg.MaxInputBytes < 0 || cfg.MaxTokens < 0 || cfg.ConnectTimeout < 0 || cfg.FirstTokenTimeout < 0 ||
		cfg.StallTimeout < 0 || cfg.TotalTimeout < 0 || cfg.MaxStreamBytes < 0 {
		return nil, errors.New("enclave: negative limit or timeout in the openai backend's config")
	}
	if cfg.MaxInputBytes > proto.MaxRequestPayload {
		return nil, configErr("MaxInputBytes", "found %d, want at most %d", cfg.MaxInputBytes, proto.MaxRequestPayload)
	}
	if cfg.MaxInputBytes == 0 {
		cfg.MaxInputBytes = defaultOpenAIMaxInput
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.FirstTokenTimeout == 0 {
		cfg.FirstTokenTimeout = defaultFirstTokenTimeout
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = defaultStallTimeout
	}
	if cfg.TotalTimeout == 0 {
		cfg.TotalTimeout = defaultTotalTimeout
	}
	if cfg.MaxStreamBytes == 0 {
		cfg.MaxStreamBytes = defaultMaxStreamBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	o := &OpenAI{cfg: cfg, endpoint: endpoint, client: cfg.HTTPClient, log: cfg.Logger.With(slog.String("backend", "openai"))}
	if o.client == nil {
		d := &net.Dialer{Timeout: cfg.ConnectTimeout, Control: loopbackOnly}
		o.own = &http.Transport{
			Proxy:                 nil, // never: the plaintext stays on the loopback
			DialContext:           d.DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 0, // FirstTokenTimeout covers it
			DisableCompression:    true,
		}
		// Redirects are not followed: an engine has no reason to send
		// one, and the request carries the prompt.
		o.client = &http.Client{Transport: o.own, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return o, nil
}

// openAIEndpoint checks a base URL and returns the chat completions URL.
func openAIEndpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", configErr("BaseURL", "found %q, want an http(s) URL such as http://127.0.0.1:8000/v1", base)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", configErr("BaseURL", "found a URL with user information, a query or a fragment, want http(s)://HOST:PORT/PATH")
	}
	if !isLoopbackHost(u.Hostname()) {
		return "", configErr("BaseURL", "found host %q, want a loopback host (127.0.0.0/8, ::1 or localhost): the model server must run inside the confidential VM, and prompts never leave it", u.Hostname())
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		path = "/v1"
	}
	return u.Scheme + "://" + u.Host + path + "/chat/completions", nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP
// literal.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOnly is the dialer's Control hook: it refuses any address that
// is not a loopback IP, so a name that resolves elsewhere is not dialed.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("enclave: refusing to dial %s: the openai backend reaches only the loopback", address)
	}
	return nil
}

// Close closes the backend's idle upstream connections.
func (o *OpenAI) Close() {
	if o.own != nil {
		o.own.CloseIdleConnections()
	}
}

// Tasks returns chat, summarize and translate.
func (o *OpenAI) Tasks() []string {
	return []string{proto.TaskChat, proto.TaskSummarize, proto.TaskTranslate}
}

// LogValue describes the backend's configuration; it holds no secret.
func (o *OpenAI) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", o.endpoint),
		slog.String("model", o.cfg.Model),
		slog.Int("max_input_bytes", o.cfg.MaxInputBytes),
		slog.Int("max_tokens", o.cfg.MaxTokens),
		slog.Duration("first_token_timeout", o.cfg.FirstTokenTimeout),
		slog.Duration("stall_timeout", o.cfg.StallTimeout),
		slog.Duration("total_timeout", o.cfg.TotalTimeout),
	)
}

// upstreamRequest is the body of POST /chat/completions.
type upstreamRequest struct {
	Model         string              `json:"model"`
	Messages      []proto.ChatMessage `json:"messages"`
	Stream        bool                `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
}

// Serve runs one task against the upstream.
func (o *OpenAI) Serve(ctx context.Context, task string, payload []byte, emit func(string) error) (proto.EndBody, error) {
	var req *upstreamRequest
	var err error
	switch task {
	case proto.TaskChat:
		req, err = o.chatRequest(payload)
	case proto.TaskSummarize:
		req, err = o.summarizeRequest(payload)
	case proto.TaskTranslate:
		req, err = o.translateRequest(payload)
	default:
		return proto.EndBody{}, &TaskError{Code: "unsupported_task", Message: fmt.Sprintf("task %q is not served by the openai backend", shorten(task))}
	}
	if err != nil {
		return proto.EndBody{}, err
	}
	req.Model, req.Stream, req.StreamOptions.IncludeUsage = o.cfg.Model, true, true
	if req.MaxTokens == 0 {
		req.MaxTokens = o.cfg.MaxTokens
	}
	usage, err := o.stream(ctx, req, emit)
	if err != nil {
		return proto.EndBody{}, err
	}
	return proto.EndBody{Backend: "openai", Model: o.cfg.Model, InputUnits: usage.input, OutputUnits: usage.output}, nil
}

func (o *OpenAI) chatRequest(payload []byte) (*upstreamRequest, error) {
	var cr proto.ChatRequest
	if err := proto.DecodeTask(payload, &cr); err != nil {
		return nil, taskErr("bad_request", "chat payload does not decode")
	}
	if n := len(cr.Messages); n < 1 || n > proto.MaxChatMessages {
		return nil, taskErr("bad_request", "%d messages, want 1 to %d", n, proto.MaxChatMessages)
	}
	total := 0
	for i, m := range cr.Messages {
		switch m.Role {
		case proto.RoleSystem, proto.RoleUser, proto.RoleAssistant:
		default:
			return nil, taskErr("bad_request", "message %d: role %q, want system, user or assistant", i, shorten(m.Role))
		}
		total += len(m.Content)
	}
	if last := cr.Messages[len(cr.Messages)-1]; last.Role != proto.RoleUser {
		return nil, taskErr("bad_request", "the last message is a %s turn, want a user turn", last.Role)
	}
	if total > o.cfg.MaxInputBytes {
		return nil, taskErr("too_large", "messages of %d bytes, want at most %d", total, o.cfg.MaxInputBytes)
	}
	if cr.Model != "" && cr.Model != o.cfg.Model {
		return nil, &TaskError{Code: "model_unavailable", Message: fmt.Sprintf("the requested model is not served by this worker, which serves %q", o.cfg.Model)}
	}
	if cr.MaxTokens < 0 {
		return nil, taskErr("bad_request", "max_tokens of %d, want 0 or more", cr.MaxTokens)
	}
	if o.cfg.MaxTokens > 0 && cr.MaxTokens > o.cfg.MaxTokens {
		return nil, taskErr("bad_request", "max_tokens of %d, want at most %d", cr.MaxTokens, o.cfg.MaxTokens)
	}
	if t := cr.Temperature; t != nil && !(*t >= 0 && *t <= 2) {
		return nil, taskErr("bad_request", "temperature of %g, want 0 to 2", *t)
	}
	return &upstreamRequest{Messages: cr.Messages, MaxTokens: cr.MaxTokens, Temperature: cr.Temperature}, nil
}

func (o *OpenAI) summarizeRequest(payload []byte) (*upstreamRequest, error) {
	var sr proto.SummarizeRequest
	if err := proto.DecodeTask(payload, &sr); err != nil {
		return nil, taskErr("bad_request", "summarize payload does not decode")
	}
	if err := o.checkText(sr.Text); err != nil {
		return nil, err
	}
	var length string
	switch {
	case sr.Sentences < 0 || sr.Sentences > 1000:
		return nil, taskErr("bad_request", "sentences of %d, want 0 to 1000", sr.Sentences)
	case !(sr.Ratio >= 0 && sr.Ratio <= 1):
		return nil, taskErr("bad_request", "ratio of %g, want 0 to 1", sr.Ratio)
	case sr.Sentences == 1:
		length = "in one sentence"
	case sr.Sentences > 1:
		length = "in at most " + strconv.Itoa(sr.Sentences) + " sentences"
	case sr.Ratio > 0:
		length = "in about " + strconv.Itoa(max(1, int(math.Round(sr.Ratio*100)))) + "% of its length"
	default:
		length = "in a few sentences"
	}
	user := strings.NewReplacer("{length}", length, "{text}", sr.Text).Replace(SummarizePrompt)
	return taskRequest(SummarizeSystemPrompt, user), nil
}

func (o *OpenAI) translateRequest(payload []byte) (*upstreamRequest, error) {
	var tr proto.TranslateRequest
	if err := proto.DecodeTask(payload, &tr); err != nil {
		return nil, taskErr("bad_request", "translate payload does not decode")
	}
	if err := o.checkText(tr.Text); err != nil {
		return nil, err
	}
	from := "from whatever language it is in"
	if tr.From != "" && tr.From != "auto" {
		if !isLangCode(tr.From) {
			return nil, taskErr("bad_request", "source language code must be 2 or 3 lowercase letters, or auto (found %q)", shorten(tr.From))
		}
		from = "from " + languageName(tr.From)
	}
	if !isLangCode(tr.To) {
		return nil, taskErr("bad_request", "target language code must be 2 or 3 lowercase letters (found %q)", shorten(tr.To))
	}
	user := strings.NewReplacer("{from}", from, "{to}", languageName(tr.To), "{text}", tr.Text).Replace(TranslatePrompt)
	return taskRequest(TranslateSystemPrompt, user), nil
}

func (o *OpenAI) checkText(text string) error {
	if len(text) > o.cfg.MaxInputBytes {
		return taskErr("too_large", "text of %d bytes, want at most %d", len(text), o.cfg.MaxInputBytes)
	}
	if strings.TrimSpace(text) == "" {
		return taskErr("bad_request", "text is empty")
	}
	return nil
}

func taskRequest(system, user string) *upstreamRequest {
	t := TaskTemperature
	return &upstreamRequest{
		Messages:    []proto.ChatMessage{{Role: proto.RoleSystem, Content: system}, {Role: proto.RoleUser, Content: user}},
		Temperature: &t,
	}
}

func isLangCode(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

func languageName(code string) string {
	if n, ok := languageNames[code]; ok {
		return n
	}
	return "the language with ISO 639 code " + code
}

// taskErr returns a *TaskError; its message must never quote input.
func taskErr(code, format string, args ...any) error {
	return &TaskError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// shorten cuts client-chosen names to 16 bytes for error messages.
func shorten(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// Causes of an upstream call's cancellation by the backend's own timers.
var (
	errFirstToken = errors.New("no first event in time")
	errStall      = errors.New("stalled between events")
	errTotal      = errors.New("total time exceeded")
)

// usage is what a call counted.
type usage struct{ input, output int64 }

// stream makes the upstream call and relays its content deltas.
func (o *OpenAI) stream(ctx context.Context, req *upstreamRequest, emit func(string) error) (usage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return usage{}, err
	}
	start := time.Now()
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	callCtx, cancelTotal := context.WithTimeoutCause(callCtx, o.cfg.TotalTimeout, errTotal)
	defer cancelTotal()
	var stallCause atomic.Value // the error the stall timer cancels with
	stallCause.Store(errFirstToken)
	stall := time.AfterFunc(o.cfg.FirstTokenTimeout, func() { cancel(stallCause.Load().(error)) })
	defer stall.Stop()

	hreq, err := http.NewRequestWithContext(callCtx, http.MethodPost, o.endpoint, bytes.NewReader(body))
	if err != nil {
		return usage{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	hreq.Header.Set("User-Agent", "sealgate-worker")
	resp, err := o.client.Do(hreq)
	if err != nil {
		return usage{}, o.callError(ctx, callCtx, err, start)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorDrain))
		return usage{}, o.statusError(ctx, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		o.fail(ctx, "upstream answered without an event stream", slog.String("content_type", shorten(resp.Header.Get("Content-Type"))))
		return usage{}, &TaskError{Code: "backend_error", Message: "the model server did not answer with an event stream"}
	}

	events := newSSEReader(resp.Body, o.cfg.MaxStreamBytes)
	var u usage
	var deltas int64
	sawUsage, first := false, true
	for {
		data, err := events.next()
		if err != nil {
			if callCtx.Err() != nil {
				return u, o.callError(ctx, callCtx, err, start)
			}
			var se *sseError
			if errors.As(err, &se) {
				o.fail(ctx, "upstream stream refused", slog.String("reason", se.reason))
				return u, &TaskError{Code: "backend_error", Message: se.client}
			}
			o.fail(ctx, "upstream stream read failed", slog.String("error_class", "read"))
			return u, &TaskError{Code: "backend_error", Message: "the model server's stream broke off"}
		}
		if first {
			stallCause.Store(errStall)
			first = false
		}
		stall.Reset(o.cfg.StallTimeout)
		if data == nil { // [DONE]
			break
		}
		c, err := parseChunk(data)
		if err != nil {
			o.fail(ctx, "upstream chunk refused", slog.String("reason", err.Error()))
			if errors.Is(err, errUpstreamReported) {
				return u, &TaskError{Code: "backend_error", Message: "the model server reported an error while generating"}
			}
			return u, &TaskError{Code: "backend_error", Message: "the model server sent a malformed stream"}
		}
		if c.usage != nil {
			u, sawUsage = *c.usage, true
		}
		if c.content != "" {
			deltas++
			if err := emit(c.content); err != nil {
				return u, err
			}
		}
	}
	if !sawUsage {
		u = usage{input: 0, output: deltas}
	}
	// Let the connection be reused: the engines close the stream right
	// after [DONE].
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return u, nil
}

// callError maps a failed call: the caller's own context ending is
// returned as is (the worker reports it), the backend's timers and
// transport failures become TaskErrors.
func (o *OpenAI) callError(ctx, callCtx context.Context, err error, start time.Time) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	elapsed := slog.Duration("elapsed", time.Since(start).Round(time.Millisecond))
	switch cause := context.Cause(callCtx); {
	case errors.Is(cause, errFirstToken):
		o.fail(ctx, "upstream sent no first event in time", elapsed)
		return &TaskError{Code: "backend_timeout", Message: fmt.Sprintf("the model server produced nothing within %v", o.cfg.FirstTokenTimeout)}
	case errors.Is(cause, errStall):
		o.fail(ctx, "upstream stalled", elapsed)
		return &TaskError{Code: "backend_timeout", Message: fmt.Sprintf("the model server stalled for %v", o.cfg.StallTimeout)}
	case errors.Is(cause, errTotal):
		o.fail(ctx, "upstream did not finish in time", elapsed)
		return &TaskError{Code: "backend_timeout", Message: fmt.Sprintf("the model server did not finish within %v", o.cfg.TotalTimeout)}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		o.fail(ctx, "upstream unreachable", slog.String("error_class", "dial"), elapsed)
		return &TaskError{Code: "backend_unavailable", Message: "the model server is not reachable"}
	}
	o.fail(ctx, "upstream call failed", slog.String("error_class", "transport"), elapsed)
	return &TaskError{Code: "backend_unavailable", Message: "the call to the model server failed"}
}

// statusError maps an upstream HTTP status other than 200.
func (o *OpenAI) statusError(ctx context.Context, status int) error {
	o.fail(ctx, "upstream refused the call", slog.Int("status", status))
	s := " (HTTP " + strconv.Itoa(status) + ")"
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return &TaskError{Code: "bad_request", Message: "the model server refused the request" + s}
	case http.StatusRequestEntityTooLarge:
		return &TaskError{Code: "too_large", Message: "the model server refused the input as too large" + s}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return &TaskError{Code: "backend_busy", Message: "the model server is at capacity" + s}
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return &TaskError{Code: "backend_timeout", Message: "the model server timed out" + s}
	case http.StatusNotFound:
		return &TaskError{Code: "backend_unavailable", Message: "the model server does not serve this worker's model" + s}
	}
	return &TaskError{Code: "backend_unavailable", Message: "the model server failed" + s}
}

func (o *OpenAI) fail(ctx context.Context, msg string, attrs ...slog.Attr) {
	o.log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
}

// chunk is what the backend takes from one chat.completion.chunk.
type chunk struct {
	content string
	usage   *usage
}

// wireChunk is the part of a chat.completion.chunk the backend reads.
// Other fields are ignored: engines add their own.
type wireChunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content *string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     *int64 `json:"prompt_tokens"`
		CompletionTokens *int64 `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

var errUpstreamReported = errors.New("upstream reported an error")

// parseChunk reads one event's data: a JSON object with at most one
// choice, index 0 (the backend asks for one), or an error object. Its
// errors never quote the data.
func parseChunk(data []byte) (chunk, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return chunk{}, errors.New("event data is not a JSON object")
	}
	var w wireChunk
	if err := json.Unmarshal(data, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return chunk{}, fmt.Errorf("chunk field %s has the wrong type", te.Field)
		}
		return chunk{}, errors.New("event data is not valid JSON")
	}
	if len(w.Error) > 0 && !bytes.Equal(w.Error, []byte("null")) {
		return chunk{}, errUpstreamReported
	}
	var c chunk
	switch len(w.Choices) {
	case 0:
	case 1:
		if w.Choices[0].Index != 0 {
			return chunk{}, fmt.Errorf("choice index %d, want 0", w.Choices[0].Index)
		}
		if p := w.Choices[0].Delta.Content; p != nil {
			c.content = *p
		}
	default:
		return chunk{}, fmt.Errorf("%d choices, want at most 1", len(w.Choices))
	}
	if w.Usage != nil {
		if w.Usage.PromptTokens == nil || w.Usage.CompletionTokens == nil || *w.Usage.PromptTokens < 0 || *w.Usage.CompletionTokens < 0 {
			return chunk{}, errors.New("usage without non-negative prompt_tokens and completion_tokens")
		}
		c.usage = &usage{input: *w.Usage.PromptTokens, output: *w.Usage.CompletionTokens}
	}
	return c, nil
}

// sseError is a refused event stream: reason for the log, client for the
// client. Neither quotes the stream.
type sseError struct{ reason, client string }

func (e *sseError) Error() string { return "event stream: " + e.reason }

func malformedStream(reason string) error {
	return &sseError{reason: reason, client: "the model server sent a malformed stream"}
}

// sseReader reads server-sent events (the WHATWG HTML "server-sent
// events" format) strictly: lines end in LF or CRLF and are at most
// maxSSELine bytes; fields are data, event (only "message" or "error"),
// id and retry (ignored), error (llama.cpp's error events), and comments;
// the stream is at most limit bytes. An event whose type is error, or
// that carries an error field, is the upstream reporting a failure.
type sseReader struct {
	r         *bufio.Reader
	remaining int64 // bytes the stream may still take
	started   bool  // whether the first line was read (a BOM may precede it)
}

func newSSEReader(r io.Reader, limit int64) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, maxSSELine), remaining: limit}
}

// next returns the data of the next event, nil data for "[DONE]", or an
// error: io.ErrUnexpectedEOF when the stream ends before [DONE], an
// *sseError when it breaks the format or its bounds.
func (s *sseReader) next() ([]byte, error) {
	var data []byte
	hasData, isError := false, false
	for {
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, malformedStream(fmt.Sprintf("a line longer than %d bytes", maxSSELine))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, &sseError{reason: "stream ended before [DONE]", client: "the model server's stream ended early"}
			}
			return nil, err
		}
		s.remaining -= int64(len(line))
		if s.remaining < 0 {
			return nil, &sseError{reason: "stream over its size limit", client: "the model server's answer exceeds this worker's limit"}
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if !s.started {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			s.started = true
		}
		if len(line) == 0 { // the end of an event
			if isError {
				return nil, &sseError{reason: "upstream error event", client: "the model server reported an error while generating"}
			}
			if !hasData {
				continue
			}
			if string(data) == "[DONE]" {
				return nil, nil
			}
			return data, nil
		}
		if line[0] == ':' {
			continue // a comment, such as a keep-alive
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "event":
			switch string(value) {
			case "", "message":
			case "error":
				isError = true
			default:
				return nil, malformedStream("an event type other than message or error")
			}
		case "error":
			isError = true
		case "id", "retry":
		default:
			return nil, malformedStream("an unknown field")
		}
	}
}
