package h1

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// plan is what checkRequest learnt of a request: how to write it.
type plan struct {
	method       string
	path         string // the request target's path (or opaque form)
	query        string // with its '?', or ""
	host         string
	ua           string // "": send none
	length       int64  // of the body; -1: unknown
	chunked      bool
	sendCL       bool // write Content-Length
	close        bool // ask for the connection to be closed, and do not reuse it
	addConnClose bool // write "Connection: close" (req.Close without such a field)
}

// defaultUserAgent is net/http's, sent when the header names none.
const defaultUserAgent = "Go-http-client/1.1"

// checkRequest refuses what cannot be written safely, before anything is
// sent: net/http's checks of the method, Host, target and header fields.
func checkRequest(req *http.Request) (plan, error) {
	var w plan
	u := req.URL
	if u == nil {
		return w, errors.New("h1: nil Request.URL")
	}
	if u.Scheme != "http" {
		return w, schemeError(u.Scheme)
	}
	if u.Host == "" {
		return w, errors.New("h1: no Host in request URL")
	}
	w.method = req.Method
	if w.method == "" {
		w.method = "GET"
	}
	if !validToken(w.method) {
		return w, fmt.Errorf("h1: invalid method %q", w.method)
	}
	w.host = req.Host
	if w.host == "" {
		w.host = u.Host
	}
	if !validHost(w.host) {
		return w, errors.New("h1: invalid Host header")
	}
	if u.Opaque != "" {
		w.path = u.RequestURI()
	} else {
		w.path = u.EscapedPath()
		if w.path == "" {
			w.path = "/"
		}
		if u.ForceQuery || u.RawQuery != "" {
			w.query = "?" + u.RawQuery
		}
	}
	// Response splitting through the target (CVE-2019-9741's shape).
	if hasCTL(w.path) || hasCTL(w.query) {
		return w, errors.New("h1: can't write control character in Request.URL")
	}
	for k, vv := range req.Header {
		if !validToken(k) {
			return w, fmt.Errorf("h1: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !validValue(v) {
				// The value is not quoted: it may be a secret.
				return w, fmt.Errorf("h1: invalid header field value for %q", k)
			}
		}
	}
	for k, vv := range req.Trailer {
		// Values a body fills in while it streams are checked again when
		// they are written.
		for _, v := range vv {
			if !validValue(v) {
				return w, fmt.Errorf("h1: invalid trailer field value for %q", k)
			}
		}
	}
	w.ua = defaultUserAgent
	if vv, ok := req.Header["User-Agent"]; ok {
		w.ua = ""
		if len(vv) > 0 {
			w.ua = vv[0]
		}
	}

	body := req.Body != nil && req.Body != http.NoBody
	if !body && req.ContentLength > 0 {
		return w, fmt.Errorf("h1: Request.ContentLength=%d with no Body", req.ContentLength)
	}
	switch {
	case !body:
		w.length = 0
	case req.ContentLength > 0:
		w.length = req.ContentLength
	default:
		w.length = -1
	}
	switch {
	case len(req.TransferEncoding) == 0:
	case len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked":
		if body {
			w.length = -1
		}
	case len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "identity":
	default:
		return w, fmt.Errorf("h1: unsupported transfer encoding %q", req.TransferEncoding)
	}
	w.chunked = w.length < 0
	w.sendCL = w.length > 0 || (w.length == 0 && (w.method == "POST" || w.method == "PUT" || w.method == "PATCH"))
	if w.chunked {
		for k := range req.Trailer {
			if !validToken(k) {
				return w, fmt.Errorf("h1: invalid trailer field name %q", k)
			}
			switch http.CanonicalHeaderKey(k) {
			case "Transfer-Encoding", "Trailer", "Content-Length", "Host":
				return w, fmt.Errorf("h1: invalid trailer field name %q", k)
			}
		}
	}
	conn := hasTokenIn(req.Header["Connection"], "close")
	w.close = req.Close || conn
	w.addConnClose = req.Close && !conn
	return w, nil
}

// writeHead writes the request line and header fields to x.bw, in
// net/http's order: Host, User-Agent, framing, then the header's fields
// sorted by name.
func (x *exchange) writeHead() {
	bw := x.bw
	w := &x.w
	req := x.req
	bw.WriteString(w.method)
	bw.WriteByte(' ')
	bw.WriteString(w.path)
	bw.WriteString(w.query)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(w.host)
	bw.WriteString("\r\n")
	if w.ua != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(trimOWS(w.ua))
		bw.WriteString("\r\n")
	}
	if w.addConnClose {
		bw.WriteString("Connection: close\r\n")
	}
	if w.sendCL {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.length, 10))
		bw.WriteString("\r\n")
	} else if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.chunked && len(req.Trailer) > 0 {
		var arr [8]string
		keys := sortedKeys(arr[:0], req.Trailer)
		bw.WriteString("Trailer: ")
		for i, k := range keys {
			if i > 0 {
				bw.WriteString(",")
			}
			bw.WriteString(http.CanonicalHeaderKey(k))
		}
		bw.WriteString("\r\n")
	}
	var arr [32]string
	for _, k := range sortedKeys(arr[:0], req.Header) {
		// In any spelling: a "transfer-encoding" set by a stage beside the
		// Content-Length written here would make the request ambiguous.
		switch textproto.CanonicalMIMEHeaderKey(k) {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		writeField(x, k, req.Header[k])
	}
	bw.WriteString("\r\n")
}

