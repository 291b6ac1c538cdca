package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Options are the settings a Router or a Pipeline applies to every request
// before its stages run. The zero value is the safe default.
type Options struct {
	// MaxBodyBytes limits request bodies, whether a stage buffers them or
	// they stream to the upstream: past it the client gets 413. 0 means
	// DefaultMaxBodyBytes; a negative value means no limit. A Route may
	// override it.
	MaxBodyBytes int64

	// TrustedProxies are the networks of proxies in front of the gateway
	// whose X-Forwarded-For the gateway believes when it works out
	// Request.ClientIP, and whose X-Forwarded-* fields an upstream may keep.
	// Nil trusts nobody: every client-sent X-Forwarded-* field is dropped.
	TrustedProxies []netip.Prefix

	// AllowAmbiguousPaths turns off the rejection of request paths whose
	// meaning depends on who decodes them: encoded slash (%2F), backslash
	// (%5C or literal), NUL and other control characters, '#', and decoded
	// paths that are not UTF-8 (overlong encodings). Dot segments are
	// still resolved, and "..;" is still refused. Routes then match the decoded path
	// ("/a%2Fb" as "/a/b") while the upstream receives the encoding the
	// client sent, so the two may disagree: leave it off unless a backend
	// needs such paths.
	AllowAmbiguousPaths bool

	// AllowUnderscoreHeaders keeps request header fields whose name holds
	// an underscore. By default they are dropped before any stage runs,
	// since some backends read "X_User_Id" as "X-User-Id" and a client
	// could so slip past the headers the gateway sets.
	AllowUnderscoreHeaders bool

	// InternalHeaders are request header fields that only the gateway sets
	// for its upstreams, such as the "X-User-Id" an auth.Forwarder fills
	// in. They are removed from every client request before any stage
	// runs, on every route, so a client cannot supply them even on a
	// route whose stages do not set them. Names match in any case;
	// NewRouter refuses one that is not a header field name.
	// Whatever the list, X-Real-IP, Forwarded and every X-Forwarded-*
	// field are removed from requests that do not come from a trusted
	// proxy (see TrustedProxies).
	InternalHeaders []string

	// Logger receives internal errors and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger

	// Observers watch every request: access logs (NewAccessLog), metrics,
	// traces. See Observer.
	Observers []Observer

	// RequestIDs gives every request an ID (Request.ID): the X-Request-Id
	// a trusted proxy sent (or the trace ID of its W3C traceparent), or a
	// new one. The ID goes upstream and back to the client in
	// X-Request-Id. An ID from anyone but a trusted proxy is replaced, so
	// clients cannot choose what appears in logs.
	RequestIDs bool
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o *Options) maxBody() int64 {
	if o.MaxBodyBytes == 0 {
		return DefaultMaxBodyBytes
	}
	return o.MaxBodyBytes
}

func (o *Options) trusts(a netip.Addr) bool {
	// A zone names one of our interfaces, not another network, and
	// netip.Prefix.Contains never matches an address that has one: a proxy
	// at [fe80::1%eth0] is in fe80::/10 (the IP filter reads it so too).
	a = a.WithZone("")
	for _, p := range o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolveClient sets the client address from the peer and, when the peer is
// trusted, from X-Forwarded-For read right to left up to the first address
// that is not a trusted proxy (the left part is whatever the client wrote).
func (o *Options) resolveClient(req *Request) {
	if len(o.TrustedProxies) == 0 || !req.clientIP.IsValid() || !o.trusts(req.clientIP) {
		return
	}
	req.peerTrusted = true
	values := req.HTTP.Header["X-Forwarded-For"]
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			item := strings.TrimSpace(v[j+1:])
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			if item == "" {
				continue // an empty list element, to be ignored (RFC 9110 §5.6.1)
			}
			a, ok := parseForwardedAddr(item)
			if !ok {
				return
			}
			req.clientIP = a
			if !o.trusts(a) {
				return
			}
		}
	}
}

