package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The fuzz targets of this file reach unexported helpers that read what a
// client sends: header fields, X-Forwarded-For, Origin, the client address;
// and the problem+json writer, which must render whatever a stage put in
// an Error. Their seed corpora live in testdata/fuzz/<FuzzName>.

// fuzzHeader turns lines of "Name: value" into a header as net/http's
// server builds it (names canonicalised, values in order).
func fuzzHeader(lines string) http.Header {
	h := make(http.Header)
	for line := range strings.SplitSeq(lines, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			continue
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h
}

// FuzzSanitizeHeader: afterwards no field named in Connection survives but
// the connection options, which stay in Connection; no name holds '_'
// unless allowed; every other field is untouched.
func FuzzSanitizeHeader(f *testing.F) {
	for _, s := range []string{
		"Connection: X-User-Id\nX-User-Id: 1\nAuthorization: Bearer x",
		"Connection: close, authorization\nAuthorization: Bearer x",
		"Connection: keep-alive, Upgrade, TE, HTTP2-Settings, close\nUpgrade: websocket",
		"Connection: x_user_id\nX_user_id: 1\nX-User-Id: 2",
		"Connection: connection\nX-A: 1",
		"Connection: ,, ,\nX-A: 1",
		"Connection: a\nConnection: b, c\nA: 1\nB: 2\nC: 3\nD: 4",
		"X_Forwarded_For: 1.2.3.4\nx-forwarded_for: 5.6.7.8\nX-Forwarded-For: 9.9.9.9",
		"Connection: X-A \t, \tx-b\nX-A: 1\nX-B: 2",
		"Connection: Content-Length\nContent-Length: 3",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, lines string, allowUnderscore bool) {
		h := fuzzHeader(lines)
		orig := h.Clone()
		sanitizeHeader(h, allowUnderscore, false)

		named := map[string]bool{}
		var options []string
		for _, v := range orig["Connection"] {
			for tok := range strings.SplitSeq(v, ",") {
				tok = strings.TrimSpace(tok)
				switch {
				case tok == "":
				case slices.ContainsFunc([]string{"close", "keep-alive", "upgrade", "te", "http2-settings"},
					func(o string) bool { return strings.EqualFold(o, tok) }):
					options = append(options, tok)
				default:
					named[http.CanonicalHeaderKey(tok)] = true
				}
			}
		}
		for k, v := range orig {
			_, kept := h[k]
			switch {
			case k == "Connection":
			case named[k] || (!allowUnderscore && strings.Contains(k, "_")):
				if kept {
					t.Fatalf("%q: field %q survived", lines, k)
				}
			case !kept || !slices.Equal(h[k], v):
				t.Fatalf("%q: field %q changed from %q to %q", lines, k, v, h[k])
			}
		}
		for k := range h {
			if _, ok := orig[k]; !ok {
				t.Fatalf("%q: field %q appeared", lines, k)
			}
			if !allowUnderscore && strings.Contains(k, "_") {
				t.Fatalf("%q: field %q has an underscore", lines, k)
			}
		}
		conn, hasConn := h["Connection"]
		switch {
		case len(named) == 0:
			if !slices.Equal(conn, orig["Connection"]) {
				t.Fatalf("%q: Connection %q changed to %q though it names no field", lines, orig["Connection"], conn)
			}
		case len(options) == 0:
			if hasConn {
				t.Fatalf("%q: Connection %q kept", lines, conn)
			}
		case len(conn) != 1 || conn[0] != strings.Join(options, ", "):
			t.Fatalf("%q: Connection = %q, want the options %q", lines, conn, options)
		}
	})
}

// fuzzTrusted are the proxies FuzzClientIP trusts.
var fuzzTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("192.0.2.7/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fe80::/10"),
}

