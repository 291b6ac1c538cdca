package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// Defaults of a Transport; each is overridable by its Config field.
const (
	DefaultDialTimeout            = 5 * time.Second
	DefaultKeepAlive              = 30 * time.Second
	DefaultMaxIdlePerHost         = 256
	DefaultIdleTimeout            = 90 * time.Second
	DefaultBufferSize             = 4 << 10
	DefaultMaxResponseHeaderBytes = 1 << 20
)

// Config configures a Transport. Every zero field means the documented
// default.
type Config struct {
	// DialTimeout bounds opening a TCP connection. 0 means
	// DefaultDialTimeout; a negative value leaves it to the operating
	// system (and the request's context).
	DialTimeout time.Duration

	// KeepAlive is the TCP keep-alive period of new connections. 0 means
	// DefaultKeepAlive; a negative value disables keep-alive probes.
	KeepAlive time.Duration

	// MaxIdlePerHost is how many idle connections are kept per host:port.
	// 0 means DefaultMaxIdlePerHost; a negative value keeps none.
	MaxIdlePerHost int

	// IdleTimeout closes a connection that stayed idle that long. 0 means
	// DefaultIdleTimeout; a negative value means no limit.
	IdleTimeout time.Duration

	// ReadBufferSize and WriteBufferSize are the sizes of the read and
	// write buffers a connection borrows from its Transport while it is
	// busy. 0 means DefaultBufferSize; the smallest accepted is 512.
	ReadBufferSize, WriteBufferSize int

	// MaxResponseHeaderBytes bounds a reply's status line and header
	// fields, and separately its trailer fields. 0 means
	// DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int
}

// A Transport is an HTTP/1.1 http.RoundTripper for http:// URLs that runs
// each exchange on the caller's goroutine and keeps idle connections per
// host. It is safe for concurrent use. Build it with New; see the package
// comment for how it differs from net/http's Transport.
type Transport struct {
	dialer    net.Dialer
	maxIdle   int // < 0: none
	idleTO    time.Duration
	rbuf      int
	wbuf      int
	maxHeader int

	// Buffers of rbuf and wbuf bytes, lent to connections: an idle one
	// holds neither, so a thousand of them do not pin 8 MiB.
	readers, writers sync.Pool

	// bufHook, nil but in tests, is told of every buffer taken from
	// (taken) or given back to (!taken) the pools.
	bufHook func(buf any, taken bool)

	mu   sync.Mutex
	idle map[string][]*conn // per host:port, most recently used last
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport configured by cfg.
func New(cfg Config) *Transport {
	t := &Transport{
		maxIdle:   cfg.MaxIdlePerHost,
		idleTO:    cfg.IdleTimeout,
		rbuf:      cfg.ReadBufferSize,
		wbuf:      cfg.WriteBufferSize,
		maxHeader: cfg.MaxResponseHeaderBytes,
		idle:      make(map[string][]*conn),
	}
	t.dialer.Timeout = cfg.DialTimeout
	switch {
	case cfg.DialTimeout == 0:
		t.dialer.Timeout = DefaultDialTimeout
	case cfg.DialTimeout < 0:
		t.dialer.Timeout = 0
	}
	t.dialer.KeepAlive = cfg.KeepAlive
	if cfg.KeepAlive == 0 {
		t.dialer.KeepAlive = DefaultKeepAlive
	}
	if t.maxIdle == 0 {
		t.maxIdle = DefaultMaxIdlePerHost
	}
	if t.idleTO == 0 {
		t.idleTO = DefaultIdleTimeout
	}
	if t.rbuf == 0 {
		t.rbuf = DefaultBufferSize
	}
	if t.wbuf == 0 {
		t.wbuf = DefaultBufferSize
	}
	t.rbuf, t.wbuf = max(t.rbuf, 512), max(t.wbuf, 512)
	if t.maxHeader <= 0 {
		t.maxHeader = DefaultMaxResponseHeaderBytes
	}
	return t
}

// CloseIdleConnections closes the connections that are idle now. Those in
// use are left alone; they close or go idle when their reply ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*conn)
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			if c.timer != nil {
				c.timer.Stop()
			}
			c.nc.Close()
		}
	}
}

// RoundTrip sends req and returns the reply, whose Body the caller must
// close. It sends req.Body and closes it, even on errors.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	closeBody := func() {
		if body != nil {
			body.Close()
			body = nil
		}
	}
	w, err := checkRequest(req)
	if err != nil {
		closeBody()
		return nil, err
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	key := hostPort(req.URL)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			closeBody()
			return nil, err
		}
		c, err := t.getConn(ctx, key, trace)
		if err != nil {
			closeBody()
			return nil, err
		}
		x := exchange{c: c, req: req, w: w, body: body, trace: trace}
		resp, err := x.run(ctx)
		if x.bodyClosed {
			body = nil
		}
		if err == nil {
			return resp, nil
		}
		if !x.retryable(ctx) || attempt >= 4 {
			closeBody()
			return nil, err
		}
		if x.bodyTouched {
			// net/http's rule: a body partly sent is sent again only when
			// it can be rewound.
			closeBody()
			if body, err = req.GetBody(); err != nil {
				return nil, err
			}
			if body == http.NoBody {
				body = nil
			}
		}
	}
}

