package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"sync"
)

// Request smuggling works when two HTTP parsers on one path, a front proxy
// and the gateway, disagree on where a request ends. net/http resolves the
// classic ambiguities the way RFC 9112 allows (chunked framing wins over
// Content-Length; an HTTP/1.0 request's Transfer-Encoding is ignored), but
// it keeps the connection open afterwards and serves whatever follows as
// the next request, and by then the handler can no longer tell: net/http
// has deleted both fields. RFC 9112 §6.1 says a server that gets both MUST
// close the connection after responding.
//
// A framingScanner therefore reads along with net/http, on the connection
// itself. It follows the same framing rules to find where each request head
// starts and ends, and notes the first request that is ambiguously framed:
//
//   - Content-Length and Transfer-Encoding together;
//   - Transfer-Encoding in an HTTP/1.0 request;
//   - a header line folded onto the previous one (obs-fold, RFC 9112 §5.2);
//   - a malformed chunked body (bad size line, missing CRLF after a chunk,
//     folded trailers).
//
// The server's handler refuses that request and every later one on the
// connection with 400 and closes it, so nothing that follows a doubtful
// request is ever served. Where net/http itself rejects a request (a bad
// Content-Length, an unknown Transfer-Encoding) it closes the connection
// too, and the scanner stops following it.
//
// The scanner is stricter than net/http in one direction only: whatever it
// does not understand, it treats as the end of trust in the connection. It
// never accepts framing net/http rejects, so the two cannot drift apart on a
// connection that is still served.
type framingScanner struct {
	mu sync.Mutex

	state  scanState
	remain uint64 // bytes of a body or a chunk still to skip
	crlf   int    // bytes of the CRLF after a chunk seen so far
	line   []byte // a line split across reads, up to maxLine bytes
	max    int    // longest line worth following

	// The head being read.
	first  bool // the next line is a request line
	http10 bool
	clen   []byte // the first Content-Length value, trimmed
	hasCL  bool
	te     int    // Transfer-Encoding fields seen
	teVal  []byte // the first one, trimmed
	badWhy string // why this head is refused, once known

	lastPOST bool // the last request line was a POST's
	skip     int  // CR and LF bytes still to skip before a request line

	heads   int    // complete heads read
	badFrom int    // index of the first refused head, or -1
	reason  string // why
	served  int    // requests handed to the handler so far

	onHead func(requestLine []byte) // tests: each complete head's request line
}

type scanState uint8

const (
	scanHead      scanState = iota // request line and header fields
	scanBody                       // a Content-Length body
	scanChunkSize                  // a chunk-size line
	scanChunkData                  // chunk data, then CRLF
	scanTrailer                    // trailer fields after the last chunk
	scanStopped                    // not followed any further
)

// maxChunkLine is net/http's limit on a chunk-size line.
const maxChunkLine = 4096

func newFramingScanner(maxHeaderBytes int) *framingScanner {
	// net/http reads a head of up to MaxHeaderBytes+4096 bytes from the
	// connection, plus what its 4 KiB buffer already held: a line longer
	// than this margin is one net/http refuses too.
	return &framingScanner{first: true, badFrom: -1, max: maxHeaderBytes + 16<<10}
}

// next is called by the handler once per request on the connection, in
// order, and says why the request must be refused, or "".
func (s *framingScanner) next() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.served
	s.served++
	if s.badFrom >= 0 && k >= s.badFrom {
		return s.reason
	}
	return ""
}

// stop ends the scanning, for a connection that switched protocols.
func (s *framingScanner) stop() {
	s.mu.Lock()
	s.state = scanStopped
	s.line = nil
	s.mu.Unlock()
}

// refuse marks every request from the one whose head is being read (or,
// from within a body, the next one: heads already counts the body's own) as
// refused, and stops following the connection.
func (s *framingScanner) refuse(why string) {
	if s.badFrom < 0 {
		s.badFrom = s.heads
		s.reason = why
	}
	s.state = scanStopped
	s.line = nil
}

