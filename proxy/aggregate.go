package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Defaults of an AggregateUpstream and a SequenceUpstream.
const (
	// DefaultAggregateTimeout bounds a whole aggregate or sequence.
	DefaultAggregateTimeout = 10 * time.Second
	// DefaultMaxReplyBytes is how much of each backend's reply an aggregate
	// or a sequence buffers.
	DefaultMaxReplyBytes = 1 << 20
	// DefaultMissingKey is the member of a partial aggregate reply that
	// lists the backends whose replies are missing.
	DefaultMissingKey = "_missing"
	// PartialHeader is the header field of a partial aggregate reply that
	// names the backends whose replies are missing, comma-separated.
	PartialHeader = "Gatekit-Partial"
)

// aggMaxReportBody bounds the upstream error body quoted in a failure
// report: a report is for diagnosis, not a second copy of a large reply.
const aggMaxReportBody = 4 << 10

// aggDefaultHeaders are the request fields a sub-request carries when
// AggregateBackend.Headers is nil. Authorization is not among them: a
// client's credential reaches only the backends configured to receive it.
var aggDefaultHeaders = [...]string{"Accept-Language", "Traceparent", "Tracestate", "X-Request-Id"}

// PartialPolicy says what an aggregate answers when some backends fail.
type PartialPolicy int

const (
	// FailAll answers a 502 problem (504 when every failure was a timeout)
	// as soon as a backend that is not Optional fails: the others are
	// cancelled. The problem's "failed" member lists the failures.
	FailAll PartialPolicy = iota
	// ReturnPartial answers 200 with the replies that arrived, and lists the
	// missing ones in the reply's MissingKey member and the Gatekit-Partial
	// header field. Only when every backend fails is the answer a problem,
	// as with FailAll.
	ReturnPartial
)

// AggregateBackend is one of the upstreams an aggregate calls, with how to
// call it and where its reply goes.
type AggregateBackend struct {
	// Name identifies the backend in failure reports and the
	// Gatekit-Partial field. It is required, unique within the aggregate,
	// and made of letters, digits, '_' and '-'.
	Name string

	// Upstream serves the sub-request: an HTTPUpstream, a
	// gateway.HandlerFunc, a mock. It must return when its context is done:
	// the aggregate waits for every backend before it answers.
	Upstream gateway.Handler

	// Method is the sub-request's method; "" means GET, or POST when Body
	// is set.
	Method string

	// Path is the sub-request's path and optional query, such as
	// "/customers/{id}/orders?limit={query.limit}". "{name}" is the route's
	// path parameter name and "{query.name}" the first value of the
	// client's query parameter name; values are percent-encoded where they
	// go. A query parameter the client did not send answers 400. In the
	// path, a value must not be empty, "." or ".." (the sub-request fails
	// with 400), and a "/" in a value is encoded as %2F, except in a path
	// parameter, whose slashes the router matched as segments and which
	// keeps them. Literal text is sent as written, so it must be valid in a
	// URL. "" means "/".
	Path string

	// Body is a JSON template for the sub-request's body: JSON in which a
	// reference such as {query.name} stands where a value goes (not inside
	// a string) and is replaced by that value as a JSON string. "" sends no
	// body. The sub-request's Content-Type is then application/json.
	Body string

	// Headers are the client request's header fields copied to the
	// sub-request. Nil means Accept-Language, Traceparent, Tracestate and
	// X-Request-Id; an empty slice copies none. Authorization and Cookie
	// are copied only when listed. Hop-by-hop fields, Host,
	// Content-Length, Content-Type and Accept cannot be listed: the
	// sub-request always asks for application/json.
	Headers []string

	// Key is where the reply goes in the merged reply: a member name, or a
	// path of names separated by '.' ("customer.orders"), with '\' escaping
	// a '.' or '\' that is part of a name. Any JSON reply, an array
	// included, goes there unchanged. "" merges the reply's members into
	// the top level; the reply must then be an object, and a backend whose
	// reply is an array or a scalar fails with "top-level merge needs an
	// object": give it a Key.
	Key string

	// Fields keeps only these members of the reply, in this order, each a
	// path written like Key; members the reply lacks are left out. On an
	// array reply they apply to each object element. Nil keeps the whole
	// reply.
	Fields []string

	// Timeout bounds this backend's call, its reply body included; past it
	// the backend fails with "timeout". 0 means only the aggregate's
	// Timeout applies.
	Timeout time.Duration

	// Optional makes the backend's failure never fail the whole aggregate,
	// whatever the policy: its reply is then reported missing.
	Optional bool
}