// hostPort is the address to dial for u: its host, with port 80 when it
// names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// conn is one upstream connection.
type conn struct {
	t      *Transport
	key    string
	nc     net.Conn
	rc     syscall.RawConn // nil: no liveness check
	br     *bufio.Reader   // from t.readers; nil while idle
	nwrite int64           // bytes written to nc, counted under the write buffer
	reused bool
	idleAt time.Time
	timer  *time.Timer // closes the connection once idle too long; guarded by t.mu

	// peekOK is set by peek, the liveness check, which runs as a method
	// value made once per connection.
	peekOK bool
	peekFn func(fd uintptr) bool

	p parser // reads replies from br; p.br is br
}

// getConn returns an idle connection to key that is still open, or dials a
// new one.
func (t *Transport) getConn(ctx context.Context, key string, trace *httptrace.ClientTrace) (*conn, error) {
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(key)
	}
	for {
		c := t.takeIdle(key)
		if c == nil {
			break
		}
		if !c.alive() {
			c.nc.Close()
			continue
		}
		c.takeReader()
		if trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Conn: c.nc, Reused: true, WasIdle: true, IdleTime: time.Since(c.idleAt)})
		}
		return c, nil
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", key)
	if err != nil {
		return nil, err
	}
	c := &conn{
		t:   t,
		key: key,
		nc:  nc,
		p:   parser{limit: t.maxHeader},
	}
	c.takeReader()
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.peekFn = c.peek
		}
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: nc})
	}
	return c, nil
}

// takeIdle removes the most recently used idle connection to key from the
// pool; nil when there is none.
func (t *Transport) takeIdle(key string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		list := t.idle[key]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		if c.timer != nil && !c.timer.Stop() {
			// Its idle time is up: the timer's function, which found it
			// gone from the pool, leaves the closing to us.
			c.nc.Close()
			continue
		}
		return c
	}
}

// putIdle puts c, whose last reply ended cleanly and whose read buffer is
// back in its pool, into the pool of idle connections, or closes it when
// that is full.
func (t *Transport) putIdle(c *conn) {
	if t.maxIdle < 0 {
		c.nc.Close()
		return
	}
	t.mu.Lock()
	list := t.idle[c.key]
	if len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	c.reused = true
	c.idleAt = time.Now()
	t.idle[c.key] = append(list, c)
	if t.idleTO > 0 {
		if c.timer == nil {
			c.timer = time.AfterFunc(t.idleTO, c.idleExpired)
		} else {
			c.timer.Reset(t.idleTO)
		}
	}
	t.mu.Unlock()
}

// idleExpired closes c if it is still idle.
func (c *conn) idleExpired() {
	t := c.t
	t.mu.Lock()
	list := t.idle[c.key]
	found := false
	for i, d := range list {
		if d == c {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			t.idle[c.key] = list[:len(list)-1]
			found = true
			break
		}
	}
	t.mu.Unlock()
	if found {
		c.nc.Close()
	}
}

// takeReader lends c a read buffer, over nc, for an exchange.
func (c *conn) takeReader() {
	t := c.t
	br, _ := t.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(c.nc, t.rbuf)
	} else {
		br.Reset(c.nc)
	}
	if t.bufHook != nil {
		t.bufHook(br, true)
	}
	c.br, c.p.br = br, br
}

// releaseReader gives c's read buffer back. Its caller makes sure that
// nothing reads from it any more: settle, called once per exchange either
// before the reply has a body or from the body's last Read.
func (c *conn) releaseReader() {
	br := c.br
	c.br, c.p.br = nil, nil
	br.Reset(nil) // so that the pool does not keep nc alive
	if c.t.bufHook != nil {
		c.t.bufHook(br, false)
	}
	c.t.readers.Put(br)
}

// takeWriter lends a write buffer, counted into c.nwrite, for writing one
// request.
func (c *conn) takeWriter() *bufio.Writer {
	t := c.t
	bw, _ := t.writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(countingWriter{c}, t.wbuf)
	} else {
		bw.Reset(countingWriter{c})
	}
	if t.bufHook != nil {
		t.bufHook(bw, true)
	}
	return bw
}

// releaseWriter gives back a write buffer of c's Transport; what it still
// holds, after a failed write, is dropped.
func (c *conn) releaseWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	if c.t.bufHook != nil {
		c.t.bufHook(bw, false)
	}
	c.t.writers.Put(bw)
}

// alive reports whether an idle connection is still open and silent: a
// server that closed it, or sent something unasked, makes it unusable. It
// looks at the socket, not at br, which an idle connection does not have.
func (c *conn) alive() bool {
	if c.rc == nil {
		return true
	}
	c.peekOK = false
	if err := c.rc.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekOK
}

// aLongTimeAgo is a deadline in the past: setting it makes the
// connection's blocked reads and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// abort makes the connection's pending and future I/O fail; the request's
// context calls it when it ends.
func (c *conn) abort() { c.nc.SetDeadline(aLongTimeAgo) }

// errClosedBody is what a reply body's Read returns after Close.
var errClosedBody = errors.New("h1: read on closed response body")

// schemeError is the error for a URL whose scheme is not http.
type schemeError string

func (e schemeError) Error() string {
	return fmt.Sprintf("h1: unsupported protocol scheme %q: this transport serves plain http:// URLs only", string(e))
}

// isIdempotent reports whether req may be sent twice, by net/http's rule.
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

var _ io.ReadWriteCloser = (*upgraded)(nil)

// countingWriter counts what reaches the connection, including writes
// bufio makes on its own and the part of a write that failed, so that a
// request is retried only when not one byte of it went out.
type countingWriter struct{ c *conn }

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	w.c.nwrite += int64(n)
	return n, err
}