// writeField writes the lines of one header or trailer field.
func writeField(x *exchange, k string, vv []string) {
	bw := x.bw
	for _, v := range vv {
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(trimOWS(v))
		bw.WriteString("\r\n")
	}
}

// sortedKeys appends h's names to dst, sorted: a request is written the
// same way each time.
func sortedKeys(dst []string, h http.Header) []string {
	for k := range h {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// chunkReserve is the room kept before a chunk's data in the write buffer
// for its size line: up to 16 hex digits and CRLF.
const chunkReserve = 18

// writeBody streams the request body after the head: every read is
// flushed before the next one, so that the upstream gets what the client
// has sent so far. A failure to write is writeErr, one to read the body
// bodyErr.
func (x *exchange) writeBody() (writeErr, bodyErr error) {
	bw := x.bw
	w := &x.w
	remaining := w.length
	var sent int64
	for w.chunked || remaining > 0 {
		if bw.Available() < 512 {
			if err := x.flush(); err != nil {
				return err, nil
			}
		}
		buf := bw.AvailableBuffer()[:bw.Available()]
		var n int
		var err error
		x.bodyTouched = true
		if w.chunked {
			n, err = x.body.Read(buf[chunkReserve : len(buf)-2])
			if n > 0 {
				var hb [chunkReserve]byte
				h := strconv.AppendUint(hb[:0], uint64(n), 16)
				h = append(h, '\r', '\n')
				start := chunkReserve - len(h)
				copy(buf[start:], h)
				end := chunkReserve + n
				buf[end], buf[end+1] = '\r', '\n'
				bw.Write(buf[start : end+2]) // moves the chunk to the buffer's start: no copy elsewhere
			}
		} else {
			data := buf
			if int64(len(data)) > remaining {
				data = data[:remaining]
			}
			n, err = x.body.Read(data)
			bw.Write(data[:n])
			remaining -= int64(n)
		}
		sent += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n > 0 && (w.chunked || remaining > 0) {
			if err := x.flush(); err != nil {
				return err, nil
			}
		}
	}
	if !w.chunked && remaining > 0 {
		return nil, fmt.Errorf("h1: ContentLength=%d with Body length %d", w.length, sent)
	}
	if !w.chunked {
		// A body longer than it said: refused, as net/http does, rather
		// than cut short without a word.
		if n, _ := io.ReadFull(x.body, x.probe[:]); n > 0 {
			return nil, fmt.Errorf("h1: ContentLength=%d with a longer Body", w.length)
		}
	}
	if w.chunked {
		bw.WriteString("0\r\n")
		if t := x.req.Trailer; len(t) > 0 {
			var arr [8]string
			for _, k := range sortedKeys(arr[:0], t) {
				for _, v := range t[k] {
					if !validValue(v) {
						// The request's fault, not the body's reading.
						return fmt.Errorf("h1: invalid trailer field value for %q", k), nil
					}
				}
				writeField(x, http.CanonicalHeaderKey(k), t[k])
			}
		}
		bw.WriteString("\r\n")
	}
	return nil, nil
}

// flush sends what is buffered.
func (x *exchange) flush() error {
	if x.bw.Buffered() == 0 {
		return nil
	}
	return x.bw.Flush()
}

// hasTokenIn reports whether one of the comma-separated lists vv holds
// token, ignoring case.
func hasTokenIn(vv []string, token string) bool {
	for _, v := range vv {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(trimOWS(item), token) {
				return true
			}
		}
	}
	return false
}

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// tokenTable marks the bytes of a token (RFC 9110 §5.6.2).
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-32] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenTable[s[i]] {
			return false
		}
	}
	return true
}

func validTokenBytes(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// validValue reports whether s is a valid field value as httpguts has it:
// no control bytes but HTAB (so no CR or LF), obs-text allowed.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func validValueBytes(s []byte) bool {
	for _, c := range s {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hasCTL reports whether s holds an ASCII control byte or DEL.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// hostTable marks the bytes httpguts.ValidHostHeader accepts.
var hostTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-32] = true
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()

func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if !hostTable[s[i]] {
			return false
		}
	}
	return true
}