// feed follows the bytes net/http just read from the connection.
func (s *framingScanner) feed(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 && s.state != scanStopped {
		switch s.state {
		case scanBody:
			n := uint64(len(p))
			if n > s.remain {
				n = s.remain
			}
			s.remain -= n
			p = p[n:]
			if s.remain == 0 {
				s.startHead()
			}
		case scanChunkData:
			if s.remain > 0 {
				n := uint64(len(p))
				if n > s.remain {
					n = s.remain
				}
				s.remain -= n
				p = p[n:]
				continue
			}
			// The CRLF that ends the chunk's data, exactly.
			want := "\r\n"[s.crlf]
			if p[0] != want {
				s.refuse("malformed chunked encoding: chunk data not followed by CRLF")
				return
			}
			p = p[1:]
			if s.crlf++; s.crlf == 2 {
				s.crlf = 0
				s.state = scanChunkSize
			}
		default: // a line-based state
			if s.skip > 0 {
				// net/http skips up to 4 CR and LF bytes after a POST (old
				// clients sent a stray CRLF after the body).
				for len(p) > 0 && s.skip > 0 && (p[0] == '\r' || p[0] == '\n') {
					p, s.skip = p[1:], s.skip-1
				}
				if len(p) == 0 {
					return
				}
				s.skip = 0
			}
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				if len(s.line)+len(p) > s.max {
					s.refuse("a line longer than the header limit")
					return
				}
				s.line = append(s.line, p...)
				return
			}
			line := p[:i+1]
			if len(s.line) > 0 {
				if len(s.line)+len(line) > s.max {
					s.refuse("a line longer than the header limit")
					return
				}
				s.line = append(s.line, line...)
				line = s.line
			}
			p = p[i+1:]
			s.onLine(line)
			if s.line != nil {
				s.line = s.line[:0]
			}
		}
	}
}

// startHead prepares for the next request's head.
func (s *framingScanner) startHead() {
	s.state = scanHead
	s.first = true
	s.http10 = false
	s.clen = s.clen[:0]
	s.hasCL = false
	s.te = 0
	s.teVal = s.teVal[:0]
	s.badWhy = ""
	if s.lastPOST {
		s.skip = 4
	}
}

// onLine handles one complete line, its '\n' included.
func (s *framingScanner) onLine(line []byte) {
	switch s.state {
	case scanHead:
		s.headLine(line)
	case scanChunkSize:
		s.chunkSizeLine(line)
	case scanTrailer:
		s.trailerLine(line)
	}
}

// trimEOL removes the line's '\n' and one '\r' before it, as
// net/textproto does for header lines.
func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

func (s *framingScanner) headLine(raw []byte) {
	line := trimEOL(raw)
	if s.first {
		s.first = false
		// METHOD SP request-target SP HTTP-version: the version is the
		// last word.
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			s.refuse("a malformed request line")
			return
		}
		switch string(line[sp+1:]) {
		case "HTTP/1.1":
		case "HTTP/1.0":
			s.http10 = true
		default:
			// Other versions (HTTP/1.2, HTTP/2.0, garbage) are rare enough
			// to be refused rather than followed.
			s.refuse("unsupported HTTP version")
			return
		}
		s.lastPOST = bytes.HasPrefix(line, []byte("POST "))
		if s.onHead != nil {
			s.onHead(line[:sp])
		}
		return
	}
	if len(line) == 0 {
		s.endHead()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		s.badWhy = "a header field is folded over two lines (obs-fold)"
		return
	}
	if c := line[0] | 0x20; c != 'c' && c != 't' {
		return // neither Content-Length nor Transfer-Encoding
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		s.refuse("a malformed header line")
		return
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	switch {
	case asciiEqualFold(name, "content-length"):
		if s.hasCL && !bytes.Equal(s.clen, value) {
			s.refuse("differing Content-Length values")
			return
		}
		s.hasCL = true
		s.clen = append(s.clen[:0], value...)
	case asciiEqualFold(name, "transfer-encoding"):
		s.te++
		if s.te == 1 {
			s.teVal = append(s.teVal[:0], value...)
		}
	}
}