// FuzzClientIP feeds a peer address and X-Forwarded-For fields to the
// client-address logic and checks it against a plain reading of its
// contract: the peer unless it is a trusted proxy; then the forwarded
// addresses right to left (empty list elements skipped) up to the first
// that is not a trusted proxy, or the last that parses; so never an
// address nobody sent, and a trusted one only when no untrusted one was
// reachable.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ peer, xff string }{
		{"10.0.0.1:1234", "1.2.3.4"},
		{"10.0.0.1:1234", "6.6.6.6, 1.2.3.4, 10.0.0.2"},
		{"10.0.0.1:1234", "1.2.3.4\n10.0.0.3, 10.0.0.2"},
		{"10.0.0.1:1234", "10.0.0.3, 10.0.0.2"},
		{"10.0.0.1:1234", "garbage, 10.0.0.2"},
		{"10.0.0.1:1234", "1.2.3.4,,10.0.0.2"},
		{"10.0.0.1:1234", "[2001:db8::1]:80, ::ffff:10.1.1.1, 1.2.3.4:5"},
		{"10.0.0.1:1234", "\n\n1.2.3.4\n"},
		{"[::ffff:10.0.0.1]:1", "1.2.3.4"},
		{"[fe80::1%eth0]:1234", "1.2.3.4"},
		{"10.0.0.1:1234", "fe80::1%eth0, 10.0.0.2"},
		{"1.2.3.4:1", "10.0.0.2"},
		{"192.0.2.7", "192.0.2.8"},
		{"", "1.2.3.4"},
		{"not an address", "1.2.3.4"},
		{"10.0.0.1:1234", " 1.2.3.4\t,\u00a010.0.0.2"},
	} {
		f.Add(s.peer, s.xff, true)
	}
	f.Add("10.0.0.1:1234", "1.2.3.4", false)
	f.Fuzz(func(t *testing.T, peer, xff string, trust bool) {
		o := &Options{}
		if trust {
			o.TrustedProxies = fuzzTrusted
		}
		r := &http.Request{Method: "GET", RemoteAddr: peer, Header: http.Header{}}
		if xff != "" {
			r.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		req := new(Request)
		req.init(r)
		req.opts = o
		got := req.ClientIP()

		trusted := func(a netip.Addr) bool {
			a = a.WithZone("") // a zone names our interface, not another network
			for _, p := range o.TrustedProxies {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}
		var peerAddr netip.Addr
		if ap, err := netip.ParseAddrPort(peer); err == nil {
			peerAddr = ap.Addr().Unmap()
		} else if a, err := netip.ParseAddr(peer); err == nil {
			peerAddr = a.Unmap()
		}
		want := peerAddr
		var sent []netip.Addr // every address X-Forwarded-For holds
		if want.IsValid() && trusted(want) {
			var items []string
			for _, v := range r.Header["X-Forwarded-For"] {
				if v != "" {
					items = append(items, strings.Split(v, ",")...)
				}
			}
			walking := true
			for i := len(items) - 1; i >= 0; i-- {
				item := strings.TrimSpace(items[i])
				if item == "" {
					continue // RFC 9110 §5.6.1: empty list elements are ignored
				}
				a, ok := parseForwardedAddr(item)
				if ok {
					sent = append(sent, a)
				}
				if !walking {
					continue
				}
				if !ok {
					walking = false
					continue
				}
				want = a
				walking = trusted(a)
			}
		}
		if got != want {
			t.Fatalf("peer %q, X-Forwarded-For %q: ClientIP = %v, want %v", peer, xff, got, want)
		}
		if !got.IsValid() {
			return
		}
		if got.Is4In6() {
			t.Fatalf("peer %q, X-Forwarded-For %q: ClientIP %v is IPv4-mapped", peer, xff, got)
		}
		if got != peerAddr && !slices.Contains(sent, got) {
			t.Fatalf("peer %q, X-Forwarded-For %q: ClientIP %v was sent by nobody", peer, xff, got)
		}
		if got != peerAddr && !trusted(peerAddr) {
			t.Fatalf("peer %q, X-Forwarded-For %q: untrusted peer's X-Forwarded-For believed", peer, xff)
		}
		if req.FromTrustedProxy() != (trusted(peerAddr) && len(o.TrustedProxies) > 0) {
			t.Fatalf("peer %q: FromTrustedProxy = %v", peer, req.FromTrustedProxy())
		}
	})
}

// FuzzParseForwardedAddr: an address it accepts is valid, unmapped, and
// the one the input spells.
func FuzzParseForwardedAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4:80", "[::1]:80", "::ffff:1.2.3.4", "[::ffff:1.2.3.4]:1",
		"fe80::1%eth0", "[fe80::1%eth0]:1", "unknown", "_hidden", "1.2.3.4:", "01.2.3.4", "[1.2.3.4]:80", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseForwardedAddr(s)
		if !ok {
			if a.IsValid() {
				t.Fatalf("parseForwardedAddr(%q) refused but returned %v", s, a)
			}
			return
		}
		if !a.IsValid() || a.Is4In6() {
			t.Fatalf("parseForwardedAddr(%q) = %v", s, a)
		}
		spelled := s
		if ap, err := netip.ParseAddrPort(s); err == nil {
			spelled = ap.Addr().String()
		}
		if b, err := netip.ParseAddr(spelled); err != nil || b.Unmap() != a {
			t.Fatalf("parseForwardedAddr(%q) = %v, not what it spells", s, a)
		}
	})
}

