package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
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
	// With several targets, requests are spread over them by Balance. For
	// weights or targets that change at run time, use Discovery instead.
	Targets []string

	// PreserveHost sends the client's Host field to the upstream. By
	// default the upstream receives the target's host, as if it had been
	// called directly.
	PreserveHost bool

	// PreserveLocation passes the Location and Content-Location fields of
	// replies on exactly as the upstream wrote them. By default a value
	// that is an absolute URL on the target that served the request (same
	// scheme, host and port; a missing port is the scheme's default) is
	// rewritten to the address the client used, so that a redirect does
	// not send the client to an internal address: the scheme is that of
	// the client's connection, or the X-Forwarded-Proto of a trusted proxy
	// (as forwarded upstream), the host is the request's Host, and the path
	// is mapped back through the target's base path and StripPrefix. With
	// StripPrefix "/api" and target "http://10.0.0.5:8080/v1", a Location
	// "http://10.0.0.5:8080/v1/users/42?x=1" becomes
	// "https://api.example.com/api/users/42?x=1". Relative references, URLs
	// on any other origin, and URLs on the target's origin outside its base
	// path (which no request path maps to) are left alone, as nginx's
	// "proxy_redirect default" and Apache's ProxyPassReverse do.
	PreserveLocation bool

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

	// Discovery finds the targets, in place of Targets: StaticTargets for
	// a fixed list with weights, DNS or DNSSRV for names in DNS, or a
	// ResolverFunc of the application's. The first resolution runs in HTTP
	// (bounded by DefaultResolveTimeout); if it fails, the upstream starts
	// without targets, answering 503 until a later one succeeds. Set
	// Targets or Discovery, not both.
	Discovery Resolver

	// Balance chooses each request's target; the zero value is RoundRobin.
	Balance Balancer

	// HealthCheck, when set, probes the targets in the background and
	// takes unhealthy ones out of rotation. Close stops it.
	HealthCheck *HealthCheck

	// Passive, when set, ejects a target for a cool-down after consecutive
	// failed requests.
	Passive *PassiveHealth

	// Retry, when set, sends failed requests again; nil means a request
	// is tried once.
	Retry *RetryPolicy

	// Breaker, when set, gives every target a circuit breaker.
	Breaker *BreakerPolicy

	// TotalTimeout bounds the wait for the reply's header across all
	// attempts of a request, backoffs included; past it the client gets
	// 504. Like Timeout, which bounds each attempt, it does not bound the
	// reply body. 0 means no limit beyond Timeout per attempt.
	TotalTimeout time.Duration

	// Logger receives what goes wrong in the background, where there is
	// no request to fail: a Discovery result that is refused or fails (the
	// previous targets stay) and a panic in a Resolver. Nil means
	// slog.Default().
	Logger *slog.Logger
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
//   - passes the upstream's status, header fields (hop-by-hop ones and a
//     Location naming the target aside) and body through unchanged, error
//     replies included;
//   - answers 502 when the upstream cannot be reached (connection refused,
//     a failed TLS handshake or an untrusted certificate) or fails before
//     its header (the connection reset or closed, a reply that is not
//     HTTP), 504 when its header comes more than Timeout after the request
//     was sent, and 413 when a streamed body goes over the route's limit;
//   - once the reply's header has gone to the client, a failure can no
//     longer change the status: when the upstream resets or closes the
//     connection mid-body, the gateway aborts the client's connection, so
//     that the client sees the reply as truncated (short of its
//     Content-Length, or chunked without the last chunk), never as whole;
//   - bounds neither the reply body's duration nor its size: it flows for
//     as long as the upstream sends and the client reads, and when the
//     client goes away, mid-request or mid-reply, the upstream request is
//     cancelled and its connection closed;
//   - rewrites a Location or Content-Location that points at the target
//     to the address the client used (see HTTPConfig.PreserveLocation).
//
// With HealthCheck, Passive or Breaker it also answers 503, with
// Retry-After, when no target is available.
type HTTPUpstream struct {
	set          atomic.Pointer[lbSet] // never nil
	balance      Balancer
	strip        string // "" or "/a/b", no trailing slash
	stripEsc     string // strip, escaped
	preserveHost bool
	preserveLoc  bool // PreserveLocation
	websocket    bool
	timeout      time.Duration // 0: none
	rt           http.RoundTripper
	own          *http.Transport // rt, when it is ours to close

	total   time.Duration  // TotalTimeout; 0: none
	health  *HealthCheck   // normalised; nil: no active checks
	passive *PassiveHealth // normalised; nil: no passive checks
	breaker *BreakerPolicy // normalised; nil: no breakers
	retry   *retryPolicy   // nil: no retries
	epoch   time.Time      // the zero of the upstream's clock, see now
	logger  *slog.Logger   // never nil

	stop context.CancelFunc // stops the background goroutines; nil: none
	wg   sync.WaitGroup
}