// AggregateConfig configures an aggregate. Only Backends is required;
// every other zero field means the documented default.
type AggregateConfig struct {
	// Backends are called all at once, and their replies merged in this
	// order.
	Backends []AggregateBackend

	// Timeout bounds the whole aggregate; a backend still running past it
	// fails with "timeout". 0 means DefaultAggregateTimeout; a negative
	// value means no limit other than the backends' own.
	Timeout time.Duration

	// Partial says what to answer when some backends fail; the zero value
	// is FailAll.
	Partial PartialPolicy

	// MaxReplyBytes bounds each backend's reply; a larger reply fails that
	// backend with "reply too large". 0 means DefaultMaxReplyBytes.
	MaxReplyBytes int64

	// MissingKey is the member of a partial reply that lists the missing
	// backends. It is written last, so it replaces a member of that name
	// merged at the top level. "" means DefaultMissingKey.
	MissingKey string
}

// An AggregateUpstream calls several backends at once and merges their
// JSON replies into one object: each reply under its backend's Key, or its
// members at the top level, in the order of the configuration. Members
// placed later replace earlier ones of the same name, so of two backends
// merged at the top level the later one's member wins. The merged reply is
// a 200 with Content-Type application/json; the backends' header fields
// are not passed on. Build it with Aggregate; it is safe for concurrent use.
//
// A backend fails, and is reported with one of these reasons, when it
// returns an error (its problem's detail, or "upstream failed" for an
// internal error), replies with a status of 400 or more ("error reply"),
// with another non-2xx status ("unexpected status"), with a body that is
// not JSON ("not JSON"; an empty body counts as null), larger than
// MaxReplyBytes ("reply too large"), or not within its Timeout or the
// aggregate's ("timeout"). Each report entry is an object with "backend",
// "status" (the upstream's, when it replied), "error" (the reason) and,
// for an error reply whose body is JSON of at most 4 KiB, "body". Such a
// body reaches the client, as it would through an HTTPUpstream: a backend
// whose error bodies must not is best wrapped by a stage that rewrites
// them.
//
// The reply takes as long as the slowest backend, not the sum of them: the
// backends run concurrently, and the aggregate returns once all of them
// have (each is cancelled at its timeout, or when FailAll gives up).
type AggregateUpstream struct {
	calls      []aggCall
	policy     PartialPolicy
	timeout    time.Duration // 0: none
	maxReply   int64
	missingKey string // sjson path
	simple     bool   // every Key is one member name: the reply is built by hand
}

var _ gateway.Handler = (*AggregateUpstream)(nil)

// Aggregate checks cfg and returns an upstream that fans out to its
// backends. Errors name the backend and the field at fault.
func Aggregate(cfg AggregateConfig) (*AggregateUpstream, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("proxy: AggregateConfig.Backends: at least one backend is required")
	}
	if cfg.Partial != FailAll && cfg.Partial != ReturnPartial {
		return nil, fmt.Errorf("proxy: AggregateConfig.Partial: unknown policy %d", cfg.Partial)
	}
	a := &AggregateUpstream{policy: cfg.Partial, simple: true}
	var err error
	if a.timeout, err = aggTimeout(cfg.Timeout); err != nil {
		return nil, fmt.Errorf("proxy: AggregateConfig.Timeout: %w", err)
	}
	if a.maxReply, err = aggMaxReply(cfg.MaxReplyBytes); err != nil {
		return nil, fmt.Errorf("proxy: AggregateConfig.MaxReplyBytes: %w", err)
	}
	missing := cfg.MissingKey
	if missing == "" {
		missing = DefaultMissingKey
	}
	mk, err := aggParsePath(missing)
	if err != nil {
		return nil, fmt.Errorf("proxy: AggregateConfig.MissingKey %q: %w", missing, err)
	}
	a.missingKey = mk.set
	keys := []aggPath{mk}
	names := make(map[string]bool, len(cfg.Backends))
	for i, b := range cfg.Backends {
		c, err := aggCompileCall(aggCallSpec{
			name: b.Name, up: b.Upstream, method: b.Method, path: b.Path, body: b.Body,
			headers: b.Headers, key: b.Key, fields: b.Fields, timeout: b.Timeout,
		}, nil)
		if err == nil && names[b.Name] {
			err = errors.New("Name: another backend has this name")
		}
		if err == nil && c.key.set != "" {
			err = aggKeyConflict(c.key, keys)
			keys = append(keys, c.key)
		}
		if err != nil {
			return nil, fmt.Errorf("proxy: AggregateConfig.Backends[%d] %q: %w", i, b.Name, err)
		}
		names[b.Name] = true
		c.optional = b.Optional
		c.needObject = c.key.set == ""
		a.simple = a.simple && len(c.key.segs) == 1
		a.calls = append(a.calls, c)
	}
	return a, nil
}

