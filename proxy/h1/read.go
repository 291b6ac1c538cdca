package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
)

// Errors of a reply that is not valid HTTP/1.1. Classify with errors.Is.
var (
	// ErrMalformedResponse is wrapped by every error for a reply that does
	// not parse.
	ErrMalformedResponse = errors.New("h1: malformed HTTP response")
	// ErrHeaderTooLarge: the reply's header, or its trailer, is longer than
	// Config.MaxResponseHeaderBytes.
	ErrHeaderTooLarge = errors.New("h1: response header too large")
)

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformedResponse, what) }

// span locates one field line in parser.buf: name [k0,k1), value [v0,v1).
type span struct{ k0, k1, v0, v1 int }

// parser reads reply heads and trailers from br, reusing its buffers.
type parser struct {
	br    *bufio.Reader
	limit int
	buf   []byte // the block being read, line endings stripped
	base  int    // raw bytes read in this block, for the limit
	spans []span
	got   bool // a byte of reply has been read
	crlf  bool // lines must end in CRLF (trailers: net/http takes no bare LF there)
}

// head is a reply's status line and header fields.
type head struct {
	minor  int // 0 or 1 (HTTP/1.x)
	code   int
	status string
	header http.Header
}

// readLine appends the next line, without its line ending (LF or CRLF), to
// p.buf and returns its bounds.
func (p *parser) readLine() (start, end int, err error) {
	start = len(p.buf)
	for {
		frag, err := p.br.ReadSlice('\n')
		if len(frag) > 0 {
			p.got = true
		}
		p.base += len(frag)
		if p.base > p.limit {
			return 0, 0, ErrHeaderTooLarge
		}
		p.buf = append(p.buf, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && p.base > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, err
		}
	}
	end = len(p.buf) - 1
	if end > start && p.buf[end-1] == '\r' {
		end--
	} else if p.crlf {
		return 0, 0, malformed("line ends with bare LF")
	}
	return start, end, nil
}

// readFields reads field lines up to the empty line into p.spans.
func (p *parser) readFields() error {
	for {
		s, e, err := p.readLine()
		if err != nil {
			return err
		}
		if s == e {
			return nil
		}
		line := p.buf[s:e]
		if line[0] == ' ' || line[0] == '\t' {
			// RFC 9112 §5.2: a proxy may answer 502 rather than unfold.
			return malformed("obsolete line folding")
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 || !validTokenBytes(line[:i]) {
			return malformed("invalid header field line")
		}
		v0, v1 := s+i+1, e
		for v0 < v1 && (p.buf[v0] == ' ' || p.buf[v0] == '\t') {
			v0++
		}
		for v1 > v0 && (p.buf[v1-1] == ' ' || p.buf[v1-1] == '\t') {
			v1--
		}
		if !validValueBytes(p.buf[v0:v1]) {
			return malformed("invalid header field value")
		}
		p.spans = append(p.spans, span{s, s + i, v0, v1})
	}
}

// fields builds the header of the spans read, its values cut from str,
// which holds p.buf.
func (p *parser) fields(str string) http.Header {
	h := make(http.Header, len(p.spans))
	if len(p.spans) == 0 {
		return h
	}
	vals := make([]string, len(p.spans))
	for i, sp := range p.spans {
		k := canonicalKey(p.buf[sp.k0:sp.k1])
		vals[i] = str[sp.v0:sp.v1]
		if old, ok := h[k]; ok {
			h[k] = append(old, vals[i])
		} else {
			h[k] = vals[i : i+1 : i+1]
		}
	}
	return h
}

// reset readies p for a new block. Buffers grown by an unusually large
// one are dropped rather than kept for the connection's lifetime.
func (p *parser) reset() {
	if cap(p.buf) > 64<<10 {
		p.buf = nil
	}
	if cap(p.spans) > 1024 {
		p.spans = nil
	}
	p.buf, p.spans, p.base = p.buf[:0], p.spans[:0], 0
}

// readHead reads a status line and header fields. io.EOF means the
// connection ended before any byte of it.
func (p *parser) readHead() (head, error) {
	var h head
	p.reset()
	s, e, err := p.readLine()
	if err != nil {
		return h, err
	}
	line := p.buf[s:e]
	// HTTP-version SP 3DIGIT [SP reason-phrase]; net/http is laxer about
	// the version and the spaces.
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return h, malformed("invalid status line")
	}
	h.minor = int(line[7] - '0')
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, malformed("invalid status code")
		}
		h.code = h.code*10 + int(c-'0')
	}
	if h.code < 100 {
		return h, malformed("invalid status code")
	}
	if len(line) > 12 && !validValueBytes(line[13:]) {
		return h, malformed("invalid reason phrase")
	}
	if err := p.readFields(); err != nil {
		return h, err
	}
	var str string
	if len(p.spans) > 0 {
		str = string(p.buf)
	}
	if h.code < 600 && string(line[9:]) == statusLines[h.code] {
		h.status = statusLines[h.code]
	} else if str != "" {
		h.status = str[s+9 : e]
	} else {
		h.status = string(line[9:])
	}
	h.header = p.fields(str)
	return h, nil
}

