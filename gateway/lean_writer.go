package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// leanResponse is the http.ResponseWriter of a leanServer. It follows
// net/http's server: a reply body that ends within preBodySize before the
// handler returns or flushes gets a Content-Length, a longer one is chunked
// (closed at its end for HTTP/1.0); HEAD replies and 1xx, 204 and 304
// replies carry no body; Date is added, Content-Type sniffed when the
// handler set none; trailers are declared with Trailer or set with
// http.TrailerPrefix.
type leanResponse struct {
	c      *leanConn
	req    *http.Request
	cancel context.CancelFunc
	body   leanBody
	header http.Header
	sent   http.Header // the header at WriteHeader, once the handler asks for it after

	status        int // the final status, once written
	wroteHeader   bool
	headSent      bool  // the status line and header are in the connection's writer
	contentLength int64 // declared by the handler; -1: none
	written       int64 // body bytes the handler wrote
	chunked       bool
	pre           *[]byte // body held until the head is sent
	wants10Keep   bool
	wantsClose    bool
	closeAfter    bool
	fullDuplex    bool
	handlerDone   bool
	handlerFailed bool
	finished      bool // the reply is done: writes fail
	badLength     bool // the handler's Content-Length was invalid
	// expectContinue is set when the client sent Expect: 100-continue
	// with a body.
	expectContinue bool
	trailers       []string // declared with Trailer, canonical

	// continueMu orders the 100 Continue, written by a body read on any
	// goroutine, with the final header, which ends the chance to send it.
	continueMu  sync.Mutex
	canContinue bool
}

// leanBody is a request body. Unlike the body http.ReadRequest returns, its
// Close does not read the rest: the server decides after the handler how
// much of an unread body to read (maxPostHandlerRead) before it gives up on
// the connection. Its first read sends 100 Continue when the client asked.
type leanBody struct {
	r      io.ReadCloser
	w      *leanResponse
	over   atomic.Bool // the request is over: no new Read may start
	mu     sync.Mutex
	closed bool
	sawEOF bool
	read   int64 // bytes read by the handler
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.over.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	b.w.writeContinue()
	n, err := b.r.Read(p)
	b.read += int64(n)
	if err == io.EOF {
		b.sawEOF = true
	}
	return n, err
}

func (b *leanBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// discard reads what is left of the body, up to maxPostHandlerRead, and
// reports whether it reached the end.
func (b *leanBody) discard() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sawEOF {
		return true
	}
	_, err := io.CopyN(io.Discard, b.r, maxPostHandlerRead+1)
	if err == io.EOF {
		b.sawEOF = true
	}
	return b.sawEOF
}

// shut ends the body's use once its request is over: a Read left running
// on another goroutine (a transport still sending it upstream, say) must
// not reach the connection's reader, which goes on to the next request or
// back to its pool. A Read in progress holds mu: the connection is closed
// first when the body did not end, which ends that Read.
func (b *leanBody) shut() {
	b.over.Store(true)
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// left is how much of a body of length n is unread; -1 when n is unknown
// (chunked).
func (b *leanBody) left(n int64) int64 {
	if n < 0 {
		return -1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sawEOF {
		return 0
	}
	return n - b.read
}

// ended reports whether the body has been read to its end.
func (b *leanBody) ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sawEOF
}

// noContinue ends the chance of an automatic 100 Continue: the reply is
// over, or the connection is someone else's.
func (w *leanResponse) noContinue() {
	w.continueMu.Lock()
	w.canContinue = false
	w.continueMu.Unlock()
}

// writeContinue sends 100 Continue if the client asked for it and no final
// reply has begun.
func (w *leanResponse) writeContinue() {
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if !w.canContinue {
		return
	}
	w.canContinue = false
	bw := w.c.writer()
	bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	bw.Flush()
}

// Header is the handler's header. As with net/http's server, what is sent
// is the header as it stood at WriteHeader: a handler that asks for it
// after that gets the same map, and its changes, other than trailers, are
// not sent.
func (w *leanResponse) Header() http.Header {
	if w.wroteHeader && !w.headSent && w.sent == nil {
		w.sent = w.header.Clone()
	}
	return w.header
}

// sentHeader is the header the head is written from.
func (w *leanResponse) sentHeader() http.Header {
	if w.sent != nil {
		return w.sent
	}
	return w.header
}

func (w *leanResponse) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("gateway: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.wroteHeader || w.c.hijacked || w.finished {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.continueMu.Lock()
	w.canContinue = false
	w.continueMu.Unlock()
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			// As net/http: ignored, and no length computed in its place.
			w.c.s.log.Warn("gateway: handler set an invalid Content-Length", "value", cl)
			w.header.Del("Content-Length")
			w.badLength = true
		}
	}
	for _, v := range w.header["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = http.CanonicalHeaderKey(strings.TrimSpace(name)); name != "" && validTrailer(name) {
				w.trailers = append(w.trailers, name)
			}
		}
	}
}

