package gateway

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// RequestIDHeader carries a request's ID to the upstream and back to the
// client (Options.RequestIDs).
const RequestIDHeader = "X-Request-Id"

// ID returns the request's ID when Options.RequestIDs is on, or "".
func (req *Request) ID() string { return req.id }

// assignID gives req its ID: the one a trusted proxy sent, or a new one;
// and sets it on the request that goes upstream and on the reply.
func (req *Request) assignID(w http.ResponseWriter) {
	h := req.HTTP.Header
	id := ""
	if req.FromTrustedProxy() {
		if v := h.Get(RequestIDHeader); validRequestID(v) {
			id = v
		} else if t, ok := traceID(h.Get("Traceparent")); ok {
			id = t
		}
	}
	if id == "" {
		id = newRequestID()
	}
	req.id = id
	h[RequestIDHeader] = []string{id}
	w.Header()[RequestIDHeader] = []string{id}
}

// validRequestID accepts 1 to 128 characters of letters, digits and
// "-_.:/+=@": enough for UUIDs, ULIDs and the IDs of common proxies, and
// nothing that could break a log line or a header.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// traceID returns the trace ID of a W3C traceparent field
// ("00-<32 hex>-<16 hex>-<2 hex>"), if it is one and not all zeros.
func traceID(tp string) (string, bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" {
		return "", false
	}
	id := tp[3:35]
	zero := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
		zero = zero && c == '0'
	}
	return id, !zero
}

// newRequestID returns 128 random bits in hex, the shape of a W3C trace
// ID. IDs must be unique, not secret: math/rand/v2's generator is seeded
// from the system and cheap.
func newRequestID() string {
	var b [16]byte
	var out [32]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	hex.Encode(out[:], b[:])
	return string(out[:])
}
