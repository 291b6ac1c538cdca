package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// Defaults of an HTTPUpstream; each is overridable by its HTTPConfig field.
const (
	// DefaultTimeout bounds the wait for an upstream's response header
	// once the request has been sent.
	DefaultTimeout = 30 * time.Second
	// DefaultDialTimeout bounds connecting to an upstream.
	DefaultDialTimeout = 5 * time.Second
)

// HTTPConfig configures an HTTP reverse-proxy upstream. Only Targets is
// required; every other zero field means the documented default.
type HTTPConfig struct {
	// Targets are the base URLs of the backend's instances, such as
	// "http://10.0.0.5:8080" or "https://users.internal/api/v1": scheme
	// http or https, a host, an optional base path, no query or fragment.
	// With several targets, requests are spread over them in turn.
	Targets []string

	// PreserveHost sends the client's Host field to the upstream. By
	// default the upstream receives the target's host, as if it had been
	// called directly.
	PreserveHost bool

	// StripPrefix is removed from the start of the request path, on a
	// segment boundary, before the path is joined to the target's base
	// path: with "/api", "/api/users" goes upstream as "/users" and "/api"
	// as "/"; "/apix" is not stripped. In effect the prefix is replaced by
	// the target's base path: with target "http://h/v1", "/api/users"
	// becomes "/v1/users". A path outside the prefix is sent unchanged
	// (joined to the base path). The query is always passed on unchanged.
	StripPrefix string

	// WebSocket lets a WebSocket handshake (Upgrade: websocket) through,
	// so the connection is switched and then relayed both ways.
	//
	// No other upgrade is ever performed, whatever this says. In particular
	// an "Upgrade: h2c" request is refused by being served as plain
	// HTTP/1.1: its Upgrade, Connection and HTTP2-Settings fields are
	// dropped before it goes upstream, which RFC 9110 §7.8 permits ("a
	// server MAY ignore a received Upgrade header field"). An h2c upgrade
	// relayed by a proxy would hand the client an HTTP/2 connection to the
	// backend on which later requests bypass the gateway's routing and
	// stages ("h2c smuggling").
	WebSocket bool

	// Timeout bounds the time from the request being fully written, body
	// included, to the upstream's response header; past it the client gets
	// 504. Connecting is bounded by DialTimeout and the TLS handshake
	// timeout instead, and a slow upload is not counted: it goes at the
	// client's pace, which gateway.Server's ReadTimeout bounds. Nor does
	// Timeout bound the reply body, so long downloads and event streams are
	// not cut. 0 means DefaultTimeout; a negative value means no limit.
	// The request's end is learnt from the httptrace WroteRequest event,
	// which net/http's transports report; with a Transport that does not,
	// Timeout has no effect.
	Timeout time.Duration

	// DialTimeout bounds opening a TCP connection to a target (an https
	// target's TLS handshake then has 10s of its own). 0 means
	// DefaultDialTimeout; a negative value leaves it to the operating
	// system. It applies only to the default Transport.
	DialTimeout time.Duration

	// Transport sends the requests. Nil means a transport of this upstream's
	// own, tuned for a gateway: many idle connections per target (256,
	// closed after 90s idle), HTTP/2 when an https target offers it, no
	// transparent compression (an Accept-Encoding the client did not send
	// is never added), and no proxy from the environment.
	Transport http.RoundTripper
}

