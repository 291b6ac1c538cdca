package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"unsafe"

	"github.com/gatekit/gatekit/gateway"
)

// A KeyFunc partitions a limit: it appends to dst the key of the request
// (a client address, an API key, a principal) and returns the extended
// slice, like the append functions of strconv, or ok false when the
// request has none. The limiter reads the key only until it returns. Appending, rather than returning a string,
// lets a limiter look up a key it already knows without allocating.
//
// Keys of different KeyFuncs never need to be told apart: each Limiter or
// Quota keeps its own keys, and a Store sees them under the limiter's name.
type KeyFunc func(dst []byte, req *gateway.Request) (key []byte, ok bool)

// Global is the KeyFunc of one limit for every request that passes the
// limiter (when the limiter is on one route: a limit per route).
func Global() KeyFunc {
	return func(dst []byte, _ *gateway.Request) ([]byte, bool) { return dst, true }
}

// ByClientIP keys by the client's address, as the gateway resolved it: the
// peer's address, or the address trusted proxies forwarded (see
// gateway.Options.TrustedProxies). A client cannot choose its key by
// sending X-Forwarded-For.
func ByClientIP() KeyFunc {
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		ip := req.ClientIP()
		if !ip.IsValid() {
			return dst, false
		}
		return ip.AppendTo(dst), true
	}
}

// ByClientNetwork keys by the network of the client's address: the first
// v4Bits of an IPv4 address, the first v6Bits of an IPv6 one. Bits out of
// range (0 to 32, 0 to 128) panic, at start-up. An IPv6
// client usually holds a whole /64, so keying by its /64 keeps it from
// escaping its limit by changing addresses.
func ByClientNetwork(v4Bits, v6Bits int) KeyFunc {
	if v4Bits < 0 || v4Bits > 32 || v6Bits < 0 || v6Bits > 128 {
		panic(fmt.Sprintf("ratelimit.ByClientNetwork(%d, %d): bits out of range (0-32 for IPv4, 0-128 for IPv6)", v4Bits, v6Bits))
	}
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		ip := req.ClientIP().Unmap()
		if !ip.IsValid() {
			return dst, false
		}
		bits := v6Bits
		if ip.Is4() {
			bits = v4Bits
		}
		p, err := ip.Prefix(bits)
		if err != nil {
			return dst, false
		}
		dst = p.Addr().AppendTo(dst)
		dst = append(dst, '/')
		return strconv.AppendInt(dst, int64(bits), 10), true
	}
}

// APIKeyIssuer and APIKeyIDClaim are how ByAPIKey recognises an API key's
// principal: they are the Issuer and the claim holding the key's ID that
// auth.APIKeys sets.
const (
	APIKeyIssuer  = "apikey"
	APIKeyIDClaim = "key_id"
)

// ByAPIKey keys by the ID of the API key that authenticated the request
// (auth.APIKeys must run before the limiter): two keys of one owner have
// limits of their own. A request without an API key has no key.
func ByAPIKey() KeyFunc {
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		p := req.Principal
		if p == nil || p.Issuer != APIKeyIssuer {
			return dst, false
		}
		id, ok := p.Claims[APIKeyIDClaim].(string)
		if !ok || id == "" {
			return dst, false
		}
		return append(dst, id...), true
	}
}

// BySubject keys by the authenticated principal: its issuer and subject,
// so that the same subject name from two issuers is two callers.
func BySubject() KeyFunc {
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		p := req.Principal
		if p == nil || p.Subject == "" {
			return dst, false
		}
		return appendParts(dst, p.Issuer, p.Subject), true
	}
}

// ByClaim keys by the value of the principal's claim name: a string, or a
// number (a tenant ID, an organisation). Other values are no key.
func ByClaim(name string) KeyFunc {
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		v, ok := req.Principal.Claim(name)
		if !ok {
			return dst, false
		}
		switch v := v.(type) {
		case string:
			if v == "" {
				return dst, false
			}
			return append(dst, v...), true
		case float64:
			return strconv.AppendFloat(dst, v, 'g', -1, 64), true
		case int64:
			return strconv.AppendInt(dst, v, 10), true
		case int:
			return strconv.AppendInt(dst, int64(v), 10), true
		case interface{ String() string }: // json.Number
			return append(dst, v.String()...), true
		}
		return dst, false
	}
}

// ByHeader keys by the first value of the request header name. Use it
// only for a header the client cannot choose freely (one a trusted proxy
// or an earlier stage sets): a client that picks its key picks its limit.
func ByHeader(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		v := req.HTTP.Header[name]
		if len(v) == 0 || v[0] == "" {
			return dst, false
		}
		return append(dst, v[0]...), true
	}
}

// ByRoute keys by the matched route's name (its path pattern when it has
// none), so one limiter shared by many routes limits each of them apart.
func ByRoute() KeyFunc {
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		r := req.Route()
		if r == nil {
			return dst, false
		}
		switch {
		case r.Name != "":
			return append(dst, r.Name...), true
		case r.Path != "":
			return append(dst, r.Path...), true
		case r.PathPrefix != "":
			return append(dst, r.PathPrefix...), true
		}
		return dst, false
	}
}

// Combine keys by all of keys together (a route and a client, a tenant and
// an API key); the request has a key only if it has every part.
func Combine(keys ...KeyFunc) KeyFunc {
	keys = append([]KeyFunc(nil), keys...)
	return func(dst []byte, req *gateway.Request) ([]byte, bool) {
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, '|')
			}
			start := len(dst)
			var ok bool
			if dst, ok = k(dst, req); !ok {
				return dst, false
			}
			dst = escapeSeparators(dst, start)
		}
		return dst, true
	}
}

// appendParts appends a and b separated so that no two pairs give the
// same key.
func appendParts(dst []byte, a, b string) []byte {
	start := len(dst)
	dst = append(dst, a...)
	dst = escapeSeparators(dst, start)
	dst = append(dst, '|')
	start = len(dst)
	dst = append(dst, b...)
	return escapeSeparators(dst, start)
}

// escapeSeparators escapes '|' and '\' in dst[start:], so parts joined by
// '|' cannot be confused; keys rarely hold either, and then cost nothing.
func escapeSeparators(dst []byte, start int) []byte {
	n := 0
	for _, c := range dst[start:] {
		if c == '|' || c == '\\' {
			n++
		}
	}
	if n == 0 {
		return dst
	}
	part := append([]byte(nil), dst[start:]...)
	dst = dst[:start]
	for _, c := range part {
		if c == '|' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

// keyBufs holds the buffers keys are built in: a KeyFunc is called
// through a func value, so a buffer on the stack would escape anyway.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

func getKeyBuf() *[]byte { return keyBufs.Get().(*[]byte) }

// keepKeyBuf keeps key as the pooled buffer when it grew from it: a
// KeyFunc may also return memory of its own, which must never be pooled
// and written to.
func keepKeyBuf(b *[]byte, key []byte) {
	if cap(key) > 0 && cap(*b) > 0 && unsafe.SliceData(key) == unsafe.SliceData(*b) {
		*b = key[:0]
	}
}

func putKeyBuf(b *[]byte) {
	if cap(*b) <= 1024 {
		*b = (*b)[:0]
		keyBufs.Put(b)
	}
}