func aggTimeout(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultAggregateTimeout, nil
	case d < 0:
		return 0, nil
	}
	return d, nil
}

func aggMaxReply(n int64) (int64, error) {
	switch {
	case n == 0:
		return DefaultMaxReplyBytes, nil
	case n < 0:
		return 0, errors.New("must not be negative (a buffered reply needs a limit)")
	}
	return n, nil
}

// aggKeyConflict reports a key equal to, inside or around one of prior:
// one reply would overwrite the other.
func aggKeyConflict(k aggPath, prior []aggPath) error {
	for _, p := range prior {
		n := min(len(k.segs), len(p.segs))
		same := true
		for j := range n {
			if k.segs[j] != p.segs[j] {
				same = false
				break
			}
		}
		if same {
			return fmt.Errorf("Key %q: overlaps %q, so one reply would overwrite the other", k.src, p.src)
		}
	}
	return nil
}

// Serve calls every backend at once with its own sub-request and returns
// the merged reply. It reads req but does not change it.
func (a *AggregateUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	n := len(a.calls)
	subs := make([]aggExpanded, n)
	for i := range a.calls {
		if err := a.calls[i].expand(&subs[i], req, nil); err != nil {
			return nil, err
		}
	}
	results := make([]aggResult, n)

	wctx := ctx
	if a.timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	fctx, giveUp := context.WithCancelCause(wctx)
	defer giveUp(nil)
	var wg sync.WaitGroup
	for i := range a.calls {
		wg.Go(func() {
			c, r := &a.calls[i], &results[i]
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						r.panicked = aggErrAbort
					} else {
						buf := make([]byte, 16<<10)
						r.panicked = fmt.Errorf("proxy: aggregate backend %q panicked: %v\n%s", c.name, v, buf[:runtime.Stack(buf, false)])
					}
					r.reason = "upstream failed"
					giveUp(aggErrGaveUp)
				}
			}()
			c.fetch(fctx, &subs[i], req, a.maxReply, r)
			if r.reason != "" && a.policy == FailAll && !c.optional {
				giveUp(aggErrGaveUp)
			}
		})
	}
	wg.Wait()

	for i := range results {
		if p := results[i].panicked; p != nil {
			if p == aggErrAbort {
				panic(http.ErrAbortHandler) // as net/http expects, on the serving goroutine
			}
			return nil, p
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the client has gone
	}

	failed, fatal := 0, false
	for i := range results {
		if results[i].reason == "" || results[i].reason == aggReasonCancelled {
			continue
		}
		failed++
		fatal = fatal || (a.policy == FailAll && !a.calls[i].optional)
	}
	if fatal || failed == n {
		return nil, aggProblem("backend", a.calls, results, "the aggregate is missing required replies: ")
	}
	body := aggMerge(a.calls, results, a.simple)
	resp := gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, nil)
	if failed > 0 {
		body, _ = sjson.SetRawBytes(body, a.missingKey, aggReport(nil, "backend", a.calls, results))
		var names []byte
		for i := range results {
			if results[i].reason != "" {
				if len(names) > 0 {
					names = append(names, ',')
				}
				names = append(names, a.calls[i].name...)
			}
		}
		resp.Header[PartialHeader] = []string{string(names)}
	}
	resp.SetBytes(body)
	return resp, nil
}

// aggErrAbort stands for http.ErrAbortHandler panicked in a backend.
var aggErrAbort = errors.New("proxy: aggregate: a backend aborted the request")

// aggErrGaveUp is the cause with which FailAll cancels the other backends.
var aggErrGaveUp = errors.New("proxy: aggregate: a required backend failed")

// Reasons of a failed backend, as reported.
const (
	aggReasonTimeout   = "timeout"
	aggReasonCancelled = "cancelled"
	aggReasonTooLarge  = "reply too large"
	aggReasonNotJSON   = "not JSON"
	aggReasonError     = "error reply"
	aggReasonStatus    = "unexpected status"
	aggReasonFailed    = "upstream failed"
	aggReasonNotObject = "top-level merge needs an object"
)

// aggCallSpec is what an AggregateBackend and a SequenceStep have in
// common: how to call an upstream and where its reply goes.
type aggCallSpec struct {
	name    string
	up      gateway.Handler
	method  string
	path    string
	body    string
	headers []string
	key     string
	fields  []string
	timeout time.Duration
}

