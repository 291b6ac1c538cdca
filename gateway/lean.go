package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// leanServer serves HTTP/1.x connections on a loop of its own instead of
// net/http's (Server.LeanHTTP1). Requests are parsed by http.ReadRequest,
// net/http's own parser, and checked as net/http's server checks them; the
// difference is in what runs around the handler: one goroutine per
// connection, no background read while the handler runs, and the reply
// buffered in one writer taken from a pool for each reply.
//
// Without the background read, a client that goes away is noticed when its
// reply is written, not while the handler waits: the request's context is
// not cancelled early. The upstream timeouts bound that wait.
type leanServer struct {
	hs      *http.Server // timeouts, limits, ErrorLog; serves HTTP/2 connections
	handler http.Handler
	base    context.Context
	log     *slog.Logger

	mu       sync.Mutex
	conns    map[*leanConn]struct{}
	shutdown atomic.Bool
	done     chan struct{} // closed by shutdown or close
	dateNow  atomic.Pointer[cachedDate]
}

// date is the Date field value for now, formatted once a second.
func (s *leanServer) date() string {
	now := time.Now()
	sec := now.Unix()
	if d := s.dateNow.Load(); d != nil && d.sec == sec {
		return d.value
	}
	d := &cachedDate{sec: sec, value: now.UTC().Format(http.TimeFormat)}
	s.dateNow.Store(d)
	return d.value
}

type cachedDate struct {
	sec   int64
	value string
}

func newLeanServer(hs *http.Server, base context.Context, log *slog.Logger) *leanServer {
	return &leanServer{
		hs: hs, handler: hs.Handler, base: base, log: log,
		conns: make(map[*leanConn]struct{}),
		done:  make(chan struct{}),
	}
}

// serve accepts connections from ln until it fails or the server shuts
// down. HTTP/2 connections (a *tls.Conn that negotiated h2) go to h2.
func (s *leanServer) serve(ln net.Listener, h2 *connQueue) error {
	go func() {
		<-s.done
		ln.Close()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			if backOff(err, &delay, s.done) {
				continue
			}
			return err
		}
		delay = 0
		if tc, ok := nc.(*tls.Conn); ok && h2 != nil {
			h2.put(tc)
			continue
		}
		c := &leanConn{s: s, nc: nc}
		if !s.track(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// track adds c to the connections a shutdown closes or waits for; false
// when the server is shutting down.
func (s *leanServer) track(c *leanConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *leanServer) untrack(c *leanConn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
	}
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// others to finish their request in flight (they close after it) or for
// ctx to end. As http.Server.Shutdown does, it polls for idle connections,
// which a request in flight leaves as it ends.
func (s *leanServer) Shutdown(ctx context.Context) error {
	s.stop()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes every connection at once.
func (s *leanServer) Close() {
	s.stop()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
}

func (s *leanServer) stop() {
	s.mu.Lock()
	if !s.shutdown.Swap(true) {
		close(s.done)
	}
	s.mu.Unlock()
}

// closeIdle closes the connections waiting for a request and reports
// whether none are left.
func (s *leanServer) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// Connection states: idle between requests (a shutdown may close it),
// active from a request's first byte to the end of its reply.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// maxPostHandlerRead is how much of a request body the server reads after
// its handler, to reuse the connection, before giving up and closing it:
// net/http's figure.
const maxPostHandlerRead = 256 << 10

// preBodySize is how much of a reply body is held before the header is
// sent: a reply that ends within it gets a Content-Length, a longer one is
// chunked. net/http's figure.
const preBodySize = 2048

// sniffLen is how much of a body http.DetectContentType looks at.
const sniffLen = 512

var (
	leanReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	leanWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	leanPre     = sync.Pool{New: func() any { b := make([]byte, 0, preBodySize); return &b }}
)

// leanConn is one client connection.
type leanConn struct {
	s     *leanServer
	nc    net.Conn
	state atomic.Int32
	r     limitReader
	br    *bufio.Reader
	bw    *bufio.Writer
	tls   *tls.ConnectionState
	ctx   context.Context
	// hijacked is set when a handler took the connection over.
	hijacked bool
	// cur is the reply of the request being served, nil between requests.
	cur *leanResponse
	// writeDeadlineSet is set when a handler set a write deadline
	// (http.ResponseController), which must not outlive its request.
	writeDeadlineSet bool
}

// limitReader reads from the connection with a limit while a request head
// is read, as net/http does: MaxHeaderBytes plus 4 KiB of slack.
type limitReader struct {
	nc     net.Conn
	remain int64
}

func (r *limitReader) Read(p []byte) (int, error) {
	if r.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.nc.Read(p)
	r.remain -= int64(n)
	return n, err
}

const noLimit = 1<<63 - 1

func (c *leanConn) serve() {
	s := c.s
	hs := s.hs
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.log.Error("gateway: panic serving "+c.nc.RemoteAddr().String(), "panic", p, "stack", string(buf))
		}
		if !c.hijacked {
			// As net/http: what is buffered goes out before the close,
			// even after a panic (the client sees a reply cut short).
			if c.bw != nil {
				c.bw.Flush()
			}
			c.nc.Close()
			if c.cur != nil {
				// After the close, so that a Read left running ends.
				c.cur.body.shut()
			}
			c.release()
		}
		s.untrack(c)
	}()
	c.r = limitReader{nc: c.nc, remain: noLimit}
	c.br = leanReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.r)
	if cs, ok := c.nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		c.tls = &st
	}
	ctx := context.WithValue(s.base, http.ServerContextKey, hs)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.nc.LocalAddr())
	if scan := scanner(c.nc); scan != nil {
		ctx = context.WithValue(ctx, scannerKey{}, scan)
	}
	c.ctx = ctx
	remote := c.nc.RemoteAddr().String()
	lastPOST := false
	hdrTimeout, idleTimeout := hs.ReadHeaderTimeout, hs.IdleTimeout
	if hdrTimeout <= 0 {
		hdrTimeout = hs.ReadTimeout
	}
	if idleTimeout <= 0 {
		idleTimeout = hs.ReadTimeout
	}

	for first := true; ; first = false {
		// Wait for the next request: ReadHeaderTimeout for the first,
		// whose head it bounds whole, IdleTimeout between them, each
		// ReadTimeout when unset, as net/http.
		t0 := time.Now()
		wait := hdrTimeout
		if !first {
			wait = idleTimeout
		}
		if wait > 0 {
			c.nc.SetReadDeadline(t0.Add(wait))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		// The head's limit counts from here, as net/http's, with the
		// wait's read inside it.
		c.r.remain = int64(hs.MaxHeaderBytes) + 4096
		// As net/http: 4 bytes before a request that follows another, so
		// that a stray byte or two after a reply is not answered at once.
		peek := 1
		if !first {
			peek = 4
		}
		if _, err := c.br.Peek(peek); err != nil {
			return
		}
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return // closed by a shutdown
		}
		if !first {
			t0 = time.Now()
			if hdrTimeout > 0 {
				c.nc.SetReadDeadline(t0.Add(hdrTimeout))
			} else {
				c.nc.SetReadDeadline(time.Time{})
			}
		}
		w, err := c.readRequest(t0, remote, lastPOST)
		if err != nil {
			c.refuse(err)
			return
		}
		lastPOST = w.req.Method == "POST"
		c.cur = w
		c.serveRequest(w)
		if c.hijacked {
			return
		}
		if w.closeAfter || s.shutdown.Load() {
			if !w.handlerFailed && !w.body.ended() {
				c.lingerClose()
			}
			return
		}
		// The body ended (else the connection would close): a Read left
		// running cannot be blocked in it.
		w.body.shut()
		c.cur = nil
		c.releaseWriter()
		if !c.state.CompareAndSwap(connActive, connIdle) {
			return
		}
	}
}