// labelsRE is a plain restatement of what a "*" in an origin pattern
// stands for: one or more DNS labels of lower-case letters, digits and
// hyphens.
var labelsRE = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)*$`)

// FuzzCORSOrigin matches arbitrary Origin values, and origins built around
// an arbitrary host part, against exact origins and patterns.
func FuzzCORSOrigin(f *testing.F) {
	p, err := newCORS(CORSConfig{AllowOrigins: []string{
		"https://app.example.com", "HTTP://LocalHost:8080", "https://api.example.com:443",
		"https://*.example.org", "http://*.a.example.net:8443",
	}})
	if err != nil {
		f.Fatal(err)
	}
	exact := []string{"https://app.example.com", "http://localhost:8080", "https://api.example.com"}
	patterns := [][2]string{{"https://", ".example.org"}, {"http://", ".a.example.net:8443"}}
	for _, s := range []struct{ origin, labels string }{
		{"https://app.example.com", "a"},
		{"https://APP.example.com", "A"},
		{"https://api.example.com:443", "a.b"},
		{"https://example.org", ""},
		{"https://.example.org", "a..b"},
		{"https://evil.com#.example.org", "evil.com#"},
		{"https://evil.com/.example.org", "x/"},
		{"https://u@x.example.org", "u@x"},
		{"http://x.a.example.net:8443", "x-1"},
		{"http://x.a.example.net", "a."},
		{"null", ".a"},
		{"https://x.example.org.", "x\x00"},
		{"https://app.example.com.evil", "é"},
	} {
		f.Add(s.origin, s.labels)
	}
	f.Fuzz(func(t *testing.T, origin, labels string) {
		got := p.originAllowed(origin)
		if want := slices.Contains(exact, origin) || matchesAny(patterns, origin); got != want {
			t.Fatalf("originAllowed(%q) = %v, want %v", origin, got, want)
		}
		if got {
			// An allowed origin is a plain scheme://host[:port], in the
			// lower case browsers send.
			u, err := url.Parse(origin)
			if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.Opaque != "" || u.Path != "" ||
				u.RawQuery != "" || u.Fragment != "" || strings.ToLower(origin) != origin {
				t.Fatalf("originAllowed(%q) = true for what is not an origin", origin)
			}
		}
		for _, pat := range patterns {
			o := pat[0] + labels + pat[1]
			if got, want := p.originAllowed(o), labelsRE.MatchString(labels); got != want {
				t.Fatalf("originAllowed(%q) = %v, want %v", o, got, want)
			}
		}
	})
}

func matchesAny(patterns [][2]string, o string) bool {
	for _, pat := range patterns {
		if mid, ok := strings.CutPrefix(o, pat[0]); ok {
			if mid, ok = strings.CutSuffix(mid, pat[1]); ok && labelsRE.MatchString(mid) {
				return true
			}
		}
	}
	return false
}

// FuzzIPFilterContains checks the prefix set against a linear scan of its
// entries, for arbitrary addresses and one arbitrary extra entry.
func FuzzIPFilterContains(f *testing.F) {
	base := []string{"10.0.0.0/8", "192.0.2.7", "::ffff:198.51.100.0/120", "2001:db8::/32", "2001:db8:1::1", "0.0.0.0/32"}
	f.Add([]byte{10, 1, 2, 3}, "", "203.0.113.0/24")
	f.Add([]byte{198, 51, 100, 9}, "", "10.1.2.3/8")
	f.Add(netip.MustParseAddr("::ffff:10.0.0.1").AsSlice(), "", "::ffff:0:0/96")
	f.Add(netip.MustParseAddr("2001:db8:1::1").AsSlice(), "eth0", "fe80::1%eth0")
	f.Add(netip.MustParseAddr("::ffff:203.0.113.1").AsSlice(), "", "::/80")
	f.Add([]byte{0, 0, 0, 0}, "", "0.0.0.0/0")
	f.Add(netip.MustParseAddr("fe80::1").AsSlice(), "x", "::/0")
	f.Fuzz(func(t *testing.T, raw []byte, zone, extra string) {
		a, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		if a.Is6() {
			a = a.WithZone(zone)
		}
		entries := slices.Clone(base)
		if _, err := parseIPEntry(strings.TrimSpace(extra)); err == nil {
			entries = append(entries, extra)
		}
		s, err := newPrefixSet("Allow", entries)
		if err != nil {
			t.Fatalf("newPrefixSet(%q): %v", entries, err)
		}
		// The documented meaning: host bits ignored, IPv4-mapped entries
		// and addresses taken as IPv4, zones ignored.
		want := false
		ua := a.Unmap().WithZone("")
		for _, e := range entries {
			e = strings.TrimSpace(e)
			var p netip.Prefix
			if strings.Contains(e, "/") {
				p = netip.MustParsePrefix(e)
			} else {
				b := netip.MustParseAddr(e)
				p = netip.PrefixFrom(b, b.BitLen())
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			if p.Masked().Contains(ua) {
				want = true
			}
		}
		if got := s.contains(a); got != want {
			t.Fatalf("%v in %q: contains = %v, want %v", a, entries, got, want)
		}
	})
}

// FuzzProblemJSON renders an Error built from arbitrary strings: the reply
// is a problem document that decodes to those strings (as encoding/json
// would carry them), with the documented status and fields, and no header
// field the Error did not ask for.
func FuzzProblemJSON(f *testing.F) {
	f.Add(404, "", "", "no route", "invalid-params", "x", "Retry-After", "1")
	f.Add(429, "https://example.com/probs/rate", "Too Many", "slow down", "type", "override", "Content-Type", "text/html")
	f.Add(200, "about:blank", "", "", "status", "999", "X-A", "a\r\nSet-Cookie: s=1")
	f.Add(99, "\xff\xfe", "\u2028\u2029", "<script>&</script>", "instance", "/x", "Cache-Control", "public")
	f.Add(599, "t\x00", "\"quoted\"", "line\nbreak", "detail", "hidden", "X-Content-Type-Options", "")
	f.Add(0, "", "", "", "", "", "", "")
	f.Add(-1, "ü", "\xed\xa0\x80", "a\u0000b", "title", "t", "content-length", "0")
	f.Fuzz(func(t *testing.T, status int, typ, title, detail, extKey, extVal, hk, hv string) {
		e := &Error{Status: status, Type: typ, Title: title, Detail: detail,
			Extensions: map[string]any{extKey: extVal}}
		if IsToken(hk) { // Error.Header takes names from code, not from clients
			e.WithHeader(hk, hv)
		}
		rec := httptest.NewRecorder()
		e.Write(rec)

		wantStatus := status
		if status < 400 || status > 599 {
			wantStatus = 500
		}
		if rec.Code != wantStatus {
			t.Fatalf("status %d written as %d", status, rec.Code)
		}
		h := rec.Header()
		for k, want := range map[string]string{
			"Content-Type":           ProblemContentType,
			"Content-Length":         strconv.Itoa(rec.Body.Len()),
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
		} {
			if got := h[k]; len(got) != 1 || got[0] != want {
				t.Fatalf("%s = %q, want %q", k, got, want)
			}
		}
		body := rec.Body.Bytes()
		if !json.Valid(body) {
			t.Fatalf("body %q is not JSON", body)
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"status": float64(wantStatus)}
		if extKey != "type" && extKey != "title" && extKey != "status" && extKey != "detail" && extKey != "instance" {
			want[jsonString(extKey)] = jsonString(extVal)
		}
		want["type"] = "about:blank"
		if typ != "" {
			want["type"] = jsonString(typ)
		}
		want["title"] = http.StatusText(wantStatus)
		if want["title"] == "" {
			want["title"] = "Error"
		}
		if title != "" {
			want["title"] = jsonString(title)
		}
		if detail != "" {
			want["detail"] = jsonString(detail)
		}
		if len(doc) != len(want) {
			t.Fatalf("document %s, want %v", body, want)
		}
		for k, v := range want {
			if doc[k] != v {
				t.Fatalf("document %s: %q = %#v, want %#v", body, k, doc[k], v)
			}
		}

		// On the wire (net/http writes fields as Header.Write does) no
		// value can start a field of its own.
		var wire strings.Builder
		if err := h.Write(&wire); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(wire.String(), "\r\n"), "\r\n")
		if len(lines) != len(h) {
			t.Fatalf("header %q: %d lines for %d fields", wire.String(), len(lines), len(h))
		}
		for _, line := range lines {
			k, _, ok := strings.Cut(line, ":")
			if _, known := h[k]; !ok || !known || strings.ContainsAny(line, "\r\n") {
				t.Fatalf("header %q: line %q injected", wire.String(), line)
			}
		}
	})
}

// jsonString is s as it comes back from an encoding/json round trip
// (invalid UTF-8 becomes U+FFFD).
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