// aggCall is a compiled aggCallSpec.
type aggCall struct {
	name       string
	up         gateway.Handler
	method     string
	path       []aggPiece // up to the '?'
	query      []aggPiece // after the '?'; nil when there is none
	hasQuery   bool
	body       []aggPiece // nil: no body
	headers    []string   // canonical names
	key        aggPath    // set == "": the top level
	keyJSON    string     // `"name":` for a one-member key
	fields     []aggPath
	timeout    time.Duration // 0: none of its own
	optional   bool
	needObject bool // the reply is merged at the top level
}

// aggCompileCall compiles s. steps maps the names of the earlier steps of a
// sequence to their index, which templates may refer to; nil in an
// aggregate.
func aggCompileCall(s aggCallSpec, steps map[string]int) (aggCall, error) {
	c := aggCall{name: s.name, up: s.up, method: s.method, timeout: s.timeout}
	if !aggValidName(s.name) {
		return c, errors.New("Name: required, and made of letters, digits, '_' and '-'")
	}
	if s.up == nil {
		return c, errors.New("Upstream: required")
	}
	switch {
	case c.method == "" && s.body != "":
		c.method = http.MethodPost
	case c.method == "":
		c.method = http.MethodGet
	case !gateway.IsToken(c.method):
		return c, fmt.Errorf("Method %q: not a valid method", s.method)
	}
	if s.timeout < 0 {
		return c, errors.New("Timeout: must not be negative")
	}
	var err error
	if c.path, c.query, c.hasQuery, err = aggParseURLTemplate(s.path, steps); err != nil {
		return c, fmt.Errorf("Path %q: %w", s.path, err)
	}
	if s.body != "" {
		if c.body, err = aggParseBodyTemplate(s.body, steps); err != nil {
			return c, fmt.Errorf("Body: %w", err)
		}
	}
	if c.headers, err = aggHeaders(s.headers); err != nil {
		return c, err
	}
	if s.key != "" {
		if c.key, err = aggParsePath(s.key); err != nil {
			return c, fmt.Errorf("Key %q: %w", s.key, err)
		}
		if len(c.key.segs) == 1 {
			c.keyJSON = string(gateway.AppendJSONString(nil, c.key.segs[0])) + ":"
		}
	}
	for j, f := range s.fields {
		p, err := aggParsePath(f)
		if err != nil {
			return c, fmt.Errorf("Fields[%d] %q: %w", j, f, err)
		}
		c.fields = append(c.fields, p)
	}
	return c, nil
}

func aggValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func aggHeaders(list []string) ([]string, error) {
	if list == nil {
		return aggDefaultHeaders[:], nil
	}
	out := make([]string, 0, len(list))
	for j, h := range list {
		if !gateway.IsToken(h) {
			return nil, fmt.Errorf("Headers[%d] %q: not a valid field name", j, h)
		}
		k := http.CanonicalHeaderKey(h)
		bad := k == "Host" || k == "Content-Length" || k == "Content-Type" || k == "Accept"
		for _, hop := range hopByHop {
			bad = bad || k == hop
		}
		if bad {
			return nil, fmt.Errorf("Headers[%d] %q: cannot be copied to a sub-request (hop-by-hop or set by the gateway)", j, h)
		}
		out = append(out, k)
	}
	return out, nil
}

// aggPath is a compiled Key or Fields path.
type aggPath struct {
	src  string
	segs []string // unescaped member names
	get  string   // gjson path
	set  string   // sjson path
}

// aggParsePath compiles a path of member names separated by '.', where
// '\' makes the next character part of the name. Every other character is
// literal: gjson's wildcards, queries and modifiers are escaped away.
func aggParsePath(s string) (aggPath, error) {
	p := aggPath{src: s}
	var seg []byte
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if len(seg) == 0 {
				return p, errors.New("empty member name (check for '..' or a '.' at either end)")
			}
			p.segs = append(p.segs, string(seg))
			seg = seg[:0]
			continue
		}
		if s[i] == '\\' {
			if i++; i == len(s) {
				return p, errors.New("'\\' at the end escapes nothing")
			}
		}
		seg = append(seg, s[i])
	}
	var get, set []byte
	for i, seg := range p.segs {
		if i > 0 {
			get, set = append(get, '.'), append(set, '.')
		}
		get = aggAppendPathKey(get, seg)
		set = aggAppendSetKey(set, seg)
	}
	p.get, p.set = string(get), string(set)
	return p, nil
}

// aggAppendPathKey appends key escaped for a gjson or sjson path: both
// libraries read "\c" as the character c.
func aggAppendPathKey(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c >= 0x80) {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}