// An HTTPUpstream forwards requests to an HTTP backend and streams its
// replies back: a reverse proxy at the end of a gateway pipeline. It is
// safe for concurrent use. Build it with HTTP.
//
// By default, and without configuration, it:
//   - removes hop-by-hop fields (RFC 9110 §7.6.1) in both directions, and
//     every field the Connection field names;
//   - sets X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto and
//     Forwarded (RFC 7239), keeping the values a client sent only when the
//     client is one of the gateway's trusted proxies
//     (gateway.Options.TrustedProxies) and appending its own hop; from
//     anyone else they are replaced, so they cannot be spoofed;
//   - streams the request body upstream and the reply body back, never
//     buffering either, and relays trailers and 1xx interim replies such
//     as 103 Early Hints;
//   - passes the upstream's status, header fields (hop-by-hop aside) and
//     body through unchanged, error replies included;
//   - answers 502 when the upstream cannot be reached or fails before its
//     header, 504 when its header comes more than Timeout after the request
//     was sent, and 413 when a streamed body goes over the route's limit.
type HTTPUpstream struct {
	targets      []target
	next         atomic.Uint64
	strip        string // "" or "/a/b", no trailing slash
	stripEsc     string // strip, escaped
	preserveHost bool
	websocket    bool
	timeout      time.Duration // 0: none
	rt           http.RoundTripper
	own          *http.Transport // rt, when it is ours to close
}

var _ gateway.Handler = (*HTTPUpstream)(nil)

type target struct {
	scheme  string
	host    string
	path    string // base path without trailing slash; "" for the root
	pathEsc string // path, escaped as the target URL wrote it
}

// HTTP checks cfg and returns an upstream that proxies to its targets.
func HTTP(cfg HTTPConfig) (*HTTPUpstream, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("proxy: HTTPConfig.Targets: at least one target URL is required")
	}
	u := &HTTPUpstream{
		targets:      make([]target, len(cfg.Targets)),
		preserveHost: cfg.PreserveHost,
		websocket:    cfg.WebSocket,
		timeout:      cfg.Timeout,
	}
	for i, s := range cfg.Targets {
		t, err := parseTarget(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: HTTPConfig.Targets[%d] %q: %w", i, redact(s), err)
		}
		u.targets[i] = t
	}
	if p := cfg.StripPrefix; p != "" && p != "/" {
		if p[0] != '/' {
			return nil, fmt.Errorf("proxy: HTTPConfig.StripPrefix %q: must begin with '/'", p)
		}
		p = strings.TrimSuffix(p, "/")
		if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
			return nil, fmt.Errorf("proxy: HTTPConfig.StripPrefix %q: must be a clean path (no '//', '.' or '..' segments)", cfg.StripPrefix)
		}
		u.strip = p
		u.stripEsc = (&url.URL{Path: p}).EscapedPath()
	}
	if u.timeout == 0 {
		u.timeout = DefaultTimeout
	} else if u.timeout < 0 {
		u.timeout = 0
	}
	if cfg.Transport != nil {
		u.rt = cfg.Transport
		return u, nil
	}
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = DefaultDialTimeout
	} else if dial < 0 {
		dial = 0
	}
	u.own = &http.Transport{
		Proxy:                 nil, // never read HTTP_PROXY and friends
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: u.timeout,
		DisableCompression:    true,
	}
	u.rt = u.own
	return u, nil
}

func parseTarget(s string) (target, error) {
	pu, err := url.Parse(s)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // the URL itself is already in the message
		}
		return target{}, fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case pu.Scheme != "http" && pu.Scheme != "https":
		return target{}, errors.New("scheme must be http or https")
	case pu.Host == "":
		return target{}, errors.New("host is missing")
	case pu.User != nil:
		return target{}, errors.New("must not hold user information; set credentials with a stage")
	case pu.RawQuery != "" || pu.ForceQuery:
		return target{}, errors.New("must not have a query")
	case pu.Fragment != "" || strings.Contains(s, "#"):
		return target{}, errors.New("must not have a fragment")
	}
	return target{
		scheme:  pu.Scheme,
		host:    pu.Host,
		path:    strings.TrimSuffix(pu.Path, "/"),
		pathEsc: strings.TrimSuffix(pu.EscapedPath(), "/"),
	}, nil
}

// redact hides the password of a URL for an error message.
func redact(s string) string {
	if pu, err := url.Parse(s); err == nil {
		return pu.Redacted()
	}
	return s
}