// lingerClose half-closes a connection whose client may still be sending
// (a body not read, a request refused) and waits a moment before the
// close: closing with unread bytes resets the connection, and a reset can
// destroy the reply before the client has read it. net/http's
// closeWriteAndWait, with its 500ms.
func (c *leanConn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

const rstAvoidanceDelay = 500 * time.Millisecond

// writer is the connection's buffered writer, taken from the pool for a
// reply and given back after it (see releaseWriter): a connection waiting
// for its next request, or for its handler, holds none.
func (c *leanConn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = leanWriters.Get().(*bufio.Writer)
		c.bw.Reset(c.nc)
	}
	return c.bw
}

// releaseWriter gives the writer back once a reply is out.
func (c *leanConn) releaseWriter() {
	if c.bw != nil && c.bw.Buffered() == 0 {
		c.bw.Reset(nil)
		leanWriters.Put(c.bw)
		c.bw = nil
	}
}

// release returns the connection's buffers to their pools.
func (c *leanConn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		leanReaders.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		leanWriters.Put(c.bw)
		c.bw = nil
	}
}

// statusError is a refusal of a request net/http's server would refuse.
type statusError struct {
	code   int
	detail string
}

func (e *statusError) Error() string { return e.detail }

var errHeadTooLarge = &statusError{http.StatusRequestHeaderFieldsTooLarge, "the request header is too large"}