func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// A Pipeline is a chain of stages ending in an upstream, built once. It is a
// Handler, so a Router can serve it as a route, and an http.Handler, so it can
// be mounted on its own anywhere net/http is used.
type Pipeline struct {
	// Options apply when the Pipeline serves HTTP on its own; set them
	// before the first request. Under a Router the Router's options apply.
	Options Options

	h Handler
}

// NewPipeline returns a pipeline that runs stages in order, then upstream.
func NewPipeline(upstream Handler, stages ...Stage) *Pipeline {
	return &Pipeline{h: Chain(upstream, stages...)}
}

// Serve runs the pipeline for req.
func (p *Pipeline) Serve(ctx context.Context, req *Request) (*Response, error) {
	return p.h.Serve(ctx, req)
}

// ServeHTTP normalises the request path, applies the options and serves the
// request through the pipeline.
func (p *Pipeline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, perr := newServerRequest(w, r, &p.Options)
	w, end := p.Options.begin(w, req)
	if end != nil {
		defer endOnPanic(end)
	}
	var err error
	switch {
	case r.Method == http.MethodConnect || r.Method == http.MethodTrace:
		e := &Error{Status: http.StatusMethodNotAllowed, Detail: "method " + r.Method + " is not served"}
		err = e.WithHeader("Allow", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
		writeError(w, req, err, &p.Options)
	case perr != nil:
		err = perr
		writeError(w, req, perr, &p.Options)
	default:
		err = serve(w, req, p.h, &p.Options, p.Options.maxBody())
	}
	if end != nil {
		end(err)
	}
}

// begin starts observing req when there are observers: the writer to
// serve with, and the function that ends the observation (nil without
// observers). req keeps the server's own writer, which http.MaxBytesReader
// needs to close the connection after a body over its limit.
func (o *Options) begin(w http.ResponseWriter, req *Request) (http.ResponseWriter, func(error)) {
	if len(o.Observers) == 0 {
		return w, nil
	}
	return observe(w, req, o.Observers)
}

// errAborted is what observers are told of a reply that was cut off (a
// panic, or http.ErrAbortHandler after an upstream failed mid-body).
var errAborted = errors.New("gateway: the reply was aborted")

// endOnPanic ends the observation of a request whose serving panicked
// (http.ErrAbortHandler included), so that access logs, in-flight gauges
// and spans see it, and lets the panic go on.
func endOnPanic(end func(error)) {
	if v := recover(); v != nil {
		end(errAborted)
		panic(v)
	}
}

// newServerRequest wraps r and normalises its path. A path that cannot be
// served is an error, with the request still returned for the reply and
// the observers.
func newServerRequest(w http.ResponseWriter, r *http.Request, o *Options) (*Request, *Error) {
	req := new(Request)
	req.init(r)
	req.w = w
	req.opts = o
	if o.RequestIDs {
		req.assignID(w)
	}
	if err := normalizeURL(&req.url, r.RequestURI, o.AllowAmbiguousPaths); err != nil {
		return req, err
	}
	if r.URL != nil && (req.url.Path != r.URL.Path || req.url.RawPath != r.URL.RawPath) {
		// Whoever reads RequestURI must see the path that was routed too.
		req.httpReq.RequestURI = req.url.RequestURI()
	}
	sanitizeHeader(r.Header, o.AllowUnderscoreHeaders, !req.FromTrustedProxy())
	for _, name := range o.InternalHeaders {
		r.Header.Del(name)
	}
	return req, nil
}

// sanitizeHeader removes, before any stage runs, header fields a client can
// use against the gateway or its upstreams:
//
//   - fields the client named in Connection (other than the standard
//     connection options). A proxy must drop them (RFC 9110 §7.6.1), and
//     doing it here, not on the way out, means a client cannot name a field
//     a stage set (X-User-Id, Authorization) and have it stripped after the
//     stage ran: the trick behind CVE-2022-31813 and CVE-2024-45410;
//   - unless allowed, fields whose name has an underscore, which backends
//     that fold '-' and '_' together would read as X-Forwarded-For,
//     X-User-Id and the like (CVE-2024-45614); nginx drops them too;
//   - with dropForwarding (the peer is not a trusted proxy), the fields
//     that tell about the client's connection: every X-Forwarded-*,
//     Forwarded and X-Real-IP.
//
// The names are checked in one pass over the header.
func sanitizeHeader(h http.Header, allowUnderscore, dropForwarding bool) {
	if vs, ok := h["Connection"]; ok && namesFields(vs) {
		var keep []string
		for _, v := range vs {
			for v != "" {
				var tok string
				tok, v, _ = strings.Cut(v, ",")
				if tok = strings.TrimSpace(tok); tok == "" {
					continue
				}
				if connectionOption(tok) {
					keep = append(keep, tok)
				} else {
					delete(h, http.CanonicalHeaderKey(tok))
				}
			}
		}
		if len(keep) == 0 {
			delete(h, "Connection")
		} else {
			h["Connection"] = []string{strings.Join(keep, ", ")}
		}
	}
	if !allowUnderscore || dropForwarding {
		for k := range h {
			if !allowUnderscore && strings.IndexByte(k, '_') >= 0 ||
				dropForwarding && strings.HasPrefix(k, "X-Forwarded-") {
				delete(h, k)
			}
		}
	}
	if dropForwarding {
		delete(h, "Forwarded")
		delete(h, "X-Real-Ip")
	}
}

// serve runs h for req and writes what it returns: the one place where a
// gateway reply, or a problem, reaches the client.
//
// It returns the error the reply answered, or nil, for the observers.
func serve(w http.ResponseWriter, req *Request, h Handler, o *Options, maxBody int64) error {
	req.maxBody = maxBody
	r := req.HTTP
	if maxBody >= 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > maxBody {
			err := tooLarge(maxBody)
			writeError(w, req, err, o)
			return err
		}
		r.Body = http.MaxBytesReader(req.w, r.Body, maxBody) // the server's writer: it closes the connection
	}
	if r.Body != nil && r.Body != http.NoBody {
		req.clientBody.ReadCloser = r.Body
		r.Body = &req.clientBody
	}
	resp, err := call(r.Context(), h, req, o)
	if err != nil {
		if berr := req.clientBody.failure(); berr != nil {
			if p, _ := ProblemFor(err); p.status() >= 500 {
				// The upstream call failed because the client's body did:
				// the client's fault, not the upstream's.
				err = &Error{Status: http.StatusBadRequest, Detail: "the request body could not be read", Err: berr}
				if ne, ok := errors.AsType[net.Error](berr); ok && ne.Timeout() {
					// Server.ReadTimeout: the body came too slowly.
					err = &Error{Status: http.StatusRequestTimeout, Detail: "the request body did not arrive in time", Err: berr}
				}
			}
		}
		resp.Close()
		writeError(w, req, err, o)
		return err
	}
	writeResponse(w, req, resp, o)
	return nil
}