// aggAppendSetKey appends key for an sjson path, where a key of digits (or
// "-1") would be taken for an array index unless ':' forces it to be a key.
func aggAppendSetKey(b []byte, key string) []byte {
	digits := key == "-1"
	if !digits {
		digits = true
		for i := 0; i < len(key); i++ {
			digits = digits && '0' <= key[i] && key[i] <= '9'
		}
	}
	if digits {
		b = append(b, ':')
	}
	return aggAppendPathKey(b, key)
}

// A template reference names where a value comes from.
const (
	aggRefParam = iota // {name}: a path parameter of the route
	aggRefQuery        // {query.name}: a query parameter of the client
	aggRefStep         // {step.path}: a member of an earlier step's reply
)

// aggPiece is one piece of a template: literal text, or a reference.
type aggPiece struct {
	lit  string
	ref  bool
	kind int
	name string // the parameter, or the step
	step int
	path string // gjson path in the step's reply
	src  string // the reference as written, with braces, for errors
}

// aggParseRef compiles the text between braces.
func aggParseRef(s string, steps map[string]int) (aggPiece, error) {
	p := aggPiece{ref: true, src: "{" + s + "}"}
	head, rest, dotted := strings.Cut(s, ".")
	switch {
	case s == "":
		return p, errors.New("empty reference {}")
	case !dotted:
		if !aggValidName(s) {
			return p, fmt.Errorf("reference %s: a path parameter name is letters, digits, '_' and '-'", p.src)
		}
		p.kind, p.name = aggRefParam, s
	case head == "query":
		if rest == "" {
			return p, fmt.Errorf("reference %s: names no query parameter", p.src)
		}
		p.kind, p.name = aggRefQuery, rest
	default:
		i, ok := steps[head]
		if !ok {
			if steps == nil {
				return p, fmt.Errorf("reference %s: only {param} and {query.name} can be used here", p.src)
			}
			return p, fmt.Errorf("reference %s: no earlier step is called %q", p.src, head)
		}
		path, err := aggParsePath(rest)
		if err != nil {
			return p, fmt.Errorf("reference %s: %w", p.src, err)
		}
		p.kind, p.name, p.step, p.path = aggRefStep, head, i, path.get
	}
	return p, nil
}

// aggParseURLTemplate compiles a path template with an optional query.
func aggParseURLTemplate(s string, steps map[string]int) (path, query []aggPiece, hasQuery bool, err error) {
	if s == "" {
		s = "/"
	}
	if s[0] != '/' {
		return nil, nil, false, errors.New("must begin with '/'")
	}
	var lit []byte
	var sample []byte // s with every reference replaced by "x", to check
	cur := &path
	flush := func() {
		if len(lit) > 0 {
			*cur = append(*cur, aggPiece{lit: string(lit)})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, nil, false, errors.New("'{' without '}'")
			}
			p, err := aggParseRef(s[i+1:i+end], steps)
			if err != nil {
				return nil, nil, false, err
			}
			flush()
			*cur = append(*cur, p)
			sample = append(sample, 'x')
			i += end
		case '}':
			return nil, nil, false, errors.New("'}' without '{'")
		case '?':
			if !hasQuery {
				flush()
				hasQuery, cur = true, &query
				sample = append(sample, c)
				continue
			}
			fallthrough
		default:
			lit = append(lit, c)
			sample = append(sample, c)
		}
	}
	flush()
	u, perr := url.ParseRequestURI(string(sample))
	switch {
	case perr != nil || u.Host != "" || u.Opaque != "" || strings.ContainsAny(string(sample), "# ") || u.EscapedPath() != aggBefore(string(sample), '?'):
		return nil, nil, false, errors.New("not a valid URL path (escape special characters with %XX)")
	case strings.Contains(u.Path, "//") || strings.Contains(u.Path+"/", "/./") || strings.Contains(u.Path+"/", "/../"):
		return nil, nil, false, errors.New("must be a clean path (no '//', '.' or '..' segments)")
	}
	return path, query, hasQuery, nil
}

func aggBefore(s string, c byte) string {
	if i := strings.IndexByte(s, c); i >= 0 {
		return s[:i]
	}
	return s
}

// aggParseBodyTemplate compiles a JSON body template: a reference is a
// '{' followed by a letter or '_' outside a JSON string.
func aggParseBodyTemplate(s string, steps map[string]int) ([]aggPiece, error) {
	var out []aggPiece
	var sample []byte
	start, inString := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == '{' && i+1 < len(s) && (s[i+1] == '_' || 'a' <= s[i+1]|0x20 && s[i+1]|0x20 <= 'z'):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, errors.New("'{' without '}'")
			}
			p, err := aggParseRef(s[i+1:i+end], steps)
			if err != nil {
				return nil, err
			}
			if start < i {
				out = append(out, aggPiece{lit: s[start:i]})
			}
			out = append(out, p)
			sample = append(sample, s[start:i]...)
			sample = append(sample, "null"...)
			i += end
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, aggPiece{lit: s[start:]})
		sample = append(sample, s[start:]...)
	}
	if !gjson.ValidBytes(sample) {
		return nil, errors.New("not JSON once each reference is replaced by a value (references go where a value goes, not inside strings)")
	}
	return out, nil
}

