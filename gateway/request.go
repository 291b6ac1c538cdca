package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultMaxBodyBytes is the request body limit when none is configured.
const DefaultMaxBodyBytes = 10 << 20

// A Param is one path parameter captured by the route pattern.
type Param struct {
	// Name is the parameter's name in the pattern, without braces.
	Name string
	// Value is the matched path segment (or rest of the path), decoded.
	Value string
}

// A Request is one client request travelling through a pipeline, together
// with what the gateway and its stages learned about it.
//
// Stages run one after another on the goroutine serving the request, so they
// may read and change it without locking; a stage that fans out to several
// goroutines must not change it while they run.
type Request struct {
	// HTTP is the request as the upstream will receive it. Its URL.Path is the
	// normalised path the route was matched on. Stages may change its Header,
	// URL.Path and URL.RawQuery; they change the body only through SetBody.
	// It is a shallow copy of the server's request: Header is shared with it.
	HTTP *http.Request

	// Principal is the authenticated caller, set by an Authenticator stage;
	// nil until then.
	Principal *Principal

	// Version is the API version the router selected, or "".
	Version string

	route    *Route
	params   []Param
	paramBuf [6]Param

	// The client address is worked out on first use: many routes never
	// ask, and parsing it costs a tenth of the gateway's own overhead.
	clientOnce  sync.Once
	opts        *Options
	clientIP    netip.Addr
	peerTrusted bool

	maxBody    int64
	body       []byte
	bodyRead   bool
	clientBody clientBody

	w      http.ResponseWriter
	values map[any]any
	id     string
	obs    observations
	parent *Request // the request a sub-request serves (NewSubRequest)

	httpReq http.Request
	url     url.URL
}

// NewRequest wraps r for a pipeline, for tests and for in-process callers.
// The gateway's own server path does the same and also sets the route, the
// client address and the body limit.
func NewRequest(r *http.Request) *Request {
	req := new(Request)
	req.init(r)
	return req
}

// NewSubRequest wraps r, a request made on behalf of parent while serving
// it (an aggregate's call to one of its backends, a mirrored copy), for an
// upstream. It keeps what the gateway learnt of the client, so that the
// call is forwarded as the client's: the options, the principal, the
// client's address and whether it came through a trusted proxy, and, when
// it did, the forwarding fields that proxy sent (X-Forwarded-For,
// X-Forwarded-Host, X-Forwarded-Proto, Forwarded) unless r sets its own.
// r's RemoteAddr becomes the parent's. The route and path parameters are
// not kept: r is not routed. Upstream calls and notes recorded on the
// sub-request are the parent's (its observers see them), and it has the
// parent's ID.
func NewSubRequest(parent *Request, r *http.Request) *Request {
	r.RemoteAddr = parent.HTTP.RemoteAddr
	req := NewRequest(r)
	req.parent = parent
	req.id = parent.id
	req.opts = parent.opts
	req.Principal = parent.Principal
	req.Version = parent.Version
	ip, trusted := parent.ClientIP(), parent.FromTrustedProxy()
	req.clientOnce.Do(func() { req.clientIP, req.peerTrusted = ip, trusted })
	if trusted {
		if req.HTTP.Header == nil {
			req.HTTP.Header = make(http.Header)
		}
		for _, k := range forwardingFields {
			if v, ok := parent.HTTP.Header[k]; ok {
				if _, set := req.HTTP.Header[k]; !set {
					req.HTTP.Header[k] = append([]string(nil), v...)
				}
			}
		}
	}
	return req
}

// forwardingFields are the fields a trusted proxy sends about the client.
var forwardingFields = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}

func (req *Request) init(r *http.Request) {
	req.httpReq = *r
	if r.URL != nil {
		req.url = *r.URL
		req.httpReq.URL = &req.url
	}
	req.HTTP = &req.httpReq
	req.params = req.paramBuf[:0]
	req.maxBody = DefaultMaxBodyBytes
}

func (req *Request) resolveClient() {
	r := req.HTTP
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.clientIP = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		req.clientIP = a.Unmap()
	}
	if req.opts != nil {
		req.opts.resolveClient(req)
	}
}

// Route returns the route that matched the request, or nil outside a Router.
// The caller must not modify it.
func (req *Request) Route() *Route { return req.route }

