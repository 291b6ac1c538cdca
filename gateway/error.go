package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ProblemContentType is the media type of error replies (RFC 9457).
const ProblemContentType = "application/problem+json"

// An Error is an error with HTTP meaning: the pipeline writes it to the client
// as an RFC 9457 problem document with Status and the extra Header fields.
//
// Every other error a stage returns becomes a 500 with a generic detail; its
// text is logged, never sent. Detail and Extensions are sent as they are, so
// they must not hold secrets, tokens or request bodies.
type Error struct {
	// Status is the HTTP status code, 400 to 599; anything else means 500.
	Status int
	// Type is a URI naming the problem type; "" means "about:blank".
	Type string
	// Title is a short summary; "" means the status text of Status.
	Title string
	// Detail explains this occurrence to the client.
	Detail string
	// Header holds fields added to the reply, such as WWW-Authenticate,
	// Retry-After, Allow or RateLimit.
	Header http.Header
	// Extensions are extra members of the problem document, such as a list of
	// validation errors. Keys that clash with the standard members are ignored.
	Extensions map[string]any
	// Err is the underlying cause, for logs and errors.Is; it is never sent.
	Err error
}

// Errorf returns an *Error with the given status and a detail formatted from
// format and args.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Error returns a one-line description for logs.
func (e *Error) Error() string {
	s := strconv.Itoa(e.status()) + " " + e.title()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) status() int {
	if e.Status < 400 || e.Status > 599 {
		// A problem is a client or server error; anything else (a 1xx
		// would even be taken for an interim reply) is our bug.
		return http.StatusInternalServerError
	}
	return e.Status
}

func (e *Error) title() string {
	if e.Title != "" {
		return e.Title
	}
	if t := http.StatusText(e.status()); t != "" {
		return t
	}
	return "Error"
}

// WithHeader sets a header field on the reply and returns e, for chaining.
func (e *Error) WithHeader(key, value string) *Error {
	if e.Header == nil {
		e.Header = make(http.Header)
	}
	e.Header.Set(key, value)
	return e
}

// MarshalJSON encodes e as an RFC 9457 problem document.
func (e *Error) MarshalJSON() ([]byte, error) {
	doc := make(map[string]any, len(e.Extensions)+4)
	for k, v := range e.Extensions {
		doc[k] = v
	}
	typ := e.Type
	if typ == "" {
		typ = "about:blank"
	}
	doc["type"] = typ
	doc["title"] = e.title()
	doc["status"] = e.status()
	if e.Detail != "" {
		doc["detail"] = e.Detail
	} else {
		delete(doc, "detail")
	}
	delete(doc, "instance")
	return json.Marshal(doc)
}

// Write sends e to w as application/problem+json. It is what the pipeline
// uses; applications call it only from their own handlers outside a pipeline.
func (e *Error) Write(w http.ResponseWriter) {
	body, err := e.MarshalJSON()
	if err != nil { // an extension that does not encode: drop the extensions
		body, _ = (&Error{Status: e.Status, Type: e.Type, Title: e.Title, Detail: e.Detail}).MarshalJSON()
	}
	h := w.Header()
	for k, v := range e.Header {
		h[http.CanonicalHeaderKey(k)] = v // so that a "content-type" cannot add a second field
	}
	h.Set("Content-Type", ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.status())
	w.Write(body)
}

// ProblemFor returns the problem that answers err: err itself when it is (or
// wraps) an *Error, 413 for a body over its limit, 504 for an expired
// deadline, and a generic 500 for anything else. The second result reports
// whether err was an internal error whose text belongs in the log only.
func ProblemFor(err error) (problem *Error, internal bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e, false
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &Error{Status: http.StatusRequestEntityTooLarge, Detail: "request body is larger than this route accepts", Err: err}, false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Detail: "the request took longer than allowed", Err: err}, false
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "the gateway failed to handle the request", Err: err}, true
}