// call runs h and turns a panic into an internal error, so one bad stage
// costs one request, not the server.
func call(ctx context.Context, h Handler, req *Request, o *Options) (resp *Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			o.logger().Error("gateway: panic in pipeline", "route", routeName(req), "panic", v, "stack", string(buf))
			resp, err = nil, &Error{Status: http.StatusInternalServerError, Detail: "the gateway failed to handle the request"}
		}
	}()
	return h.Serve(ctx, req)
}

func routeName(req *Request) string {
	if req != nil && req.route != nil {
		return req.route.Name
	}
	return ""
}

func writeError(w http.ResponseWriter, req *Request, err error, o *Options) {
	if req != nil && req.HTTP.Context().Err() != nil && errors.Is(err, context.Canceled) {
		return // the client is gone; nobody would read the reply, and it is no error of ours
	}
	p, internal := ProblemFor(err)
	if internal {
		o.logger().Error("gateway: internal error", "route", routeName(req), "err", err)
	} else if p.status() >= 500 && p.Err != nil {
		o.logger().Warn("gateway: request failed", "route", routeName(req), "status", p.status(), "err", p.Err)
	}
	p.Write(w)
}

// Copy buffers: a small one for a reply of known small length (most API
// replies), so that a thousand replies in flight do not hold 32 KiB each,
// and a large one for the rest.
const smallCopyBuf = 4 << 10

