package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// normalizeURL rewrites u.Path into the form the router matches and the
// upstream receives: duplicate slashes collapsed, "." and ".." segments
// resolved (RFC 3986 §5.2.4; ".." never climbs above the root), and
// percent-encoding made canonical. Unless allowAmbiguous is set it refuses
// encodings that different servers decode differently, the root of many
// path-confusion bypasses: %2F, %5C or '\', %00 and other control
// characters, '#', and decoded paths that are not UTF-8 (overlong
// encodings of '.' and '/'). Dot segments with a ';' parameter ("..;")
// are refused even then.
func normalizeURL(u *url.URL, requestURI string, allowAmbiguous bool) *Error {
	if !allowAmbiguous {
		if bad := ambiguous(rawPath(requestURI, u)); bad != "" {
			return &Error{Status: http.StatusBadRequest, Detail: "the request path contains " + bad + ", which the gateway does not accept"}
		}
	}
	// "..;" is refused whatever the options: a backend that drops the
	// parameter (Tomcat, Spring) would climb out of the routed prefix.
	if dotParam(u.Path) {
		return &Error{Status: http.StatusBadRequest, Detail: "the request path contains a dot segment with a ';' parameter, which the gateway does not accept"}
	}
	// A decoded path that is not UTF-8 (an overlong "%c0%ae" for '.') means
	// different things to different decoders.
	if !allowAmbiguous && !utf8.ValidString(u.Path) {
		return &Error{Status: http.StatusBadRequest, Detail: "the request path is not valid UTF-8 once decoded, which the gateway does not accept"}
	}
	p := u.Path
	if p == "" || p[0] != '/' {
		if p == "" && (requestURI == "" || requestURI[0] != '*') {
			p = "/"
		} else {
			return &Error{Status: http.StatusBadRequest, Detail: "the request path must begin with '/'"}
		}
	}
	if c := cleanPath(p); c != u.Path {
		u.Path = c
		u.RawPath = ""
	} else if u.RawPath != "" && !allowAmbiguous {
		// Only canonical encodings go upstream: the upstream then decodes
		// exactly the path the routes were matched on.
		u.RawPath = ""
	}
	return nil
}

// rawPath returns the path of the request target as the client sent it.
func rawPath(requestURI string, u *url.URL) string {
	raw := requestURI
	switch {
	case raw == "":
		// Built in process: the escaped form the URL keeps.
		return u.EscapedPath()
	case raw[0] == '/':
	default:
		// Absolute-form ("http://host/path", "a:/path"): what follows the
		// scheme and authority, as sent; the escaped form would hide a '#'
		// as %23.
		if i := strings.IndexByte(raw, ':'); i >= 0 {
			raw = raw[i+1:]
		}
		if rest, ok := strings.CutPrefix(raw, "//"); ok {
			raw = ""
			if i := strings.IndexAny(rest, "/?"); i >= 0 && rest[i] == '/' {
				raw = rest[i:]
			}
		}
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// ambiguous names the first ambiguous sequence in the raw path, or "".
func ambiguous(raw string) string {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) {
				return "a truncated percent-encoding"
			}
			b, ok := unhex2(raw[i+1], raw[i+2])
			if !ok {
				return "an invalid percent-encoding"
			}
			switch {
			case b == '/':
				return "an encoded slash (%2F)"
			case b == '\\':
				return "an encoded backslash (%5C)"
			case b < 0x20 || b == 0x7f:
				return "an encoded control character"
			}
			i += 2
		case c == '\\':
			return "a backslash"
		case c == '#':
			return "a '#'"
		case c < 0x20 || c == 0x7f:
			return "a control character"
		}
	}
	return ""
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// cleanPath returns p with empty, "." and ".." segments resolved. A trailing
// slash, or a trailing dot segment, leaves a trailing slash, as in RFC 3986.
// A p that does not begin with '/' is taken as if it did. A clean path is
// returned as is, without allocating.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if isClean(p) {
		return p
	}
	out := make([]byte, 0, len(p))
	i := 0
	for i < len(p) {
		// p[i] == '/'; find the segment after it.
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i+1 : j]
		last := j == len(p)
		switch seg {
		case "", ".":
			if last {
				out = append(out, '/')
			}
		case "..":
			if k := lastSlash(out); k >= 0 {
				out = out[:k]
			}
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func isClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		switch {
		case rest == "":
			// trailing slash is fine
		case rest[0] == '/':
			return false
		case rest[0] == '.':
			if len(rest) == 1 || rest[1] == '/' {
				return false
			}
			if rest[1] == '.' && (len(rest) == 2 || rest[2] == '/') {
				return false
			}
		}
	}
	return true
}

// dotParam reports whether a segment of the decoded path is "." or ".."
// followed by ';'. Servlet containers strip ";params" and then resolve the
// dots ("/public/..;/admin" reaches "/admin"), while the router sees an
// ordinary segment: the path-confusion bypass of "Breaking Parser Logic".
func dotParam(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		seg := p[i+1:]
		if strings.HasPrefix(seg, ".;") || strings.HasPrefix(seg, "..;") {
			return true
		}
	}
	return false
}