// endHead decides how the body of the head just read is framed.
func (s *framingScanner) endHead() {
	switch {
	case s.badWhy != "":
		s.refuse(s.badWhy)
		return
	case s.te > 0 && s.http10:
		s.refuse("Transfer-Encoding in an HTTP/1.0 request")
		return
	case s.te > 0 && s.hasCL:
		s.refuse("both Content-Length and Transfer-Encoding")
		return
	case s.te > 0 && (s.te > 1 || !asciiEqualFold(s.teVal, "chunked")):
		s.refuse("a Transfer-Encoding other than chunked")
		return
	}
	var n uint64
	if s.hasCL && s.te == 0 {
		var err error
		n, err = strconv.ParseUint(string(s.clen), 10, 63)
		if err != nil || len(s.clen) == 0 || s.clen[0] == '+' {
			s.refuse("a malformed Content-Length")
			return
		}
	}
	s.heads++
	switch {
	case s.te > 0:
		s.state = scanChunkSize
	case n > 0:
		s.state, s.remain = scanBody, n
	default:
		s.startHead()
	}
}

// chunkSizeLine follows net/http's reading of a chunk-size line: CRLF and
// no other CR, at most 4 KiB, trailing whitespace and extensions dropped,
// 1 to 16 hex digits.
func (s *framingScanner) chunkSizeLine(line []byte) {
	if len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line, '\r') != len(line)-2 {
		s.refuse("malformed chunked encoding: chunk-size line not ended by CRLF")
		return
	}
	line = line[:len(line)-2]
	if len(line) >= maxChunkLine {
		s.refuse("malformed chunked encoding: chunk-size line too long")
		return
	}
	for n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t'); n = len(line) {
		line = line[:n-1]
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 16 {
		s.refuse("malformed chunked encoding: bad chunk size")
		return
	}
	var n uint64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			s.refuse("malformed chunked encoding: bad chunk size")
			return
		}
		n = n<<4 | uint64(c)
	}
	if n == 0 {
		s.state = scanTrailer
		return
	}
	s.state, s.remain, s.crlf = scanChunkData, n, 0
}

func (s *framingScanner) trailerLine(raw []byte) {
	line := trimEOL(raw)
	switch {
	case len(line) == 0:
		s.startHead()
	case line[0] == ' ' || line[0] == '\t':
		s.refuse("a trailer field is folded over two lines (obs-fold)")
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiEqualFold reports whether b is lower, ignoring ASCII case; lower is
// all lower case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// checkedConn is a connection whose requests a framingScanner follows.
type checkedConn struct {
	net.Conn
	scan *framingScanner
}

// checkedTLSConn is a checked HTTP/1.x connection over TLS. It hides the
// *tls.Conn from net/http, which therefore takes Request.TLS from its
// ConnectionState method.
type checkedTLSConn struct {
	checkedConn
	tc *tls.Conn
}

func (c *checkedTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

func (c *checkedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.scan.feed(p[:n])
	}
	return n, err
}

// CloseWrite lets net/http half-close the connection after an error reply,
// so the client reads the reply before the connection is reset.
func (c *checkedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the underlying connection's fast copying paths.
func (c *checkedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// checkedListener hands out checked connections.
type checkedListener struct {
	net.Listener
	maxHeaderBytes int
}

func (l checkedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &checkedConn{Conn: c, scan: newFramingScanner(l.maxHeaderBytes)}, nil
}

// scanner returns the framing scanner of a checked connection, or nil.
func scanner(c net.Conn) *framingScanner {
	switch c := c.(type) {
	case *checkedConn:
		return c.scan
	case *checkedTLSConn:
		return c.scan
	}
	return nil
}