// writeInterim sends a 1xx reply with the header as it stands.
func (w *leanResponse) writeInterim(code int) {
	// Under continueMu: an automatic 100 Continue, written by a body read
	// on another goroutine, must not interleave with this one.
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if code == http.StatusContinue {
		w.canContinue = false
	}
	if w.finished {
		return
	}
	bw := w.c.writer()
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code)
	w.header.WriteSubset(bw, excludeSets[dropTE|dropCL])
	bw.WriteString("\r\n")
	bw.Flush()
}

func writeStatusLine(bw *bufio.Writer, is11 bool, code int) {
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	var b [3]byte
	bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	}
	bw.WriteString("\r\n")
}

func (w *leanResponse) Write(p []byte) (int, error) { return w.write(p, "") }

// WriteString spares a handler's string the copy a conversion to []byte
// makes (io.WriteString uses it).
func (w *leanResponse) WriteString(s string) (int, error) { return w.write(nil, s) }

// write writes p, or s when p is nil.
func (w *leanResponse) write(p []byte, s string) (int, error) {
	n := len(p)
	if p == nil {
		n = len(s)
	}
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if w.finished {
		return 0, errWriteAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.headSent {
		if w.pre == nil {
			w.pre = leanPre.Get().(*[]byte)
		}
		pre := *w.pre
		if len(pre)+n <= preBodySize {
			if p != nil {
				*w.pre = append(pre, p...)
			} else {
				*w.pre = append(pre, s...)
			}
			return n, nil
		}
		// Sniffed from what net/http would: up to 512 bytes of the held
		// body and this write, in pre's spare room (not part of pre).
		first := pre
		if len(first) < sniffLen {
			if p != nil {
				first = append(first, p[:min(len(p), sniffLen-len(first))]...)
			} else {
				first = append(first, s[:min(len(s), sniffLen-len(first))]...)
			}
		}
		if err := w.sendHead(first); err != nil {
			return 0, err
		}
	}
	if w.req.Method == "HEAD" {
		return n, nil
	}
	return w.writeBody(p, s)
}

// writeBody writes p (or s, when p is nil) after the head, as a chunk when
// chunked.
func (w *leanResponse) writeBody(p []byte, s string) (int, error) {
	bw := w.c.writer()
	n := len(p)
	if p == nil {
		n = len(s)
	}
	if w.chunked {
		var b [20]byte
		bw.Write(strconv.AppendInt(b[:0], int64(n), 16))
		bw.WriteString("\r\n")
	}
	var err error
	if p != nil {
		n, err = bw.Write(p)
	} else {
		n, err = bw.WriteString(s)
	}
	if err != nil {
		return n, err
	}
	if w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	return n, err
}

// sendHead writes the status line and header into the connection's writer, choosing the
// framing, then the body held so far. first is the start of the body, to
// sniff a Content-Type from when the handler set none. The handler's
// header map is not changed: what the server adds (Date, a computed
// Content-Length, the framing, Connection) is written after it, as
// net/http's server does.
func (w *leanResponse) sendHead(first []byte) error {
	w.headSent = true
	h := w.sentHeader()
	req := w.req
	head := req.Method == "HEAD"
	var pre []byte
	if w.pre != nil {
		pre = *w.pre
	}

	var extra struct {
		contentLength, contentType, connection string
		chunked                                bool
	}
	tp := trailerPrefixed(h)
	_, declared := h["Trailer"]
	trailers := declared || tp != nil
	_, hasType := h["Content-Type"]
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	if w.handlerDone && !trailers && !hasTE && !w.badLength && bodyAllowed(w.status) && w.contentLength == -1 && (!head || len(pre) > 0) {
		w.contentLength = int64(len(pre))
		extra.contentLength = strconv.Itoa(len(pre))
	}
	drop := dropTE
	if bodyAllowed(w.status) {
		_, hasCE := h["Content-Encoding"]
		if !hasType && !hasCE && !hasTE && len(first) > 0 {
			extra.contentType = http.DetectContentType(first)
		}
	} else {
		// RFC 9110 §8.6, §15.4.5: no framing on a reply without a body,
		// nor a type on a 304.
		drop |= dropCL
		if w.status == http.StatusNotModified {
			drop |= dropCT
		}
	}
	if w.contentLength != -1 && hasTE && te != "identity" {
		// Both: the length is ignored, as net/http does.
		w.c.s.log.Warn("gateway: handler set both Transfer-Encoding and Content-Length", "transfer-encoding", te)
		w.contentLength = -1
	}

	// Keep-alive, as net/http decides it.
	hasCL := w.contentLength != -1
	_, hasConnection := h["Connection"]
	if w.wants10Keep && (head || hasCL || !bodyAllowed(w.status)) {
		if !hasConnection {
			extra.connection = "keep-alive"
		}
	} else if !req.ProtoAtLeast(1, 1) || w.wantsClose {
		w.closeAfter = true
	}
	if hasToken(h["Connection"], "close") || w.c.s.shutdown.Load() {
		w.closeAfter = true
	}

	// The handler's framing fields are replaced by the server's own: the
	// Content-Length sent is the one the reply is held to, even if the
	// header changed after WriteHeader through a map the handler kept.
	if hasCL && bodyAllowed(w.status) && extra.contentLength == "" {
		extra.contentLength = lengthValue(h["Content-Length"], w.contentLength)
	}
	drop |= dropCL
	switch {
	case head || !bodyAllowed(w.status):
	case hasCL:
	case req.ProtoAtLeast(1, 1):
		if hasTE && te == "identity" {
			w.closeAfter = true
		} else {
			w.chunked = true
			extra.chunked = true
		}
	default:
		w.closeAfter = true
	}

	// What the client has not sent of its body is read now, up to a limit,
	// when the connection is to be reused, unless the handler reads and
	// writes at once: a client that sends its whole request before it
	// reads the reply would deadlock otherwise. A client that waits for
	// 100 Continue, and did not get it or did not send all, is not read
	// from: the connection closes.
	if req.ContentLength != 0 && !w.closeAfter {
		switch {
		case w.expectContinue && !w.body.ended():
			w.closeAfter = true
		case !w.fullDuplex && w.body.left(req.ContentLength) >= maxPostHandlerRead:
			// Too much to read for a connection's sake, as net/http: the
			// reply goes now and the connection closes.
			w.closeAfter = true
			w.body.over.Store(true)
		case !w.fullDuplex:
			if !w.body.discard() {
				w.closeAfter = true
			}
			// As net/http: the handler's reads end when its reply
			// begins.
			w.body.over.Store(true)
		}
	}

	if w.closeAfter && !hasToken(h["Connection"], "close") {
		extra.connection = ""
		if req.ProtoAtLeast(1, 1) {
			extra.connection = "close"
		}
		if hasConnection {
			drop |= dropConnection
		}
	}
	exclude := excludeSets[drop]
	if tp != nil {
		for k := range exclude {
			tp[k] = true
		}
		exclude = tp
	}

	bw := w.c.writer()
	writeStatusLine(bw, req.ProtoAtLeast(1, 1), w.status)
	if err := h.WriteSubset(bw, exclude); err != nil {
		return err
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(w.c.s.date())
		bw.WriteString("\r\n")
	}
	for _, f := range [...]struct{ name, value string }{
		{"Content-Length: ", extra.contentLength},
		{"Content-Type: ", extra.contentType},
		{"Connection: ", extra.connection},
	} {
		if f.value != "" {
			bw.WriteString(f.name)
			bw.WriteString(f.value)
			bw.WriteString("\r\n")
		}
	}
	if extra.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if len(pre) > 0 && !head {
		if _, err := w.writeBody(pre, ""); err != nil {
			return err
		}
	}
	if w.pre != nil {
		*w.pre = (*w.pre)[:0]
	}
	return nil
}

// lengthValue is the Content-Length field value for n: the handler's own
// when it is exactly that (no copy), else n formatted.
func lengthValue(vv []string, n int64) string {
	if len(vv) == 1 {
		v := vv[0]
		if v != "" && '1' <= v[0] && v[0] <= '9' || v == "0" {
			if m, err := strconv.ParseInt(v, 10, 64); err == nil && m == n {
				return v
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// The fields of a handler's header that the server leaves out, by a mask
// of drop bits: it frames the reply itself, and may override Connection or
// drop Content-Length.
const (
	dropTE = 1 << iota
	dropCL
	dropConnection
	dropCT
)

var excludeSets = func() (sets [16]map[string]bool) {
	for mask := range sets {
		m := make(map[string]bool)
		for bit, name := range []string{"Transfer-Encoding", "Content-Length", "Connection", "Content-Type"} {
			if mask&(1<<bit) != 0 {
				m[name] = true
			}
		}
		sets[mask] = m
	}
	return sets
}()

// validTrailer reports whether a field may be sent as a trailer: a field
// name, and not one that frames, routes, authenticates or describes the
// message (RFC 9110 §6.5.1), as net/http's list.
func validTrailer(name string) bool {
	if !IsToken(name) || strings.HasPrefix(name, "If-") {
		return false
	}
	switch name {
	case "Authorization", "Cache-Control", "Connection", "Content-Encoding", "Content-Length",
		"Content-Range", "Content-Type", "Expect", "Host", "Keep-Alive", "Max-Forwards", "Pragma",
		"Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Range", "Realm", "Te",
		"Trailer", "Transfer-Encoding", "Www-Authenticate":
		return false
	}
	return true
}

// trailerPrefixed lists the fields a handler set to be sent as trailers
// (http.TrailerPrefix), which are not part of the header; nil when none.
func trailerPrefixed(h http.Header) map[string]bool {
	var m map[string]bool
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if m == nil {
				m = make(map[string]bool)
			}
			m[k] = true
		}
	}
	return m
}

// finish ends the reply once the handler has returned.
func (w *leanResponse) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	defer func() { w.finished = true }()
	if !w.headSent {
		if w.sendHead(w.heldBody()) != nil {
			w.closeAfter = true
			return
		}
	}
	bw := w.c.writer()
	if w.chunked {
		bw.WriteString("0\r\n")
		if t := w.finalTrailers(); t != nil {
			t.Write(bw) // drops invalid names, as net/http's server
		}
		bw.WriteString("\r\n")
	}
	if w.contentLength != -1 && w.written != w.contentLength && w.req.Method != "HEAD" && bodyAllowed(w.status) {
		// Shorter than announced: the client must not wait for the rest
		// on a connection that goes on.
		w.closeAfter = true
	}
	if bw.Flush() != nil {
		w.closeAfter = true
	}
	if !w.closeAfter && w.req.ContentLength != 0 && (w.expectContinue && !w.body.ended() || !w.body.discard()) {
		w.closeAfter = true
	}
}

// heldBody is the body held so far, before the head is sent.
func (w *leanResponse) heldBody() []byte {
	if w.pre == nil {
		return nil
	}
	return *w.pre
}

// errWriteAfterHandler is what a write to a reply whose handler has
// returned gets: the connection has moved on, perhaps to the next request.
var errWriteAfterHandler = errors.New("gateway: write to a reply after its handler returned")

// finalTrailers are the trailers to send: those declared with Trailer and
// those set with http.TrailerPrefix; nil when none.
func (w *leanResponse) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[name] = append(t[name], vv...)
		}
	}
	for _, k := range w.trailers {
		if vv := w.header[k]; len(vv) > 0 {
			if t == nil {
				t = make(http.Header)
			}
			t[k] = append(t[k], vv...)
		}
	}
	return t
}

