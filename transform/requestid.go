package transform

import (
	"crypto/rand"
	"errors"

	"github.com/gatekit/gatekit/gateway"
)

// DefaultRequestIDHeader is the header AssignRequestID sets when its
// configuration names none.
const DefaultRequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds a client-sent ID that is trusted.
const maxRequestIDLen = 128

// RequestIDConfig configures AssignRequestID.
type RequestIDConfig struct {
	// Header is the request header that carries the ID to the upstream;
	// "" means DefaultRequestIDHeader. Whatever the client sent in it is
	// removed first.
	Header string
	// TrustClient keeps the ID the client sent in Header, when it is 1 to
	// 128 visible ASCII characters, instead of making a new one. Set it
	// only when the clients are your own (another gateway, a trusted
	// proxy): a client-chosen ID can collide with another request's.
	TrustClient bool
	// Generate makes a new ID; nil means a random UUID (version 4) from
	// crypto/rand. Tests inject a deterministic one.
	Generate func() string
}

// requestIDKey is the gateway.Request value key under which the ID is kept,
// so that a response transform (or a later stage reading RequestID) sees
// the same ID the upstream was sent.
type requestIDKey struct{}

// An idSource makes request IDs.
type idSource struct {
	generate func() string
}

func (s *idSource) newID() string {
	if s != nil && s.generate != nil {
		return s.generate()
	}
	return newUUID()
}

// requestID returns the ID of req, making one if no operation has.
func (s *idSource) requestID(req *gateway.Request) (string, bool) {
	if id, ok := req.Value(requestIDKey{}).(string); ok {
		return id, true
	}
	id := s.newID()
	req.SetValue(requestIDKey{}, id)
	return id, true
}

// assignID is the AssignRequestID operation.
type assignID struct {
	header string
	trust  bool
	ids    idSource
}

func (a *assignID) run(req *gateway.Request) {
	h := req.HTTP.Header
	id := ""
	if a.trust {
		if vs := h[a.header]; len(vs) == 1 && validRequestID(vs[0]) {
			id = vs[0]
		}
	}
	if id == "" {
		id = a.ids.newID()
	}
	h[a.header] = []string{id}
	req.SetValue(requestIDKey{}, id)
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

var errNoRandom = errors.New("transform: crypto/rand failed")

// newUUID returns a random UUID, version 4 (RFC 9562 §5.4).
func newUUID() string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		// crypto/rand.Read does not fail on supported platforms (Go 1.24+
		// crashes the program instead); keep the contract anyway.
		panic(errNoRandom)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j] = hexDigits[c>>4]
		b[j+1] = hexDigits[c&0xf]
		j += 2
	}
	return string(b[:])
}
