package validate

import (
	"fmt"
	"github.com/gatekit/gatekit/gateway"
	"strings"
)

// A mediaRange is one accepted media type: "application/json",
// "application/*", "application/*+json" or "*/*", lower-cased.
type mediaRange struct {
	typ, sub string // "*" is a wildcard
	suffix   string // "+json" for "application/*+json"
}

func parseMediaRange(s string) (mediaRange, error) {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		return mediaRange{}, fmt.Errorf("media type %q: parameters are not matched, leave them out", s)
	}
	typ, sub, ok := splitMediaType(s)
	if !ok {
		return mediaRange{}, fmt.Errorf("media type %q is not of the form type/subtype", s)
	}
	typ, sub = strings.ToLower(typ), strings.ToLower(sub)
	m := mediaRange{typ: typ, sub: sub}
	switch {
	case typ == "*" && sub != "*":
		return mediaRange{}, fmt.Errorf("media type %q: a wildcard type needs a wildcard subtype", s)
	case strings.HasPrefix(sub, "*+") && len(sub) > 2:
		m.sub, m.suffix = "*", sub[1:]
	case strings.Contains(sub, "*") && sub != "*":
		return mediaRange{}, fmt.Errorf("media type %q: a subtype wildcard is \"*\" or \"*+suffix\"", s)
	}
	return m, nil
}

func (m mediaRange) String() string {
	if m.suffix != "" {
		return m.typ + "/*" + m.suffix
	}
	return m.typ + "/" + m.sub
}

// matches reports whether the media type typ/sub (any case) is in m.
func (m mediaRange) matches(typ, sub string) bool {
	if m.typ != "*" && !strings.EqualFold(m.typ, typ) {
		return false
	}
	if m.suffix != "" {
		return len(sub) > len(m.suffix) && strings.EqualFold(sub[len(sub)-len(m.suffix):], m.suffix)
	}
	return m.sub == "*" || strings.EqualFold(m.sub, sub)
}

// onlyJSON reports whether every type in m is a JSON type.
func (m mediaRange) onlyJSON() bool {
	return m.typ == "application" && (m.sub == "json" || m.suffix == "+json" ||
		m.suffix == "" && strings.HasSuffix(m.sub, "+json"))
}

// splitMediaType returns the type and subtype of a Content-Type value,
// ignoring its parameters (charset and the like), without allocating.
func splitMediaType(ct string) (typ, sub string, ok bool) {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	typ, sub, ok = strings.Cut(ct, "/")
	if !ok || !gateway.IsToken(typ) || !gateway.IsToken(sub) {
		return "", "", false
	}
	return typ, sub, true
}

// isJSONType reports whether typ/sub is application/json or a structured
// JSON syntax (application/problem+json, RFC 6839).
func isJSONType(typ, sub string) bool {
	if !strings.EqualFold(typ, "application") {
		return false
	}
	return strings.EqualFold(sub, "json") ||
		len(sub) > 5 && strings.EqualFold(sub[len(sub)-5:], "+json")
}
