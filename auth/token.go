package auth

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// A tokenExtractor finds the bearer token of a request in the places it was
// configured with: a header (Authorization by default), a cookie, a query
// parameter. It is built once; extract allocates nothing on the header path.
type tokenExtractor struct {
	// header is the canonical name of the header that carries the token.
	header string
	// authorization means header is Authorization, where only the Bearer
	// scheme is ours: another scheme belongs to another authenticator.
	authorization bool
	cookie        string // "" means no cookie
	query         string // "" means no query parameter
	realm         string
}

func newTokenExtractor(header, cookie, query, realm string) tokenExtractor {
	if header == "" {
		header = "Authorization"
	}
	header = textproto.CanonicalMIMEHeaderKey(header)
	return tokenExtractor{
		header:        header,
		authorization: header == "Authorization",
		cookie:        cookie,
		query:         query,
		realm:         realm,
	}
}

// Problems with where the token was sent. RFC 6750 §3.1 answers them with
// 400 invalid_request: "repeats the same parameter, uses more than one
// method for including an access token, or is otherwise malformed".
const (
	descRepeatedHeader = "more than one header field carries a token"
	descRepeatedCookie = "more than one cookie carries a token"
	descRepeatedQuery  = "more than one query parameter carries a token"
	descSeveralPlaces  = "the token is sent in more than one place"
	descMissingToken   = "the Bearer credentials hold no token"
	descBadCredentials = "the token is not in the form RFC 6750 allows"
)

// extract returns the request's token, or gateway.ErrNotResponsible when it
// carries none of ours (no token, or Authorization with another scheme), or
// a 400 *gateway.Error when the token is sent in a way RFC 6750 forbids. An
// extracted token is a non-empty token68 (RFC 9110 §11.2): no spaces, no
// commas, no quotes.
func (x *tokenExtractor) extract(r *http.Request) (string, error) {
	var token string
	switch values := r.Header[x.header]; len(values) {
	case 0:
	case 1:
		t, err := x.fromHeader(values[0])
		if err != nil {
			return "", err
		}
		token = t
	default:
		return "", x.badRequest(descRepeatedHeader)
	}
	if x.cookie != "" {
		cookies := r.CookiesNamed(x.cookie)
		if len(cookies) > 1 {
			return "", x.badRequest(descRepeatedCookie)
		}
		if len(cookies) == 1 && cookies[0].Value != "" {
			if token != "" {
				return "", x.badRequest(descSeveralPlaces)
			}
			if token = cookies[0].Value; !isToken68(token) {
				return "", x.badRequest(descBadCredentials)
			}
		}
	}
	if x.query != "" && r.URL != nil && r.URL.RawQuery != "" {
		t, err := x.fromQuery(r.URL.RawQuery)
		if err != nil {
			return "", err
		}
		if t != "" {
			if token != "" {
				return "", x.badRequest(descSeveralPlaces)
			}
			token = t
		}
	}
	if token == "" {
		return "", gateway.ErrNotResponsible
	}
	return token, nil
}

// fromHeader reads one header field value: `Bearer <token68>` (the scheme
// in any case, RFC 9110 §11.1), or, in a header other than Authorization,
// the bare token too. It returns "" for a field that is not ours.
func (x *tokenExtractor) fromHeader(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	const scheme = "Bearer"
	if len(v) >= len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) &&
		(len(v) == len(scheme) || v[len(scheme)] == ' ') {
		t := strings.TrimLeft(v[len(scheme):], " ")
		if t == "" {
			return "", x.badRequest(descMissingToken)
		}
		if !isToken68(t) {
			return "", x.badRequest(descBadCredentials)
		}
		return t, nil
	}
	if x.authorization {
		return "", nil // Basic, DPoP, ...: someone else's credentials
	}
	if !isToken68(v) {
		return "", x.badRequest(descBadCredentials)
	}
	return v, nil
}

// fromQuery finds the configured parameter in a raw query without building
// the url.Values map, and without failing on unrelated malformed pairs.
func (x *tokenExtractor) fromQuery(q string) (string, error) {
	var token string
	found := false
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != x.query {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, err := url.QueryUnescape(k); err != nil || uk != x.query {
				continue
			}
		}
		if found {
			return "", x.badRequest(descRepeatedQuery)
		}
		found = true
		t, err := url.QueryUnescape(v)
		if err != nil || (t != "" && !isToken68(t)) {
			return "", x.badRequest(descBadCredentials)
		}
		token = t
	}
	return token, nil
}

func (x *tokenExtractor) badRequest(description string) error {
	return bearerError(http.StatusBadRequest, x.realm, CodeInvalidRequest, description)
}

// isToken68 reports whether s is a token68 (RFC 9110 §11.2):
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Char[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// token68Char holds the token68 characters other than '=': a table, as
// tokens are hundreds of bytes long and checked on every request. Read-only.
var token68Char = [256]bool{
	'-': true, '.': true, '_': true, '~': true, '+': true, '/': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}