// statusLines holds "200 OK" and the like, so that the common status
// strings are not allocated per reply.
var statusLines = func() (t [600]string) {
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			t[code] = strconv.Itoa(code) + " " + text
		}
	}
	return t
}()

// commonKeys interns the canonical names of common fields.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date", "Etag",
		"Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade", "Vary",
		"Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Request-Id",
		"Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey of a valid token,
// without allocating for common names.
func canonicalKey(b []byte) string {
	var arr [64]byte
	if len(b) > len(arr) {
		return textproto.CanonicalMIMEHeaderKey(string(b))
	}
	k := arr[:len(b)]
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return string(k)
}

// Framing of a reply body.
const (
	modeNone    = iota // no body
	modeLength         // Content-Length
	modeChunked        // Transfer-Encoding: chunked
	modeClose          // until the connection closes
)

// reply is a Response and its body, in one allocation.
type reply struct {
	resp http.Response
	body body
}

// frame turns a final reply's head into a Response for req, framed by RFC
// 9112 §6.3. reuse reports whether the framing lets the connection carry
// another exchange after the body. The body reads from p.br and uses p for
// trailers.
func frame(h head, req *http.Request, p *parser) (r *reply, err error) {
	hdr := h.header
	r = &reply{}
	resp := &r.resp
	resp.Status = h.status
	resp.StatusCode = h.code
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	if h.minor == 0 {
		resp.Proto, resp.ProtoMinor = "HTTP/1.0", 0
	}
	resp.Header = hdr
	resp.Request = req
	resp.ContentLength = -1

	conn := hdr["Connection"]
	hasClose := hasTokenIn(conn, "close")
	if h.minor == 0 {
		resp.Close = hasClose || !hasTokenIn(conn, "keep-alive")
	} else {
		resp.Close = hasClose
		if hasClose {
			delete(hdr, "Connection") // as net/http does
		}
	}

	// Content-Length: identical repeats are one value (RFC 9110 §8.6);
	// differing ones are an error.
	cl := int64(-1)
	if vv, ok := hdr["Content-Length"]; ok {
		first := trimOWS(vv[0])
		for _, v := range vv[1:] {
			if trimOWS(v) != first {
				return nil, malformed("differing Content-Length values")
			}
		}
		if len(vv) > 1 {
			hdr["Content-Length"] = vv[:1]
		}
		if cl, err = parseLength(first); err != nil {
			return nil, err
		}
	}

	noBody := req.Method == "HEAD" || h.code/100 == 1 || h.code == 204 || h.code == 304
	reuse := true
	chunked := false
	if te, ok := hdr["Transfer-Encoding"]; ok {
		switch {
		case h.minor == 0:
			return nil, malformed("Transfer-Encoding in an HTTP/1.0 reply")
		case len(te) != 1 || !strings.EqualFold(te[0], "chunked"):
			return nil, malformed("unsupported Transfer-Encoding")
		case h.code/100 == 1 || h.code == 204:
			return nil, malformed("Transfer-Encoding in a reply without content")
		case cl >= 0 && noBody:
			return nil, malformed("both Transfer-Encoding and Content-Length")
		}
		delete(hdr, "Transfer-Encoding")
		chunked = true
		resp.TransferEncoding = []string{"chunked"}
		if cl >= 0 {
			// Chunked overrides Content-Length, but such a reply may be an
			// attempt at smuggling: the connection is not reused
			// (RFC 9112 §6.3, item 3).
			delete(hdr, "Content-Length")
			cl = -1
			reuse = false
		}
		if resp.Trailer, err = declaredTrailer(hdr); err != nil {
			return nil, err
		}
	}

	b := &r.body
	b.br = p.br
	b.p = p
	b.resp = resp
	switch {
	case noBody:
		if req.Method == "HEAD" {
			resp.ContentLength = cl
		} else {
			resp.ContentLength = 0
		}
		b.mode = modeNone
	case chunked:
		b.mode = modeChunked
	case cl == 0:
		resp.ContentLength = 0
		b.mode = modeNone
	case cl > 0:
		resp.ContentLength = cl
		b.mode = modeLength
		b.n = cl
	default:
		resp.Close = true
		b.mode = modeClose
	}
	b.reuse = reuse && !resp.Close
	if b.mode == modeNone {
		resp.Body = http.NoBody
	} else {
		resp.Body = b
	}
	return r, nil
}