var (
	copyBufPool      = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	smallCopyBufPool = sync.Pool{New: func() any { b := make([]byte, smallCopyBuf); return &b }}
)

// writeResponse copies resp to w: status, header, body (flushed as it
// arrives when its length is unknown) and trailers.
func writeResponse(w http.ResponseWriter, req *Request, resp *Response, o *Options) {
	if resp == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status := resp.status()
	if status == http.StatusSwitchingProtocols {
		serveUpgrade(w, req, resp, o)
		return
	}
	if status < 200 || status > 999 {
		resp.Close()
		writeError(w, req, fmt.Errorf("gateway: a reply has status %d, which cannot end an exchange", status), o)
		return
	}
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	// The length is resp's to decide: a stage that replaced the body may
	// have left the upstream's Content-Length behind.
	delete(h, "Content-Length")
	n := resp.knownLength()
	// An empty reply needs no field of ours: net/http announces a length
	// of 0 for a handler that writes nothing.
	if n > 0 && (bodyAllowed(status) || req.HTTP.Method == http.MethodHead) {
		h["Content-Length"] = []string{contentLengthValue(n)}
	}
	var announced []string
	if len(resp.Trailer) > 0 {
		announced = make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			announced = append(announced, k)
		}
		h["Trailer"] = []string{strings.Join(announced, ", ")}
	}
	w.WriteHeader(status)
	if resp.Body == nil {
		return
	}
	defer resp.Body.Close()
	if !bodyAllowed(status) || req.HTTP.Method == http.MethodHead {
		return
	}
	var err error
	if bb, ok := resp.Body.(*bytesBody); ok {
		_, err = bb.WriteTo(w)
	} else {
		err = copyBody(w, resp.Body, n)
	}
	if err != nil {
		if req.HTTP.Context().Err() != nil {
			return // the client went away
		}
		if errors.Is(err, errReadBody) {
			o.logger().Warn("gateway: reply body cut short", "route", routeName(req), "err", err)
		} else {
			o.logger().Warn("gateway: writing reply failed", "route", routeName(req), "err", err)
		}
		// Abort the connection so the client sees a truncated reply as
		// truncated, not as a complete one.
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.Trailer {
		if !slices.Contains(announced, k) {
			k = http.TrailerPrefix + k
		}
		h[k] = v
	}
}

var errReadBody = errors.New("gateway: reading reply body")

type readErr struct{ err error }

func (e readErr) Error() string        { return e.err.Error() }
func (e readErr) Is(target error) bool { return target == errReadBody }
func (e readErr) Unwrap() error        { return e.err }

// copyBody copies body, of length n (negative when unknown), to w; when
// the length is unknown it flushes after every read, so event streams and
// long polls reach the client without delay.
func copyBody(w http.ResponseWriter, body io.Reader, n int64) error {
	pool := &copyBufPool
	if 0 <= n && n <= smallCopyBuf {
		pool = &smallCopyBufPool
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp
	flush := n < 0
	var flusher http.Flusher
	if flush {
		if f, ok := w.(http.Flusher); ok {
			flusher = f
		} else {
			rc := http.NewResponseController(w)
			flusher = flusherFunc(func() { rc.Flush() })
		}
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return readErr{rerr}
		}
	}
}

type flusherFunc func()

func (f flusherFunc) Flush() { f() }

// namesFields reports whether Connection values name anything besides the
// standard connection options.
func namesFields(vs []string) bool {
	for _, v := range vs {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = strings.TrimSpace(tok); tok != "" && !connectionOption(tok) {
				return true
			}
		}
	}
	return false
}

func connectionOption(tok string) bool {
	for _, o := range [...]string{"close", "keep-alive", "upgrade", "te", "http2-settings"} {
		if strings.EqualFold(tok, o) {
			return true
		}
	}
	return false
}