// Close closes the idle connections of the upstream's own transport. It
// does not stop requests in flight, and the upstream stays usable; call it
// when the upstream is retired. A Transport from the HTTPConfig is left
// alone: whoever made it closes it.
func (u *HTTPUpstream) Close() error {
	if u.own != nil {
		u.own.CloseIdleConnections()
	}
	return nil
}

func (u *HTTPUpstream) pick() *target {
	if len(u.targets) == 1 {
		return &u.targets[0]
	}
	n := u.next.Add(1) - 1
	return &u.targets[n%uint64(len(u.targets))]
}

// errHeaderTimeout is the cause with which an exchange's context is
// cancelled when the upstream's header takes longer than Timeout.
var errHeaderTimeout = errors.New("proxy: timeout awaiting the upstream's response header")

// exchange is the per-request state of one proxied request, in one
// allocation: the outbound URL, the trace that relays interim replies and
// starts the header timer, the request body when it expects 100 Continue,
// and the reply, whose body releases the request's context when closed.
type exchange struct {
	req     *gateway.Request
	cancel  context.CancelCauseFunc
	timeout time.Duration // 0: none
	url     url.URL
	trace   httptrace.ClientTrace
	reqBody continueBody
	body    replyBody
	resp    gateway.Response

	// mu guards the fields below. Whoever writes an interim reply holds
	// it, so Serve does not return while one is being written.
	mu       sync.Mutex
	answered bool        // the final reply (or an error) is back: no more 1xx, no timer
	timer    *time.Timer // the header timer, once the request is written
	// firstRead is set while the request body's first read runs: that read
	// makes the gateway's server write its 100 Continue to the client, and
	// net/http orders that write with a handler's own 100 only, not with
	// other 1xx codes (go.dev/issue/80949). An interim reply that comes
	// meanwhile waits in held until the read returns. Blocking got1xx
	// instead would stall the transport's read loop, on HTTP/2 that of every
	// request on the connection, until the client sends its body.
	firstRead bool
	held      []interim
}

// interim is a 1xx reply to relay.
type interim struct {
	code   int
	header http.Header
}

// got1xx relays an interim reply to the client. The transport calls it from
// its own goroutine while Serve waits for the final reply; the lock keeps
// it from writing once Serve has stopped waiting.
func (x *exchange) got1xx(code int, h textproto.MIMEHeader) error {
	// 100 Continue is between the gateway and the upstream: the gateway's
	// server sends its own to the client when the body is first read.
	if code == http.StatusContinue {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.answered {
		return nil
	}
	hdr := http.Header(h)
	removeHopByHop(hdr)
	if x.firstRead {
		x.held = append(x.held, interim{code, hdr})
		return nil
	}
	x.req.WriteInformational(code, hdr)
	return nil
}

// wroteRequest starts the header timer once the request, body included, is
// written: an upload's pace is the client's, not the upstream's. A reply
// that came before the body was all sent needs no timer.
func (x *exchange) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err != nil {
		return // the round trip fails, or is retried and written again
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.answered:
	case x.timer == nil:
		x.timer = time.AfterFunc(x.timeout, x.expire)
	default:
		// Written again on a new connection after the first one failed.
		x.timer.Reset(x.timeout)
	}
}

func (x *exchange) expire() { x.cancel(errHeaderTimeout) }

// continueBody is the body of the outbound request. When the client sent
// Expect: 100-continue, its first read, on the transport's write goroutine,
// makes the gateway's server write the 100 Continue to the client; while it
// runs, got1xx holds interim replies back (see exchange.firstRead), and when
// it returns they are written, unless the final reply is back by then.
type continueBody struct {
	io.ReadCloser
	x      *exchange
	expect bool // the client sent Expect: 100-continue
	read   bool // the first read is done: the 100 Continue is out
}

