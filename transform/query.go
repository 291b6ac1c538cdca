package transform

import (
	"github.com/gatekit/gatekit/gateway"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func quote(s string) string { return strconv.Quote(s) }

func canonicalHeaderKey(name string) string { return http.CanonicalHeaderKey(name) }

// validHeaderName reports whether name is a field name token (RFC 9110 §5.1).
func validHeaderName(name string) bool { return gateway.IsToken(name) }

// validHeaderValue reports whether v may be sent as a field value: no
// control characters but tab (RFC 9110 §5.5), so a value taken from a
// claim, a query or a body cannot split a header or smuggle another.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// queryValue returns the first value of the query parameter name in the
// raw query, decoded, without building a url.Values map.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if !queryKeyIs(k, name) {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			d, err := url.QueryUnescape(v)
			if err != nil {
				return "", false
			}
			return d, true
		}
		return v, true
	}
	return "", false
}

// queryKeyIs reports whether the raw (encoded) key k decodes to name.
func queryKeyIs(k, name string) bool {
	if !strings.ContainsAny(k, "%+") {
		return k == name
	}
	d, err := url.QueryUnescape(k)
	return err == nil && d == name
}

// A queryOp changes the query parameters of a request.
type queryOp struct {
	kind  queryKind
	name  string // encoded name, for output
	raw   string // decoded name, for matching
	to    string // RenameQuery: decoded new name
	toEnc string // RenameQuery: encoded new name
	value Value
}

type queryKind uint8

const (
	querySet queryKind = iota
	queryAdd
	queryDelete
	queryRename
)

// rewrite returns the raw query with the operation applied. Parameters it
// does not touch keep their place and their encoding.
func (q *queryOp) rewrite(raw string, val string, has bool) string {
	var b strings.Builder
	b.Grow(len(raw) + len(q.name) + len(val) + 2)
	placed := false
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(s)
	}
	addPair := func(encName, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(encName)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	rest := raw
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		k, v, hasEq := strings.Cut(pair, "=")
		switch q.kind {
		case querySet:
			if queryKeyIs(k, q.raw) {
				// The first occurrence keeps its place; the others go,
				// so the upstream sees one value, the gateway's.
				if !placed && has {
					addPair(q.name, val)
				}
				placed = true
				continue
			}
		case queryDelete:
			if queryKeyIs(k, q.raw) {
				continue
			}
		case queryRename:
			if queryKeyIs(k, q.to) {
				continue // the client's own values of the new name go
			}
			if queryKeyIs(k, q.raw) {
				if hasEq {
					add(q.toEnc + "=" + v)
				} else {
					add(q.toEnc)
				}
				continue
			}
		}
		add(pair)
	}
	switch q.kind {
	case querySet:
		if !placed && has {
			addPair(q.name, val)
		}
	case queryAdd:
		if has {
			addPair(q.name, val)
		}
	}
	return b.String()
}