// aggExpanded is a sub-request's templates filled in.
type aggExpanded struct {
	path, rawPath, rawQuery string
	body                    []byte
	hasBody                 bool
}

// expand fills in c's templates from req and, in a sequence, the replies
// of the earlier steps.
func (c *aggCall) expand(x *aggExpanded, req *gateway.Request, replies [][]byte) error {
	var buf []byte
	escaped := false
	for _, p := range c.path {
		if !p.ref {
			buf = append(buf, p.lit...)
			continue
		}
		v, err := c.value(p, req, replies, false)
		if err != nil {
			return err
		}
		if v == "" || v == "." || v == ".." {
			return c.badValue(p, "is empty, '.' or '..', which cannot go in a path")
		}
		n := len(buf)
		if p.kind == aggRefParam {
			// A {rest...} parameter spans segments; the router normalised
			// them, so none is "." or "..".
			for i, seg := range strings.Split(v, "/") {
				if i > 0 {
					buf = append(buf, '/')
				}
				buf = append(buf, url.PathEscape(seg)...)
			}
		} else {
			buf = append(buf, url.PathEscape(v)...)
		}
		escaped = escaped || len(buf)-n != len(v)
	}
	raw := string(buf)
	x.path = raw
	if escaped || strings.IndexByte(raw, '%') >= 0 {
		p, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("proxy: %s: path %q: %w", c.name, raw, err)
		}
		x.path, x.rawPath = p, raw
	}
	if c.hasQuery {
		buf = buf[:0]
		for _, p := range c.query {
			if !p.ref {
				buf = append(buf, p.lit...)
				continue
			}
			v, err := c.value(p, req, replies, false)
			if err != nil {
				return err
			}
			buf = append(buf, url.QueryEscape(v)...)
		}
		x.rawQuery = string(buf)
	}
	if c.body != nil {
		var body []byte
		for _, p := range c.body {
			if !p.ref {
				body = append(body, p.lit...)
				continue
			}
			v, err := c.value(p, req, replies, true)
			if err != nil {
				return err
			}
			if p.kind == aggRefStep {
				body = append(body, v...)
			} else {
				body = gateway.AppendJSONString(body, v)
			}
		}
		x.body, x.hasBody = body, true
	}
	return nil
}

// value returns the value p refers to: a member of a step's reply as its
// text (a string unquoted), or, with raw, as JSON.
func (c *aggCall) value(p aggPiece, req *gateway.Request, replies [][]byte, raw bool) (string, error) {
	switch p.kind {
	case aggRefParam:
		for _, prm := range req.Params() {
			if prm.Name == p.name {
				return prm.Value, nil
			}
		}
		// The route has no such parameter: the configuration is wrong.
		return "", fmt.Errorf("proxy: %s: %s: the route has no path parameter %q", c.name, p.src, p.name)
	case aggRefQuery:
		v, ok := aggQueryValue(req.HTTP.URL.RawQuery, p.name)
		if !ok {
			return "", gateway.Errorf(http.StatusBadRequest, "the query parameter %q is required", p.name)
		}
		return v, nil
	}
	r := gjson.GetBytes(replies[p.step], p.path)
	switch {
	case !r.Exists() || r.Type == gjson.Null:
		return "", c.badValue(p, "has no value")
	case raw:
		return r.Raw, nil
	case r.Type == gjson.String:
		return r.Str, nil
	case r.IsObject() || r.IsArray():
		return "", c.badValue(p, "is an object or array, which cannot go in a URL")
	}
	return r.Raw, nil
}

// badValue reports a value that cannot be used: the client's fault (400)
// when it came from the request, the upstream's (502) from a reply.
func (c *aggCall) badValue(p aggPiece, why string) error {
	if p.kind == aggRefStep {
		return &gateway.Error{
			Status:     http.StatusBadGateway,
			Detail:     fmt.Sprintf("step %q: %s in the reply of step %q %s", c.name, p.src, p.name, why),
			Extensions: map[string]any{"step": c.name, "reference": p.src},
		}
	}
	return gateway.Errorf(http.StatusBadRequest, "%s %s", p.src, why)
}