// Param returns the value of the path parameter called name, or "".
// Values are percent-decoded.
func (req *Request) Param(name string) string {
	for _, p := range req.params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Params returns all path parameters in pattern order. The caller must not
// modify the slice.
func (req *Request) Params() []Param { return req.params }

// ClientIP returns the address of the client: the peer's address, or, when
// the peer is a trusted proxy, the nearest untrusted address it forwarded.
func (req *Request) ClientIP() netip.Addr {
	req.clientOnce.Do(req.resolveClient)
	return req.clientIP
}

// FromTrustedProxy reports whether the peer that sent the request is one of
// the configured trusted proxies, whose X-Forwarded-* fields may be kept.
func (req *Request) FromTrustedProxy() bool {
	if req.opts == nil || len(req.opts.TrustedProxies) == 0 {
		return false
	}
	req.clientOnce.Do(req.resolveClient)
	return req.peerTrusted
}

// SetValue stores a value for later stages, like context.WithValue but
// without growing the context chain.
func (req *Request) SetValue(key, value any) {
	if req.values == nil {
		req.values = make(map[any]any, 2)
	}
	req.values[key] = value
}

// Value returns the value SetValue stored under key, or nil.
func (req *Request) Value(key any) any { return req.values[key] }

// MaxBodyBytes returns the body limit that applies to this request; a
// negative value means no limit.
func (req *Request) MaxBodyBytes() int64 { return req.maxBody }

// LimitBody lowers the body limit of this request to n bytes (a stage such
// as a validator may be stricter than the route). It never raises the limit.
// A body not yet read is cut off at n whether a stage buffers it or it
// streams to the upstream, and going past n answers 413. It must be called
// before the body is read.
func (req *Request) LimitBody(n int64) {
	if n < 0 || (req.maxBody >= 0 && n >= req.maxBody) || req.bodyRead {
		return
	}
	req.maxBody = n
	r := req.HTTP
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(req.w, r.Body, n)
	}
}

// Body reads the whole request body, up to the route's limit, and returns it.
// The body is buffered only when a stage calls Body: a route whose stages
// never do streams it to the upstream unread. After Body the upstream still
// receives the body, from the buffer. A body over the limit fails with a 413
// *Error.
func (req *Request) Body() ([]byte, error) {
	if req.bodyRead {
		return req.body, nil
	}
	r := req.HTTP
	if r.Body == nil || r.Body == http.NoBody {
		req.bodyRead = true
		return nil, nil
	}
	limit := req.maxBody
	if limit >= 0 && r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	size := r.ContentLength
	if len(r.TransferEncoding) > 0 || size == 0 && r.Body != http.NoBody {
		size = -1 // net/http's 0 may mean unknown
	}
	b, over, err := readAll(r.Body, size, limit)
	r.Body.Close()
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(limit)
		}
		return nil, &Error{Status: http.StatusBadRequest, Detail: "the request body could not be read", Err: err}
	}
	if over {
		return nil, tooLarge(limit)
	}
	req.SetBody(b)
	return req.body, nil
}

func tooLarge(limit int64) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "the request body is larger than the %d bytes this route accepts", limit)
}

// SetBody replaces the request body the upstream will receive, and its
// Content-Length.
func (req *Request) SetBody(b []byte) {
	req.body, req.bodyRead = b, true
	r := req.HTTP
	r.ContentLength = int64(len(b))
	r.TransferEncoding = nil
	r.Header.Del("Content-Length")
	if len(b) == 0 {
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// WriteInformational sends a 1xx interim response, such as 103 Early Hints,
// to the client ahead of the final one. Upstreams relay the interim responses
// of their backends with it. It must be called before the pipeline returns
// its response, from the goroutine serving the request or one it waits for.
func (req *Request) WriteInformational(code int, header http.Header) {
	if req.w == nil || code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
		return
	}
	h := req.w.Header()
	for k, v := range header {
		h[k] = v
	}
	req.w.WriteHeader(code)
	for k := range header {
		delete(h, k)
	}
}

// mediaTypeIs reports whether the Content-Type value ct names media type mt,
// ignoring case and parameters.
func mediaTypeIs(ct, mt string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), mt)
}

// IsToken reports whether s is a non-empty token of RFC 9110 §5.6.2, the
// syntax of header field names, methods, cookie names and media type parts.
// Stages use it to check such names when they are configured.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// clientBody watches the client's body while it streams to an upstream, so
// that a body that cannot be read (a malformed chunked encoding, a client
// gone mid-body) is answered as the client's fault rather than as an
// upstream failure. The upstream's transport reads it on its own
// goroutine, hence the atomic.
type clientBody struct {
	io.ReadCloser
	failed atomic.Bool
	err    error // set once, before failed
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// http.ErrBodyReadAfterClose is the transport's own doing: it closes
	// the body when it gives up on the upstream, and may read once more.
	if err != nil && err != io.EOF && err != http.ErrBodyReadAfterClose && !b.failed.Load() {
		if _, tooBig := err.(*http.MaxBytesError); !tooBig { // answered 413 elsewhere
			b.err = err
			b.failed.Store(true)
		}
	}
	return n, err
}

// failure returns the error reading the body failed with, or nil.
func (b *clientBody) failure() error {
	if b.failed.Load() {
		return b.err
	}
	return nil
}
