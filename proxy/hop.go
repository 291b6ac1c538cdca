package proxy

import (
	"github.com/gatekit/gatekit/gateway"
	"net/http"
	"net/netip"
	"strings"
)

// hopByHop are the fields that describe one connection rather than the
// message, so a proxy must not forward them (RFC 9110 §7.6.1), plus the
// legacy Proxy-Connection and Keep-Alive, and HTTP2-Settings, which only
// means something next to an h2c Upgrade (RFC 7540 §3.2.1).
var hopByHop = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
	"Http2-Settings",
}

// removeHopByHop deletes the hop-by-hop fields from h, and every field the
// Connection field names. It reports whether h carried "TE: trailers", which
// a request may pass on: it says the client accepts trailers, and the
// gateway relays them.
func removeHopByHop(h http.Header) (teTrailers bool) {
	// Read TE first: a client that sends it also names it in Connection
	// (RFC 9110 §10.1.4).
	teTrailers = hasTokenIn(h, "Te", "trailers")
	for _, v := range h["Connection"] {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
	return teTrailers
}

// hasToken reports whether the comma-separated list v holds token, ignoring
// case and parameters ("trailers;q=1").
func hasToken(v, token string) bool {
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, ",")
		if i := strings.IndexByte(item, ';'); i >= 0 {
			item = item[:i]
		}
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// hasTokenIn reports whether any value of field in h holds token.
func hasTokenIn(h http.Header, field, token string) bool {
	for _, v := range h[field] {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// isWebSocketUpgrade reports whether h asks to switch the connection to
// WebSocket (RFC 6455 §4.1): Connection names upgrade and Upgrade is
// "websocket" alone.
func isWebSocketUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") &&
		hasTokenIn(h, "Connection", "upgrade")
}

// setForwarded writes X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto
// and Forwarded (RFC 7239) into h, the header of the outbound request for
// in. A client could write any of them (or X-Real-Ip), so they are kept only
// when the peer is a trusted proxy (trusted); the peer's own hop is then
// appended.
func setForwarded(h http.Header, vals *values, in *http.Request, trusted bool) {
	if !trusted {
		delete(h, "X-Forwarded-For")
		delete(h, "X-Forwarded-Host")
		delete(h, "X-Forwarded-Proto")
		delete(h, "Forwarded")
		// Not set by the gateway, but some backends believe it.
		delete(h, "X-Real-Ip")
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	peer, known := peerAddr(in.RemoteAddr)
	elem, ip := forwardedElement(peer, known, in.Host, proto)
	if known {
		h["X-Forwarded-For"] = vals.one(appendList(h["X-Forwarded-For"], ip))
	}
	if _, ok := h["X-Forwarded-Host"]; !ok && in.Host != "" {
		h["X-Forwarded-Host"] = vals.one(in.Host)
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		h["X-Forwarded-Proto"] = vals.one(proto)
	}
	h["Forwarded"] = vals.one(appendList(h["Forwarded"], elem))
}

// values hands out one-value field slices cut from one allocation, for the
// few fields the proxy sets on every request.
type values []string

// one returns []string{v}; its capacity is 1, so an append elsewhere copies
// rather than overwrites the next field.
func (vs *values) one(v string) []string {
	*vs = append(*vs, v)
	n := len(*vs)
	return (*vs)[n-1 : n : n]
}

// appendList returns the values of a list field joined by ", ", with item
// appended.
func appendList(prior []string, item string) string {
	if len(prior) == 0 {
		return item
	}
	return strings.Join(prior, ", ") + ", " + item
}

// peerAddr parses the address of the connection's peer, "ip:port".
func peerAddr(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// forwardedElement formats one Forwarded element (RFC 7239 §4) and returns
// it with the peer's address as text, a substring of it. A peer that is not
// known is written "unknown" (RFC 7239 §6.2).
func forwardedElement(peer netip.Addr, known bool, host, proto string) (elem, ip string) {
	var b strings.Builder
	b.Grow(len(host) + 64)
	b.WriteString("for=")
	start, end := 0, 0
	switch {
	case !known:
		b.WriteString("unknown")
	case peer.Is6():
		// An IPv6 node is bracketed and, since ':' is not a token
		// character, quoted: for="[2001:db8::1]" (RFC 7239 §6).
		b.WriteString(`"[`)
		start = b.Len()
		var buf [64]byte
		b.Write(peer.AppendTo(buf[:0]))
		end = b.Len()
		b.WriteString(`]"`)
	default:
		start = b.Len()
		var buf [16]byte
		b.Write(peer.AppendTo(buf[:0]))
		end = b.Len()
	}
	if host != "" {
		b.WriteString(";host=")
		writeValue(&b, host)
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	elem = b.String()
	return elem, elem[start:end]
}

// writeValue writes s as a token when it is one, else as a quoted-string
// (RFC 9110 §5.6.4).
func writeValue(b *strings.Builder, s string) {
	if gateway.IsToken(s) {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}
