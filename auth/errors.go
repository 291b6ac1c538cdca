package auth

import (
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// Bearer error codes of RFC 6750 §3.1.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// bearerError returns the problem for a failed bearer-token check: status
// (400, 401 or 403), a WWW-Authenticate challenge with the RFC 6750 error
// code and description, and the same description as the problem detail.
// The description must never hold the token itself.
func bearerError(status int, realm, code, description string) *gateway.Error {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quoteEscape(value))
		b.WriteByte('"')
		sep = ", "
	}
	if realm != "" {
		param("realm", realm)
	}
	if code != "" {
		param("error", code)
	}
	if description != "" {
		param("error_description", description)
	}
	e := &gateway.Error{Status: status, Detail: description, Extensions: map[string]any{"error": code}}
	if code == "" {
		e.Extensions = nil
	}
	return e.WithHeader("WWW-Authenticate", b.String())
}

// bearerChallenge is the challenge sent when a request has no token at all
// (RFC 6750 §3.1: no error code then).
func bearerChallenge(realm string) string {
	if realm == "" {
		return "Bearer"
	}
	return `Bearer realm="` + quoteEscape(realm) + `"`
}

// quoteEscape makes s safe inside a quoted-string: RFC 6750 limits
// error_description to printable ASCII without '"' and '\'.
func quoteEscape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\'')
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