// Flush sends the head, chunked when no length is known, and what is
// buffered.
func (w *leanResponse) Flush() { w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *leanResponse) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.finished {
		return errWriteAfterHandler
	}
	if !w.headSent {
		if err := w.sendHead(w.heldBody()); err != nil {
			return err
		}
	}
	return w.c.writer().Flush()
}

// Hijack hands the connection over to the handler, as net/http's server
// does; what the server had buffered of the reply is flushed first.
func (w *leanResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.noContinue()
	if w.wroteHeader && !w.headSent {
		if err := w.sendHead(w.heldBody()); err != nil {
			return nil, nil, err
		}
	}
	if err := c.writer().Flush(); err != nil {
		return nil, nil, err
	}
	c.hijacked = true
	c.state.Store(connClosed)
	c.s.untrack(c)
	if scan := scanner(c.nc); scan != nil {
		scan.stop() // what follows (a WebSocket, say) is not HTTP/1.x
	}
	// As net/http: the request's deadlines do not bound the connection's
	// new life.
	c.nc.SetDeadline(time.Time{})
	// The buffers go with the connection: the reader may hold bytes the
	// client sent after its request.
	return c.nc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline is for http.ResponseController.
func (w *leanResponse) SetReadDeadline(d time.Time) error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	return w.c.nc.SetReadDeadline(d)
}

// SetWriteDeadline is for http.ResponseController.
func (w *leanResponse) SetWriteDeadline(d time.Time) error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	w.c.writeDeadlineSet = true // cleared for the next request
	return w.c.nc.SetWriteDeadline(d)
}

// EnableFullDuplex is for http.ResponseController: the body is then left
// alone when the reply begins.
func (w *leanResponse) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// connQueue is a listener fed with connections another accept loop took:
// HTTP/2 connections, which the lean server hands to net/http's.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.done:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