var _ gateway.Handler = (*HTTPUpstream)(nil)

type target struct {
	scheme  string
	host    string
	path    string // base path without trailing slash; "" for the root
	pathEsc string // path, escaped as the target URL wrote it
}

// HTTP checks cfg and returns an upstream that proxies to its targets. When
// it health-checks or discovers targets, it starts goroutines that Close
// stops.
func HTTP(cfg HTTPConfig) (*HTTPUpstream, error) {
	if len(cfg.Targets) == 0 && cfg.Discovery == nil {
		return nil, errors.New("proxy: HTTPConfig.Targets: at least one target URL is required")
	}
	if len(cfg.Targets) > 0 && cfg.Discovery != nil {
		return nil, errors.New("proxy: HTTPConfig: set Targets or Discovery, not both")
	}
	if err := cfg.Balance.check(); err != nil {
		return nil, err
	}
	u := &HTTPUpstream{
		balance:      cfg.Balance,
		preserveHost: cfg.PreserveHost,
		preserveLoc:  cfg.PreserveLocation,
		websocket:    cfg.WebSocket,
		timeout:      cfg.Timeout,
		epoch:        time.Now(),
		logger:       cfg.Logger,
	}
	if u.logger == nil {
		u.logger = slog.Default()
	}
	if cfg.TotalTimeout < 0 {
		return nil, errors.New("proxy: HTTPConfig.TotalTimeout must not be negative")
	}
	u.total = cfg.TotalTimeout
	if cfg.HealthCheck != nil {
		hc, err := cfg.HealthCheck.normalize()
		if err != nil {
			return nil, err
		}
		u.health = &hc
	}
	if cfg.Passive != nil {
		p, err := cfg.Passive.normalize()
		if err != nil {
			return nil, err
		}
		u.passive = &p
	}
	if cfg.Breaker != nil {
		b, err := cfg.Breaker.normalize()
		if err != nil {
			return nil, err
		}
		u.breaker = &b
	}
	if cfg.Retry != nil {
		r, err := cfg.Retry.compile()
		if err != nil {
			return nil, err
		}
		u.retry = r
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

	// The targets, checked now when they are known now.
	dynamic := false
	switch r := cfg.Discovery.(type) {
	case nil:
		list := make([]Target, len(cfg.Targets))
		for i, s := range cfg.Targets {
			list[i].URL = s
		}
		set, err := u.discBuild(list)
		if err != nil {
			return nil, fmt.Errorf("proxy: HTTPConfig.Targets%w", err)
		}
		u.set.Store(set)
	case discStatic:
		if len(r) == 0 {
			return nil, errors.New("proxy: HTTPConfig.Discovery: StaticTargets: at least one target is required")
		}
		set, err := u.discBuild(r)
		if err != nil {
			return nil, fmt.Errorf("proxy: HTTPConfig.Discovery: StaticTargets%w", err)
		}
		u.set.Store(set)
	case *DNSResolver:
		if err := r.check(); err != nil {
			return nil, err
		}
		dynamic = true
	default:
		dynamic = true
	}

	if u.timeout == 0 {
		u.timeout = DefaultTimeout
	} else if u.timeout < 0 {
		u.timeout = 0
	}
	if cfg.Transport != nil {
		u.rt = cfg.Transport
	} else {
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
	}

	if !dynamic && u.health == nil {
		return u, nil
	}
	ctx, stop := context.WithCancel(context.Background())
	u.stop = stop
	if dynamic {
		u.set.Store(lbNewSet(u.balance, nil, nil))
		ttl, _ := u.discResolve(ctx, cfg.Discovery) // an error leaves no targets: 503 until a retry succeeds
		u.wg.Go(func() { u.discRun(ctx, cfg.Discovery, ttl) })
	}
	if u.health != nil {
		u.wg.Go(func() { u.hcRun(ctx) })
	}
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

// Close stops the upstream's health checks and discovery, waiting for them,
// and closes the idle connections of its own transport. It does not stop
// requests in flight, and the upstream stays usable, on the targets and
// health it last knew; call it when the upstream is retired. A Transport
// from the HTTPConfig is left alone: whoever made it closes it.
func (u *HTTPUpstream) Close() error {
	if u.stop != nil {
		u.stop()
		u.wg.Wait()
	}
	if u.own != nil {
		u.own.CloseIdleConnections()
	}
	return nil
}

// now is the upstream's clock: monotonic nanoseconds since it was built.
func (u *HTTPUpstream) now() int64 { return int64(time.Since(u.epoch)) }

// errHeaderTimeout is the cause with which an exchange's context is
// cancelled when the upstream's header takes longer than Timeout.
var errHeaderTimeout = errors.New("proxy: timeout awaiting the upstream's response header")

// exchange is the per-request state of one proxied request, in one
// allocation: the outbound URL, the trace that relays interim replies and
// starts the header timer, the request body when it expects 100 Continue,
// and the reply, whose body releases the request's context when closed.
type exchange struct {
	req     *gateway.Request
	t       *lbTarget
	cancel  context.CancelCauseFunc
	parent  context.CancelCauseFunc // of the TotalTimeout context, released with the reply
	done    atomic.Bool             // release has run
	timeout time.Duration           // 0: none
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
	x       *exchange
	expect  bool        // the client sent Expect: 100-continue
	read    bool        // the first read is done: the 100 Continue is out
	touched atomic.Bool // Read was called: the body cannot be sent again
}

func (b *continueBody) Read(p []byte) (int, error) {
	if !b.touched.Load() {
		b.touched.Store(true)
	}
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

// release ends the exchange once its reply is consumed or abandoned:
// it releases the contexts and the target's in-flight count.
func (x *exchange) release() {
	if x.done.Swap(true) {
		return
	}
	x.cancel(nil)
	if x.parent != nil {
		x.parent(nil)
	}
	x.t.inflight.Add(-1)
}

// replyBody is the upstream's reply body; closing it releases the exchange.
type replyBody struct {
	io.ReadCloser
	x *exchange
}

func (b *replyBody) Close() error {
	err := b.ReadCloser.Close()
	b.x.release()
	return err
}

// upgradedBody is the connection of a switched protocol: it is written as
// well as read.
type upgradedBody struct {
	io.ReadWriteCloser
	x *exchange
}

func (b *upgradedBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.x.release()
	return err
}

// retryTotalTimeout is the cause with which a request's context is
// cancelled when TotalTimeout passes before a reply's header.
var retryTotalTimeout = errors.New("proxy: timeout awaiting the upstream's reply across attempts")

// Serve sends req to a target chosen by the balancer and returns the
// target's reply, whose body streams from the upstream connection; with a
// RetryPolicy it may first try other targets. It does not modify req.HTTP
// or its header. An error is a *gateway.Error (413, 502, 503 or 504), or
// the context's error when the client has gone.
func (u *HTTPUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	in := req.HTTP
	upgrade := u.websocket && isWebSocketUpgrade(in.Header)
	set := u.set.Load()
	var tried, refused [4]*lbTarget
	f := lbFilter{now: u.now(), tried: tried[:0], refused: refused[:0]}
	if u.retry != nil && u.retry.budget != nil {
		u.retry.budget.onRequest()
	}

	rctx := ctx
	var rcancel context.CancelCauseFunc
	var timer *time.Timer
	if u.total > 0 {
		rctx, rcancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(u.total, func() { rcancel(retryTotalTimeout) })
	}

	var x *exchange
	var err error
	// A panic in an attempt, in the Transport say, goes on up to the
	// gateway, which answers 500. attempt releases its exchange first; this
	// reports the failure to the target's breaker, which, were it half-open,
	// would otherwise wait for this probe's outcome, refusing every other
	// request, for ever.
	var attempting bool
	var report func(error) // the breaker's, for the attempt under way
	defer func() {
		if !attempting {
			return
		}
		if report != nil {
			report(cbFailed)
		}
		if timer != nil {
			timer.Stop()
			rcancel(nil)
		}
	}()
	for n := 1; ; n++ {
		t, done, ok := u.choose(req, set, &f)
		for t != nil && !ok {
			f.refused = append(f.refused, t)
			t, done, ok = u.choose(req, set, &f)
		}
		if t == nil {
			if n == 1 {
				err = u.lbUnavailable(set, f.now)
			}
			break // a retry with nowhere to go: the last outcome stands
		}
		if err == nil && x != nil {
			x.resp.Body.Close() // the previous reply, which is being retried
		}
		var status int
		var connect bool
		attempting, report = true, done
		x, status, connect, err = u.attempt(rctx, req, t, upgrade, n)
		attempting, report = false, nil
		f.tried = append(f.tried, t)
		failed := status >= 502 && status <= 504
		if status != 0 {
			u.passiveRecord(t, failed, u.now())
		}
		if done != nil {
			switch {
			case status == 0:
				done(cbExcluded)
			case failed:
				done(cbFailed)
			default:
				done(nil)
			}
		}
		if !u.retryable(rctx, in, x, n, status, connect) {
			break
		}
		if d := u.retry.wait(n); d > 0 && !retrySleep(rctx, d) {
			break
		}
		f.now = u.now()
	}

	if timer != nil {
		if !timer.Stop() && ctx.Err() == nil {
			// TotalTimeout passed: whatever came back came too late. Its
			// body is closed, which releases the exchange: for a 101 it is
			// the upgraded connection, which nothing else would close.
			if err == nil {
				x.resp.Body.Close()
			}
			err = &gateway.Error{Status: http.StatusGatewayTimeout, Detail: "the upstream did not reply in time", Err: retryTotalTimeout}
		}
		if err != nil {
			rcancel(nil)
		} else {
			x.parent = rcancel
		}
	}
	if err != nil {
		return nil, err
	}
	return &x.resp, nil
}

// choose picks the target for the next attempt and asks its breaker, which
// may refuse (ok false). A retry goes to a target not tried yet when there
// is one, else to one already tried.
func (u *HTTPUpstream) choose(req *gateway.Request, set *lbSet, f *lbFilter) (t *lbTarget, done func(error), ok bool) {
	t = set.pick(req, f)
	if t == nil && len(f.tried) > 0 {
		g := lbFilter{now: f.now, refused: f.refused}
		t = set.pick(req, &g)
	}
	if t == nil {
		return nil, nil, false
	}
	done, ok = cbAllow(t)
	return t, done, ok
}

// attempt sends req to t once. On success x.resp is the reply. status is
// the reply's status, or what a failure counts as: 502 for no reply (with
// connect set when no connection could be opened), 504 for a reply too
// late, 0 for a failure that is not the target's (the client went away, the
// body was over its limit).
func (u *HTTPUpstream) attempt(ctx context.Context, req *gateway.Request, t *lbTarget, upgrade bool, n int) (x *exchange, status int, connect bool, err error) {
	in := req.HTTP
	x = &exchange{req: req, t: t, timeout: u.timeout}
	t.inflight.Add(1)
	// Observers see the call (a tracer starts its client span and adds
	// its traceparent to the header); without observers this is free.
	header := outboundHeader(in, req.FromTrustedProxy(), upgrade)
	ctx, called := req.StartUpstream(ctx, "http", t.host, header)
	octx, cancel := context.WithCancelCause(ctx)
	x.cancel = cancel
	finished := false
	defer func() {
		if p := recover(); p != nil {
			// Whatever panicked (the Transport, a stage's GetBody), the
			// target must not stay counted as busy, shunned by
			// LeastInFlight for ever. Serve settles its breaker.
			x.release()
			if !finished {
				called(0, errors.New("proxy: panic in the upstream call"))
			}
			panic(p)
		}
	}()
	x.trace.Got1xxResponse = x.got1xx
	if x.timeout > 0 {
		x.trace.WroteRequest = x.wroteRequest
	}
	octx = httptrace.WithClientTrace(octx, &x.trace)

	out := in.WithContext(octx)
	u.setURL(&x.url, &t.target, in.URL)
	out.URL = &x.url
	out.Host = t.host
	if u.preserveHost && in.Host != "" {
		out.Host = in.Host
	}
	out.RequestURI = ""
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Close = false
	out.TransferEncoding = nil
	out.Header = header
	if in.Body != nil && in.Body != http.NoBody {
		body := in.Body
		if n > 1 && in.GetBody != nil {
			// Buffered by a stage: a fresh reader of the same bytes.
			if body, err = in.GetBody(); err != nil {
				x.release()
				called(0, err)
				return x, 0, false, err
			}
		}
		x.reqBody = continueBody{ReadCloser: body, x: x, expect: hasTokenIn(in.Header, "Expect", "100-continue")}
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
		x.release()
		err = failure(ctx, octx, err)
		if e, ok := errors.AsType[*gateway.Error](err); ok && e.Status != http.StatusRequestEntityTooLarge {
			status = e.Status
			connect = isDialError(e.Err)
		}
		finished = true
		called(0, err)
		return x, status, connect, err
	}
	finished = true
	called(resp.StatusCode, nil)

	if resp.StatusCode == http.StatusSwitchingProtocols {
		err := x.switched(resp, upgrade)
		if err != nil {
			return x, 0, false, err
		}
		return x, http.StatusSwitchingProtocols, false, nil
	}
	removeHopByHop(resp.Header)
	if !u.preserveLoc {
		u.rewriteLocation(resp.Header, &t.target, req)
	}
	x.body = replyBody{ReadCloser: resp.Body, x: x}
	x.resp = gateway.Response{
		Status:        resp.StatusCode,
		Header:        resp.Header,
		Body:          &x.body,
		ContentLength: resp.ContentLength,
		Trailer:       resp.Trailer,
	}
	return x, resp.StatusCode, false, nil
}

// retryable reports whether the attempt n of a request, whose outcome is
// x, status and connect, is to be tried again, and if so takes the retry
// from the budget.
func (u *HTTPUpstream) retryable(ctx context.Context, in *http.Request, x *exchange, n, status int, connect bool) bool {
	p := u.retry
	switch {
	case p == nil || n >= p.attempts || status == 0 || !p.retries(status) || ctx.Err() != nil:
		return false
	case !connect && !p.nonIdempotent && !retryIdempotent(in.Method):
		return false
	}
	// The body must be sent again whole: it is empty, or buffered, or,
	// when no connection was made, not read at all.
	if in.Body != nil && in.Body != http.NoBody && in.GetBody == nil && (!connect || x.reqBody.touched.Load()) {
		return false
	}
	return p.budget == nil || p.budget.withdraw()
}

// retrySleep waits d, or until ctx is done; it reports whether it waited.
func retrySleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// lbUnavailable is the error when no target can take a request: 503 with
// Retry-After, the whole seconds until the first target may return.
func (u *HTTPUpstream) lbUnavailable(set *lbSet, now int64) error {
	wait := time.Duration(math.MaxInt64)
	for _, t := range set.targets {
		var w time.Duration
		if t.hcDown.Load() && u.health != nil {
			w = u.health.Interval * time.Duration(u.health.Healthy)
		}
		w = max(w, time.Duration(t.ejectedUntil.Load()-now), time.Duration(t.cbOpenUntil.Load()-now))
		wait = min(wait, w)
	}
	if len(set.targets) == 0 {
		wait = time.Second
	}
	secs := max(1, (wait+time.Second-1)/time.Second)
	return (&gateway.Error{Status: http.StatusServiceUnavailable, Detail: "no upstream target is available"}).
		WithHeader("Retry-After", strconv.FormatInt(int64(secs), 10))
}

// switched sets x.resp to the reply to a protocol switch: the upgraded
// connection when the request was a WebSocket handshake this upstream lets
// through, else it fails with 502 (an upstream must not switch unasked,
// RFC 9110 §15.2.2).
func (x *exchange) switched(resp *http.Response, asked bool) error {
	proto := resp.Header.Get("Upgrade")
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !asked || !ok || !strings.EqualFold(strings.TrimSpace(proto), "websocket") {
		resp.Body.Close()
		x.release()
		return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream switched protocols without being asked to"}
	}
	removeHopByHop(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{proto}
	x.resp = gateway.Response{
		Status:        http.StatusSwitchingProtocols,
		Header:        resp.Header,
		Body:          &upgradedBody{ReadWriteCloser: rwc, x: x},
		ContentLength: -1,
	}
	return nil
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
	if isDialError(err) {
		return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream could not be reached", Err: err}
	}
	return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream failed before replying", Err: err}
}

// isDialError reports whether err is a failure to open a connection, so
// that nothing of the request was sent.
func isDialError(err error) bool {
	oe, ok := errors.AsType[*net.OpError](err)
	return ok && oe.Op == "dial"
}