// readRequest reads and checks the next request, as net/http's server does.
func (c *leanConn) readRequest(t0 time.Time, remote string, lastPOST bool) (*leanResponse, error) {
	hs := c.s.hs
	if lastPOST {
		// RFC 9112 §2.2 tolerance of a CRLF after a POST body, as net/http.
		peek, _ := c.br.Peek(4)
		n := 0
		for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
			n++
		}
		c.br.Discard(n)
	}
	req, err := http.ReadRequest(c.br)
	if err != nil {
		if c.r.remain <= 0 {
			return nil, errHeadTooLarge
		}
		return nil, err
	}
	c.r.remain = noLimit
	// As net/http: HTTP/1.x, and the HTTP/2 preface as a request, for a
	// handler that would take the connection over (the router refuses it).
	h2Preface := req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*"
	if req.ProtoMajor != 1 && !h2Preface {
		return nil, &statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	// http.ReadRequest has moved Host from the header to req.Host, and
	// refused more than one. An HTTP/1.1 request needs one (RFC 9112 §3.2),
	// and an http URI an authority that is not empty (RFC 9110 §4.2.1): an
	// empty value is refused with a missing one. A request in absolute
	// form names its host in its target, which then wins over any Host.
	if req.Host == "" && req.ProtoAtLeast(1, 1) && req.Method != "CONNECT" && !h2Preface {
		return nil, &statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if !validHost(req.Host) {
		return nil, &statusError{http.StatusBadRequest, "malformed Host header"}
	}
	// net/textproto has refused field values with control characters and
	// names with any byte that is not a token's, but for a space, which it
	// lets through ("Bad Name: x"); net/http's server refuses that too.
	for k := range req.Header {
		if !IsToken(k) {
			return nil, &statusError{http.StatusBadRequest, "invalid header name"}
		}
	}
	// As net/http: 100-continue among the Expect field's values is
	// honoured (for a body), any other Expect refused.
	expect := false
	if e := req.Header["Expect"]; len(e) > 0 {
		if !hasToken(e[:1], "100-continue") {
			return nil, &statusError{http.StatusExpectationFailed, "unsupported Expect"}
		}
		expect = req.ProtoAtLeast(1, 1) && req.ContentLength != 0
	}

	ctx, cancel := context.WithCancel(c.ctx)
	req = req.WithContext(ctx)
	req.RemoteAddr = remote
	req.TLS = c.tls
	if d := hs.ReadTimeout; d > 0 {
		c.nc.SetReadDeadline(t0.Add(d))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	if d := hs.WriteTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	} else if c.writeDeadlineSet {
		c.nc.SetWriteDeadline(time.Time{})
		c.writeDeadlineSet = false
	}
	w := &leanResponse{
		c: c, req: req, cancel: cancel,
		header:         make(http.Header),
		contentLength:  -1,
		wants10Keep:    !req.ProtoAtLeast(1, 1) && hasToken(req.Header["Connection"], "keep-alive"),
		wantsClose:     req.Close,
		closeAfter:     h2Preface,
		expectContinue: expect,
	}
	w.body = leanBody{r: req.Body, w: w}
	w.canContinue = expect
	if req.Body != http.NoBody {
		req.Body = &w.body
	} else {
		w.body.sawEOF = true
	}
	return w, nil
}

// validHost reports whether v may be a Host field value: the bytes of an
// RFC 3986 authority, as net/http's check (no UTF-8).
func validHost(v string) bool {
	for i := 0; i < len(v); i++ {
		if !hostChar(v[i]) {
			return false
		}
	}
	return true
}

func hostChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!$%&'()*+,-.:;=[]_~", b) >= 0
}

// hasToken reports whether one of the comma-separated lists values holds
// token, in any case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// refuse answers a request that could not be read, as net/http's server
// does: nothing when the client went away or was too slow, else an error
// reply, and the connection closes.
func (c *leanConn) refuse(err error) {
	var se *statusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &se):
	// As net/http: silence for the end of the stream, a timeout, or a
	// failed read (the connection closed under it).
	case err == io.EOF,
		errors.As(err, &ne) && ne.Timeout(),
		errors.As(err, &oe) && oe.Op == "read":
		return
	case strings.HasPrefix(err.Error(), "unsupported transfer encoding:"):
		se = &statusError{http.StatusNotImplemented, "unsupported transfer encoding"}
	default:
		se = &statusError{http.StatusBadRequest, "the request could not be parsed"}
	}
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	w := &leanResponse{c: c, req: &http.Request{Method: "GET", ProtoMajor: 1, ProtoMinor: 1}, header: make(http.Header), contentLength: -1}
	w.body.sawEOF = true
	w.header.Set("Connection", "close")
	(&Error{Status: se.code, Detail: se.detail}).Write(w)
	w.finish()
	c.lingerClose()
}

// serveRequest runs the handler and finishes the reply.
func (c *leanConn) serveRequest(w *leanResponse) {
	defer func() {
		w.cancel()
		if w.pre != nil {
			*w.pre = (*w.pre)[:0]
			leanPre.Put(w.pre)
			w.pre = nil
		}
	}()
	func() {
		defer func() {
			if p := recover(); p != nil {
				w.handlerFailed = true
				if p != http.ErrAbortHandler {
					buf := make([]byte, 64<<10)
					buf = buf[:runtime.Stack(buf, false)]
					c.s.log.Error("gateway: panic serving "+w.req.RemoteAddr, "panic", p, "stack", string(buf))
				}
			}
		}()
		c.s.handler.ServeHTTP(w, w.req)
	}()
	if c.hijacked {
		return
	}
	if w.handlerFailed {
		w.closeAfter = true
		w.finished = true
	} else {
		w.handlerDone = true
		w.finish()
	}
	// No automatic 100 Continue from here on: a body read left running
	// would race the final flush for the writer.
	w.noContinue()
	// Reads of the body from here on fail; one in progress ends with the
	// connection, or has ended with the body (see leanBody.shut).
	w.body.over.Store(true)
}