// aggQueryValue returns the first value of the query parameter name.
func aggQueryValue(raw, name string) (string, bool) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name && (!strings.ContainsAny(k, "%+") || aggUnescape(k) != name) {
			continue
		}
		return aggUnescape(v), true
	}
	return "", false
}

// aggUnescape decodes a query key or value, or returns it as it is when
// it is not validly encoded.
func aggUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// newRequest returns the sub-request to send for in.
func (c *aggCall) newRequest(ctx context.Context, in *gateway.Request, x *aggExpanded) *gateway.Request {
	ih := in.HTTP.Header
	n := 0
	for _, k := range c.headers {
		n += len(ih[k])
	}
	vals := make([]string, 0, n+2)
	h := make(http.Header, len(c.headers)+2)
	for _, k := range c.headers {
		if vv := ih[k]; len(vv) > 0 {
			m := len(vals)
			vals = append(vals, vv...)
			h[k] = vals[m:len(vals):len(vals)]
		}
	}
	vals = append(vals, "application/json", "application/json")
	h["Accept"] = vals[len(vals)-2 : len(vals)-1 : len(vals)-1]
	if x.hasBody {
		h["Content-Type"] = vals[len(vals)-1:]
	}
	// r does not escape: WithContext copies it, and NewSubRequest the copy.
	r := http.Request{
		Method:     c.method,
		URL:        &url.URL{Path: x.path, RawPath: x.rawPath, RawQuery: x.rawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       in.HTTP.Host,
		RemoteAddr: in.HTTP.RemoteAddr,
		TLS:        in.HTTP.TLS,
	}
	// The sub-request is the client's: its address, trusted-proxy standing
	// and principal carry over.
	sub := gateway.NewSubRequest(in, r.WithContext(ctx))
	if x.hasBody {
		sub.SetBody(x.body)
	}
	return sub
}

// aggResult is what came of calling one backend.
type aggResult struct {
	raw     []byte // the reply, valid JSON
	value   []byte // raw with Fields applied
	status  int    // the upstream's status; 0 when it did not reply
	reason  string // why the backend failed; "" when it did not
	errBody []byte // the JSON body of an error reply, for the report
	// panicked is made of a panic in the upstream, which fails the whole
	// request; aggErrAbort stands for http.ErrAbortHandler.
	panicked error
}

// fetch calls c's upstream for in with the expanded sub-request x, and
// reads its reply into r.
func (c *aggCall) fetch(ctx context.Context, x *aggExpanded, in *gateway.Request, max int64, r *aggResult) {
	bctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.up.Serve(bctx, c.newRequest(bctx, in, x))
	if err != nil {
		resp.Close()
		r.reason = aggErrReason(ctx, bctx, err)
		return
	}
	if resp == nil {
		r.status, r.raw, r.value = http.StatusNoContent, aggNull, aggNull
		return
	}
	defer resp.Close()
	r.status = resp.Status
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.status < 200 || r.status > 299 {
		r.reason = aggReasonStatus
		if r.status >= 400 {
			r.reason = aggReasonError
			if b, ok := aggRead(resp, aggMaxReportBody); ok && len(b) > 0 && gjson.ValidBytes(b) {
				r.errBody = b
			}
		}
		return
	}
	b, ok := aggRead(resp, max)
	switch {
	case !ok && bctx.Err() != nil:
		r.reason = aggErrReason(ctx, bctx, bctx.Err())
		return
	case !ok && b == nil:
		r.reason = "the upstream reply could not be read"
		return
	case !ok:
		r.reason = aggReasonTooLarge
		return
	case len(b) == 0:
		b = aggNull
	case !gjson.ValidBytes(b):
		r.reason = aggReasonNotJSON
		return
	}
	if c.needObject && aggFirstByte(b) != '{' {
		r.reason = aggReasonNotObject
		return
	}
	r.raw, r.value = b, b
	if len(c.fields) > 0 {
		r.value = c.filter(b)
	}
}

var aggNull = []byte("null")

// aggErrReason names why an upstream call failed with err. ctx is the
// context shared by the backends and bctx this backend's own.
func aggErrReason(ctx, bctx context.Context, err error) string {
	if bctx.Err() != nil {
		if errors.Is(context.Cause(ctx), aggErrGaveUp) {
			return aggReasonCancelled
		}
		return aggReasonTimeout
	}
	if e, ok := errors.AsType[*gateway.Error](err); ok {
		if e.Status == http.StatusGatewayTimeout {
			return aggReasonTimeout
		}
		if e.Detail != "" {
			return e.Detail
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return aggReasonTimeout
	}
	return aggReasonFailed
}

// aggRead reads resp's body up to max bytes. ok is false when the body is
// larger (b then non-nil) or could not be read (b nil).
func aggRead(resp *gateway.Response, max int64) (b []byte, ok bool) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil, true
	}
	if resp.ContentLength > max {
		return []byte{}, false
	}
	if resp.ContentLength > 0 {
		// The length is known and within max: Bytes takes an in-memory body
		// as it is, without a copy.
		resp.MaxBytes = max
		b, err := resp.Bytes()
		return b, err == nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, false
	}
	if int64(len(b)) > max {
		return b, false
	}
	return b, true
}

func aggFirstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// filter keeps c.fields of an object, or of each object in an array.
func (c *aggCall) filter(b []byte) []byte {
	switch aggFirstByte(b) {
	case '{':
		return c.filterObject(b)
	case '[':
		out := make([]byte, 1, len(b))
		out[0] = '['
		gjson.ParseBytes(b).ForEach(func(_, e gjson.Result) bool {
			if len(out) > 1 {
				out = append(out, ',')
			}
			if e.IsObject() {
				out = append(out, c.filterObject([]byte(e.Raw))...)
			} else {
				out = append(out, e.Raw...)
			}
			return true
		})
		return append(out, ']')
	}
	return b
}

func (c *aggCall) filterObject(b []byte) []byte {
	out := []byte("{}")
	for _, f := range c.fields {
		if v := gjson.GetBytes(b, f.get); v.Exists() {
			out, _ = sjson.SetRawBytes(out, f.set, []byte(v.Raw))
		}
	}
	return out
}

// aggMerge writes the values of the calls that succeeded into one object,
// in order. simple says every Key is one member name, so that, with no
// top-level merge and no duplicate key, the object is written by hand.
func aggMerge(calls []aggCall, results []aggResult, simple bool) []byte {
	size := 2
	for i := range results {
		size += len(results[i].value) + len(calls[i].keyJSON) + 1
	}
	out := make([]byte, 0, size)
	if simple {
		out = append(out, '{')
		for i := range results {
			if results[i].reason != "" {
				continue
			}
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, calls[i].keyJSON...)
			out = append(out, results[i].value...)
		}
		return append(out, '}')
	}
	out = append(out, "{}"...)
	for i := range results {
		r, c := &results[i], &calls[i]
		switch {
		case r.reason != "":
		case c.key.set != "":
			out, _ = sjson.SetRawBytes(out, c.key.set, r.value)
		default:
			var key []byte
			gjson.ParseBytes(r.value).ForEach(func(k, v gjson.Result) bool {
				key = aggAppendSetKey(key[:0], k.Str)
				out, _ = sjson.SetRawBytes(out, string(key), []byte(v.Raw))
				return true
			})
		}
	}
	return out
}

// aggReport appends to b a JSON array with one entry for each failed call,
// whose name is written under label.
func aggReport(b []byte, label string, calls []aggCall, results []aggResult) []byte {
	b = append(b, '[')
	first := true
	for i := range results {
		r := &results[i]
		if r.reason == "" || r.reason == aggReasonCancelled {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"`...)
		b = append(b, label...)
		b = append(b, `":`...)
		b = gateway.AppendJSONString(b, calls[i].name)
		if r.status != 0 {
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(r.status), 10)
		}
		b = append(b, `,"error":`...)
		b = gateway.AppendJSONString(b, r.reason)
		if r.errBody != nil {
			b = append(b, `,"body":`...)
			b = append(b, r.errBody...)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// aggProblem returns the problem that answers failed calls: 504 when every
// failure was a timeout, else 502, naming each failure in its detail and
// listing them in its "failed" member.
func aggProblem(label string, calls []aggCall, results []aggResult, prefix string) *gateway.Error {
	status := http.StatusGatewayTimeout
	detail := []byte(prefix)
	n := 0
	for i := range results {
		r := &results[i]
		if r.reason == "" || r.reason == aggReasonCancelled {
			continue
		}
		if r.reason != aggReasonTimeout {
			status = http.StatusBadGateway
		}
		if n > 0 {
			detail = append(detail, ", "...)
		}
		n++
		detail = append(detail, calls[i].name...)
		detail = append(detail, " ("...)
		if r.status != 0 {
			detail = strconv.AppendInt(detail, int64(r.status), 10)
			detail = append(detail, ' ')
		}
		detail = append(detail, r.reason...)
		detail = append(detail, ')')
	}
	return &gateway.Error{
		Status:     status,
		Detail:     string(detail),
		Extensions: map[string]any{"failed": aggRawJSON(aggReport(nil, label, calls, results))},
	}
}

// aggRawJSON is JSON written as it is by encoding/json.
type aggRawJSON []byte

func (j aggRawJSON) MarshalJSON() ([]byte, error) { return j, nil }
