package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// DefaultMaxResponseBytes is how much of a reply Response.Bytes buffers when
// MaxBytes is not set.
const DefaultMaxResponseBytes = 32 << 20

// A Response is the reply travelling back through a pipeline.
//
// Its body is a stream: an upstream's reply is copied to the client as it
// arrives, unless a stage asks for the bytes with Bytes. Status, headers and
// body pass through unchanged unless a stage changes them.
type Response struct {
	// Status is the HTTP status code; 0 means 200.
	Status int
	// Header holds the reply's header fields. Hop-by-hop fields are removed
	// by the upstream that produced the reply.
	Header http.Header
	// Body is the reply body; nil means empty. Whoever consumes it closes it.
	// A 101 reply's Body is the upgraded connection and must also implement
	// io.Writer.
	Body io.ReadCloser
	// ContentLength is the length of Body, or -1 when unknown (the body is
	// then streamed and flushed as it arrives). A Content-Length field in
	// Header is ignored: this field decides. 0 with a non-nil Body that
	// Bytes or SetBytes did not make counts as unknown.
	ContentLength int64
	// Trailer holds trailer fields, which may be filled in only once Body
	// has been read to its end (as with http.Response.Trailer).
	Trailer http.Header
	// MaxBytes bounds what Bytes buffers; 0 means DefaultMaxResponseBytes.
	MaxBytes int64
}

// NewResponse returns a reply with the given status, header and body. A nil
// header is replaced by an empty one.
func NewResponse(status int, header http.Header, body []byte) *Response {
	if header == nil {
		header = make(http.Header)
	}
	r := &Response{Status: status, Header: header}
	r.SetBytes(body)
	return r
}

// Bytes reads the whole body, up to MaxBytes, and returns it; the body
// remains available to the client and to later stages. A reply over the
// limit fails with a 502 *Error.
func (r *Response) Bytes() ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if bb, ok := r.Body.(*bytesBody); ok {
		return bb.data, nil
	}
	limit := r.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	if r.ContentLength > limit {
		r.Body.Close()
		return nil, Errorf(http.StatusBadGateway, "the upstream reply is larger than the %d bytes the gateway buffers", limit)
	}
	size := r.ContentLength
	if size == 0 {
		size = -1 // 0 may mean unknown
	}
	b, over, err := readAll(r.Body, size, limit)
	r.Body.Close()
	if err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Detail: "the upstream reply could not be read", Err: err}
	}
	if over {
		return nil, Errorf(http.StatusBadGateway, "the upstream reply is larger than the %d bytes the gateway buffers", limit)
	}
	r.SetBytes(b)
	return b, nil
}

// SetBytes replaces the body and its length.
func (r *Response) SetBytes(b []byte) {
	r.ContentLength = int64(len(b))
	if len(b) == 0 {
		r.Body = nil
		return
	}
	bb := &bytesBody{data: b}
	bb.Reset(b)
	r.Body = bb
}

// Close releases the body without reading it.
func (r *Response) Close() error {
	if r == nil || r.Body == nil {
		return nil
	}
	return r.Body.Close()
}

func (r *Response) status() int {
	if r.Status == 0 {
		return http.StatusOK
	}
	return r.Status
}

// knownLength returns the body length to announce in Content-Length, or -1
// to stream it chunked. A zero ContentLength with a body that is neither
// empty nor one of the gateway's own buffers counts as unknown, as for
// http.Request: the zero value of Response must not cut a body short.
func (r *Response) knownLength() int64 {
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		if r.ContentLength > 0 { // a reply to HEAD announces the length of what it omits
			return r.ContentLength
		}
		return 0
	case r.ContentLength > 0:
		return r.ContentLength
	case r.ContentLength == 0:
		if bb, ok := r.Body.(*bytesBody); ok {
			return int64(bb.Len())
		}
	}
	return -1
}

// bytesBody is a body the gateway holds in memory: one allocation where
// io.NopCloser(bytes.NewReader(b)) would take two.
type bytesBody struct {
	bytes.Reader
	data []byte
}

func (*bytesBody) Close() error { return nil }

// bodyAllowed reports whether a reply with status may carry a body
// (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func contentLengthValue(n int64) string { return strconv.FormatInt(n, 10) }