func (b *continueBody) Read(p []byte) (int, error) {
	if !b.expect || b.read || len(p) == 0 {
		return b.ReadCloser.Read(p)
	}
	b.read = true
	x := b.x
	x.mu.Lock()
	x.firstRead = true
	x.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.firstRead = false
	if !x.answered {
		for _, r := range x.held {
			x.req.WriteInformational(r.code, r.header)
		}
	}
	x.held = nil
	return n, err
}

// Close leaves the client's body alone: the gateway's server owns it and
// closes it when the request ends. A transport closes the body when it gives
// up on sending it, and closing a server body drains it, which would block
// the transport (and the request) until the client finished its upload.
func (b *continueBody) Close() error { return nil }

// replyBody is the upstream's reply body; closing it releases the context
// the request was sent with.
type replyBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *replyBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// upgradedBody is the connection of a switched protocol: it is written as
// well as read.
type upgradedBody struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (b *upgradedBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.cancel(nil)
	return err
}

// Serve sends req to the next target and returns the target's reply, whose
// body streams from the upstream connection. It does not modify req.HTTP or
// its header. An error is a *gateway.Error (413, 502 or 504), or the
// context's error when the client has gone.
func (u *HTTPUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	in := req.HTTP
	t := u.pick()
	upgrade := u.websocket && isWebSocketUpgrade(in.Header)

	x := &exchange{req: req, timeout: u.timeout}
	octx, cancel := context.WithCancelCause(ctx)
	x.cancel = cancel
	x.trace.Got1xxResponse = x.got1xx
	if x.timeout > 0 {
		x.trace.WroteRequest = x.wroteRequest
	}
	octx = httptrace.WithClientTrace(octx, &x.trace)

	out := in.WithContext(octx)
	u.setURL(&x.url, t, in.URL)
	out.URL = &x.url
	out.Host = t.host
	if u.preserveHost && in.Host != "" {
		out.Host = in.Host
	}
	out.RequestURI = ""
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Close = false
	out.TransferEncoding = nil
	out.Header = outboundHeader(in, req.FromTrustedProxy(), upgrade)
	if in.Body != nil && in.Body != http.NoBody {
		x.reqBody = continueBody{ReadCloser: in.Body, x: x, expect: hasTokenIn(in.Header, "Expect", "100-continue")}
		out.Body = &x.reqBody
	}

	resp, err := u.rt.RoundTrip(out)
	x.mu.Lock()
	x.answered = true
	timer := x.timer
	x.mu.Unlock()
	expired := timer != nil && !timer.Stop()
	if err == nil && expired {
		// The header came just as the timer fired; the cancelled context
		// would cut the body, so the reply is lost anyway.
		resp.Body.Close()
		err = errHeaderTimeout
	}
	if err != nil {
		cancel(nil)
		return nil, failure(ctx, octx, err)
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		return switched(resp, upgrade, cancel)
	}
	removeHopByHop(resp.Header)
	x.body = replyBody{ReadCloser: resp.Body, cancel: cancel}
	x.resp = gateway.Response{
		Status:        resp.StatusCode,
		Header:        resp.Header,
		Body:          &x.body,
		ContentLength: resp.ContentLength,
		Trailer:       resp.Trailer,
	}
	return &x.resp, nil
}