// parseLength parses a Content-Length value: digits only.
func parseLength(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return -1, malformed("invalid Content-Length")
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1, malformed("invalid Content-Length")
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// declaredTrailer returns the trailer fields the Trailer field announces,
// with nil values, as net/http does, and removes the Trailer field.
func declaredTrailer(hdr http.Header) (http.Header, error) {
	vv, ok := hdr["Trailer"]
	if !ok {
		return nil, nil
	}
	delete(hdr, "Trailer")
	var t http.Header
	for _, v := range vv {
		for v != "" {
			var k string
			k, v, _ = strings.Cut(v, ",")
			if k = trimOWS(k); k == "" {
				continue
			}
			k = textproto.CanonicalMIMEHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, malformed("invalid trailer field name")
			}
			if t == nil {
				t = make(http.Header)
			}
			t[k] = nil
		}
	}
	return t, nil
}

// body is a reply body. When it reads to its end, its connection goes back
// to the pool (if the exchange allows) before Read returns io.EOF; Close
// before then closes the connection.
type body struct {
	br   *bufio.Reader
	p    *parser // for trailers
	resp *http.Response
	mode int
	n    int64 // left in the body (modeLength) or in the chunk (modeChunked)
	crlf bool  // a chunk's data was read: its CRLF comes next
	err  error // sticky

	c     *conn // nil when the body reads from no connection (tests)
	ctx   context.Context
	stop  func() bool // of the context.AfterFunc; nil: none
	reuse bool
	state atomic.Uint32 // 0 open; 1 ended or closed
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.state.Load() != 0 {
		return 0, errClosedBody
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch b.mode {
	case modeLength:
		n, err = b.readLength(p)
	case modeChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.br.Read(p)
	}
	if err != nil {
		if err == io.EOF {
			b.end(true)
		} else {
			if b.state.Load() != 0 {
				err = errClosedBody
			} else if b.ctx != nil && b.ctx.Err() != nil {
				err = b.ctx.Err()
			}
			b.end(false)
		}
		b.err = err
	}
	return n, err
}

// Close ends the body. Before its end, that closes the connection: what is
// left of the reply is not drained.
func (b *body) Close() error {
	if b.state.CompareAndSwap(0, 1) {
		if b.stop != nil {
			b.stop()
		}
		if b.c != nil {
			b.c.nc.Close()
		}
	}
	return nil
}

// end settles the connection once the body has ended, cleanly (ok) or not.
func (b *body) end(ok bool) {
	if !b.state.CompareAndSwap(0, 1) {
		return
	}
	settle(b.c, b.stop, ok && b.reuse)
}

// settle pools c when reuse holds and the request's context has not
// touched it, else closes it. Either way its read buffer goes back to the
// pool: settle runs once per exchange, on the goroutine that reads the
// reply, either before there is a body or from the body's last Read, after
// which every Read returns the body's sticky error without touching the
// buffer. (A body closed before its end closes c and leaves the buffer to
// the garbage collector: a Read may still be using it.)
func settle(c *conn, stop func() bool, reuse bool) {
	if c == nil {
		return
	}
	if stop != nil && !stop() {
		reuse = false // the context ended: its deadline is on the connection
	}
	// Bytes after the reply make the connection unusable.
	reuse = reuse && c.br.Buffered() == 0
	c.releaseReader()
	if reuse {
		c.t.putIdle(c)
		return
	}
	c.nc.Close()
}

func (b *body) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// lastChunk is the end of a chunk's data, the last chunk and no trailer.
var lastChunk = []byte("\r\n0\r\n\r\n")

func (b *body) readChunked(p []byte) (int, error) {
	for b.n == 0 {
		if b.crlf {
			if err := b.readCRLF(); err != nil {
				return 0, err
			}
			b.crlf = false
		}
		size, err := b.chunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		b.n = size
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if b.n == 0 {
		b.crlf = true
		// When the reply's end is already here, say so with the data, so
		// that the connection is free without another Read.
		if err == nil && b.br.Buffered() >= len(lastChunk) {
			if next, _ := b.br.Peek(len(lastChunk)); bytes.Equal(next, lastChunk) {
				b.br.Discard(len(lastChunk))
				return n, io.EOF
			}
		}
	}
	return n, err
}

func (b *body) readCRLF() error {
	c1, err := b.br.ReadByte()
	if err == nil {
		var c2 byte
		c2, err = b.br.ReadByte()
		if err == nil && (c1 != '\r' || c2 != '\n') {
			return malformed("invalid chunked encoding")
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// chunkSize reads a chunk-size line: hex digits, then optional extensions,
// which are ignored.
func (b *body) chunkSize() (int64, error) {
	line, err := b.br.ReadSlice('\n')
	switch err {
	case nil:
	case bufio.ErrBufferFull:
		return 0, malformed("chunk size line too long")
	case io.EOF:
		return 0, io.ErrUnexpectedEOF
	default:
		return 0, err
	}
	// Unlike header lines, net/http takes no bare LF here.
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, malformed("chunk size line ends with bare LF")
	}
	line = line[:len(line)-2]
	if !validValueBytes(line) {
		return 0, malformed("invalid chunk size line")
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if len(line) == 0 || len(line) > 15 {
		return 0, malformed("invalid chunk size")
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, malformed("invalid chunk size")
		}
		n = n<<4 | int64(c)
	}
	return n, nil
}

// readTrailer reads the trailer section after the last chunk into
// resp.Trailer, merged as net/http does.
func (b *body) readTrailer() error {
	p := b.p
	p.reset()
	p.crlf = true
	err := p.readFields()
	p.crlf = false
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if len(p.spans) == 0 {
		return nil
	}
	t := p.fields(string(p.buf))
	if b.resp.Trailer == nil {
		b.resp.Trailer = t
		return nil
	}
	for k, vv := range t {
		b.resp.Trailer[k] = vv
	}
	return nil
}

// upgraded is the connection of a switched protocol, the Body of a 101
// reply: it reads what the connection's reader holds first.
type upgraded struct{ c *conn }

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error                { return u.c.nc.Close() }