// switched returns the reply to a protocol switch: the upgraded connection
// when the request was a WebSocket handshake this upstream lets through,
// else a 502 (an upstream must not switch unasked, RFC 9110 §15.2.2).
func switched(resp *http.Response, asked bool, cancel context.CancelCauseFunc) (*gateway.Response, error) {
	proto := resp.Header.Get("Upgrade")
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !asked || !ok || !strings.EqualFold(strings.TrimSpace(proto), "websocket") {
		resp.Body.Close()
		cancel(nil)
		return nil, &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream switched protocols without being asked to"}
	}
	removeHopByHop(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{proto}
	return &gateway.Response{
		Status:        http.StatusSwitchingProtocols,
		Header:        resp.Header,
		Body:          &upgradedBody{ReadWriteCloser: rwc, cancel: cancel},
		ContentLength: -1,
	}, nil
}

// outboundHeader returns a copy of in's header fit to send upstream.
func outboundHeader(in *http.Request, trusted, upgrade bool) http.Header {
	// At most 8 fields are added: Te, Connection, Upgrade, User-Agent and
	// the 4 forwarding fields.
	h, vals := cloneHeader(in.Header, 8)
	if removeHopByHop(h) {
		h["Te"] = vals.one("trailers")
	}
	if upgrade {
		h["Connection"] = vals.one("Upgrade")
		h["Upgrade"] = vals.one("websocket")
	}
	setForwarded(h, &vals, in, trusted)
	if _, ok := h["User-Agent"]; !ok {
		// An empty value stops net/http from adding its own User-Agent.
		h["User-Agent"] = vals.one("")
	}
	return h
}

// cloneHeader copies h, like h.Clone, into a map with room for the four
// forwarding fields, and returns room for extra more values cut from the
// same allocation as the copied ones.
func cloneHeader(h http.Header, extra int) (http.Header, values) {
	n := extra
	for _, vv := range h {
		n += len(vv)
	}
	all := make([]string, n)
	out := make(http.Header, len(h)+4)
	for k, vv := range h {
		if vv == nil {
			out[k] = nil // as Clone does: a nil value stays nil
			continue
		}
		m := copy(all, vv)
		out[k] = all[:m:m]
		all = all[m:]
	}
	return out, values(all[:0])
}

// setURL writes into dst the URL of in on target t: the path with
// StripPrefix removed, joined to the target's base path, and the query
// unchanged.
func (u *HTTPUpstream) setURL(dst *url.URL, t *target, in *url.URL) {
	dst.Scheme = t.scheme
	dst.Host = t.host
	dst.RawQuery = in.RawQuery
	p := in.Path
	if p == "" {
		p = "/"
	}
	rest, ok := cutPrefix(p, u.strip)
	if !ok {
		rest = p
	}
	dst.Path = join(t.path, rest)
	// The gateway sends canonical escaping (RawPath empty), unless it was
	// told to keep ambiguous encodings such as %2F, which the backend then
	// needs verbatim. url.URL checks that RawPath still encodes Path and
	// falls back to the canonical form if it does not.
	if in.RawPath == "" {
		return
	}
	raw := in.EscapedPath()
	rawRest, ok := cutPrefix(raw, u.stripEsc)
	if !ok {
		rawRest = raw
	}
	dst.RawPath = join(t.pathEsc, rawRest)
}

// cutPrefix removes prefix from p on a segment boundary; the rest is ""
// or begins with '/'.
func cutPrefix(p, prefix string) (string, bool) {
	if prefix == "" {
		return p, true
	}
	if !strings.HasPrefix(p, prefix) {
		return p, false
	}
	rest := p[len(prefix):]
	if rest != "" && rest[0] != '/' {
		return p, false
	}
	return rest, true
}

func join(base, rest string) string {
	switch {
	case base == "" && rest == "":
		return "/"
	case base == "":
		return rest
	case rest == "":
		return base
	}
	return base + rest
}

// failure turns a failed round trip into the error Serve returns. ctx is the
// request's context and octx the one the request was sent with.
func failure(ctx, octx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr // the client has gone, or a stage's deadline passed
	}
	if errors.Is(err, errHeaderTimeout) || errors.Is(context.Cause(octx), errHeaderTimeout) {
		return &gateway.Error{Status: http.StatusGatewayTimeout, Detail: "the upstream did not reply in time", Err: err}
	}
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &gateway.Error{
			Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the request body is larger than the %d bytes this route accepts", mbe.Limit),
			Err:    err,
		}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return &gateway.Error{Status: http.StatusGatewayTimeout, Detail: "the upstream did not reply in time", Err: err}
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream could not be reached", Err: err}
	}
	return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream failed before replying", Err: err}
}
