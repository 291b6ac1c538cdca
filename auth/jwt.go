package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/golang-jwt/jwt/v5"
)

// MaxLeeway is the largest clock skew a JWTConfig may tolerate.
const MaxLeeway = 5 * time.Minute

// maxTokenBytes bounds the token a JWTAuthenticator decodes: far above any
// real access token, well below what a parser should chew on per request.
const maxTokenBytes = 64 << 10

// keysRetryAfter is the Retry-After, in seconds, of the 503 sent while the
// key source has no keys: the default refetch interval of a JWKS.
const keysRetryAfter = "30"

// jwtAlgorithms are the JWS algorithms a JWTAuthenticator can verify. "none"
// is not among them, in any spelling.
var jwtAlgorithms = [...]string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// registeredHeaders are the JWS header parameters of RFC 7515 §4.1, which a
// "crit" list must not name (§4.1.11).
var registeredHeaders = [...]string{
	"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
}

// A JWTConfig configures a JWTAuthenticator. Only Keys is required; every
// other zero field means the documented default.
type JWTConfig struct {
	// Keys finds the keys that verify token signatures, by the token's
	// "kid". Each key is pinned to the algorithms it verifies: a token's
	// "alg" is only ever checked against that list, never trusted. The
	// header parameters jku, x5u, jwk and x5c are never used to find a key.
	// Required.
	Keys KeySource

	// Issuers, when set, are the accepted values of the "iss" claim; a
	// token must name one of them.
	Issuers []string

	// Audiences, when set, are the accepted values of the "aud" claim; a
	// token's "aud" must contain at least one, and a token without "aud"
	// is refused.
	Audiences []string

	// Type, when set, is the required "typ" header, such as "at+jwt" for
	// OAuth access tokens (RFC 9068 §2.1). It is compared ignoring case and
	// an "application/" prefix (RFC 7515 §4.1.9). "" accepts any typ.
	Type string

	// Algorithms, when set, limits the algorithms accepted from any key;
	// a token must use an algorithm both listed here and pinned on the key
	// that verifies it. Nil means every supported algorithm: HS256, HS384,
	// HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512
	// and EdDSA.
	Algorithms []string

	// Leeway is the clock skew tolerated when checking exp, nbf and iat.
	// 0 (the default) tolerates none; it may be at most MaxLeeway.
	Leeway time.Duration

	// AllowMissingExp accepts tokens without an "exp" claim. By default
	// exp is required, so that no token is valid forever.
	AllowMissingExp bool

	// Critical are the extension header parameters the application
	// understands and processes itself. A token whose "crit" header lists
	// any other parameter is refused (RFC 7515 §4.1.11), as is a malformed
	// crit: empty, not an array of strings, naming a registered parameter
	// or a parameter absent from the header.
	Critical []string

	// Header is the header field that carries the token, either bare or as
	// "Bearer <token>"; "" means Authorization, where only the Bearer scheme
	// is read and a field with another scheme (Basic, ...) is left for
	// another authenticator.
	Header string

	// Cookie, when set, is the name of a cookie that may carry the token.
	Cookie string

	// QueryParam, when set, is the name of a query parameter that may
	// carry the token, such as "access_token". Off by default: tokens in
	// URLs end up in logs and Referer headers (RFC 6750 §5.3).
	QueryParam string

	// Realm is named in the WWW-Authenticate challenges.
	Realm string

	// Now returns the current time for the exp, nbf and iat checks; nil
	// means time.Now. Tests inject a fixed clock.
	Now func() time.Time

	// ScopeClaims are the claims read, in order, for the principal's
	// scopes; the first one present wins. A claim may hold a
	// space-delimited string (RFC 8693 "scope") or an array of strings
	// ("scp" of some identity providers). Nil means "scope", then "scp".
	ScopeClaims []string

	// Cache, when its Size is positive, remembers tokens that passed
	// verification, keyed by the whole token, so that a repeated token
	// skips the signature check and the decoding (see TokenCacheConfig).
	// Off by default. A token is served from the cache only while exp,
	// nbf and iat hold at the current time (with Leeway) and at most
	// Cache.TTL after it was verified; a token that failed verification
	// is never cached, and a token that differs in any byte (another
	// signature on the same claims) is verified afresh. The cache belongs
	// to this authenticator alone, and is flushed whenever the key set
	// changes (a JWKS fetch that brings different keys; one that brings the
	// same keys keeps the cache), so a rotated-out key stops
	// vouching at once. Keys must be StaticKeys, a *JWKS or DiscoverJWKS:
	// JWT fails on a key source whose changes the cache cannot see.
	Cache TokenCacheConfig
}

// A JWTAuthenticator authenticates requests by the JSON Web Token (RFC 7519)
// they carry as a bearer token (RFC 6750). It is safe for concurrent use.
//
// Failures are answered as RFC 6750 asks: a bad token with 401 and
// `WWW-Authenticate: Bearer error="invalid_token"`, a badly sent one (two
// Authorization fields, a token in two places) with 400 and
// error="invalid_request". The error_description and problem detail say
// what was wrong ("token expired", "bad signature", ...), never the token.
//
// It fails closed: while the key source has no keys (ErrKeysUnavailable, an
// identity provider unreachable since start-up) or fails to look a key up,
// every token is refused with 503 and "Retry-After: 30", never accepted
// unchecked; the cause stays in the error's chain for the log.
type JWTAuthenticator struct {
	keys            KeySource
	parser          *jwt.Parser
	algorithms      []string
	issuers         []string
	typ             string // without "application/"
	critical        []string
	allowMissingExp bool
	scopeClaims     []string
	from            tokenExtractor
	realm           string
	challenge       string
	cache           *tokenCache // nil when off
}

var (
	_ gateway.Authenticator = (*JWTAuthenticator)(nil)
	_ gateway.Challenger    = (*JWTAuthenticator)(nil)
)

// JWT checks cfg and returns the authenticator it describes. Everything a
// request needs (the parser, its options, the challenge) is built here.
func JWT(cfg JWTConfig) (*JWTAuthenticator, error) {
	if cfg.Keys == nil {
		return nil, errors.New("auth: JWTConfig.Keys: required")
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: JWTConfig.Leeway %v: must not be negative", cfg.Leeway)
	}
	if cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("auth: JWTConfig.Leeway %v: at most %v", cfg.Leeway, MaxLeeway)
	}
	algs := jwtAlgorithms[:]
	if cfg.Algorithms != nil {
		if len(cfg.Algorithms) == 0 {
			return nil, errors.New("auth: JWTConfig.Algorithms: names no algorithm; leave it nil for all")
		}
		for i, alg := range cfg.Algorithms {
			if !slices.Contains(jwtAlgorithms[:], alg) {
				return nil, fmt.Errorf("auth: JWTConfig.Algorithms[%d] %q: not a supported algorithm (%s)", i, alg, strings.Join(jwtAlgorithms[:], ", "))
			}
		}
		algs = slices.Clone(cfg.Algorithms)
	}
	for i, iss := range cfg.Issuers {
		if iss == "" {
			return nil, fmt.Errorf("auth: JWTConfig.Issuers[%d]: empty", i)
		}
	}
	for i, aud := range cfg.Audiences {
		if aud == "" {
			return nil, fmt.Errorf("auth: JWTConfig.Audiences[%d]: empty", i)
		}
	}
	typ := cfg.Type
	if cfg.Type != "" {
		typ = trimApplication(typ)
		if typ == "" || strings.ContainsAny(typ, " \t\"") {
			return nil, fmt.Errorf("auth: JWTConfig.Type %q: not a media type", cfg.Type)
		}
	}
	for i, name := range cfg.Critical {
		if name == "" || slices.Contains(registeredHeaders[:], name) {
			return nil, fmt.Errorf("auth: JWTConfig.Critical[%d] %q: not an extension header parameter", i, name)
		}
	}
	if cfg.Header != "" && !gateway.IsToken(cfg.Header) {
		return nil, fmt.Errorf("auth: JWTConfig.Header %q: not a header field name", cfg.Header)
	}
	if cfg.Cookie != "" && !gateway.IsToken(cfg.Cookie) {
		return nil, fmt.Errorf("auth: JWTConfig.Cookie %q: not a cookie name", cfg.Cookie)
	}
	scopeClaims := []string{"scope", "scp"}
	if len(cfg.ScopeClaims) > 0 {
		for i, c := range cfg.ScopeClaims {
			if c == "" {
				return nil, fmt.Errorf("auth: JWTConfig.ScopeClaims[%d]: empty", i)
			}
		}
		scopeClaims = slices.Clone(cfg.ScopeClaims)
	}

	cache, err := newTokenCache(cfg.Cache, cfg.Keys, cfg.Now, cfg.Leeway)
	if err != nil {
		return nil, err
	}

	opts := []jwt.ParserOption{
		jwt.WithIssuedAt(),
		// One encoding per token: no malleable trailing bits (RFC 4648 §3.5).
		jwt.WithStrictDecoding(),
	}
	if !cfg.AllowMissingExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Leeway > 0 {
		opts = append(opts, jwt.WithLeeway(cfg.Leeway))
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(slices.Clone(cfg.Audiences)...))
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	return &JWTAuthenticator{
		keys:            cfg.Keys,
		parser:          jwt.NewParser(opts...),
		algorithms:      algs,
		issuers:         slices.Clone(cfg.Issuers),
		typ:             typ,
		critical:        slices.Clone(cfg.Critical),
		allowMissingExp: cfg.AllowMissingExp,
		scopeClaims:     scopeClaims,
		from:            newTokenExtractor(cfg.Header, cfg.Cookie, cfg.QueryParam, cfg.Realm),
		realm:           cfg.Realm,
		challenge:       bearerChallenge(cfg.Realm),
		cache:           cache,
	}, nil
}

// Challenge returns the WWW-Authenticate challenge sent when a request has
// no token: `Bearer realm="..."`.
func (a *JWTAuthenticator) Challenge() string { return a.challenge }

// Authenticate verifies the request's bearer token and returns the principal
// it names. It returns gateway.ErrNotResponsible when the request carries no
// token (or Authorization with another scheme), so that another
// authenticator may try.
func (a *JWTAuthenticator) Authenticate(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
	token, err := a.from.extract(req.HTTP)
	if err != nil {
		return nil, err
	}
	return a.Verify(ctx, token)
}

// Verify checks token, a compact JWS, as Authenticate does, for callers
// that have the raw token. The principal's Subject is the "sub" claim,
// Issuer the "iss" claim, Scopes those of the ScopeClaims, and Claims all
// the claims. Errors are *gateway.Error values as described on
// JWTAuthenticator.
func (a *JWTAuthenticator) Verify(ctx context.Context, token string) (*gateway.Principal, error) {
	if len(token) > maxTokenBytes {
		return nil, a.invalid(descTooLarge, nil)
	}
	if a.cache != nil {
		return a.cache.verify(ctx, token, a.verify)
	}
	return a.verify(ctx, token)
}

// verify is Verify without the cache.
func (a *JWTAuthenticator) verify(ctx context.Context, token string) (*gateway.Principal, error) {
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return a.key(ctx, t)
	})
	if err != nil {
		return nil, a.refuse(err, claims)
	}
	// ClaimsJSON stays nil: the claims golang-jwt decoded are the ones
	// checked, and policies and forwarding read the same map. The raw
	// payload could disagree with it on a repeated claim name (encoding/json
	// keeps the last, gjson the first; RFC 7519 §4).
	return a.principal(claims)
}

// What was wrong with a token: the error_description of the 401, and the
// error the key lookup returns to say so.
type jwtProblem string

func (p jwtProblem) Error() string { return string(p) }

const (
	descMalformed     jwtProblem = "malformed token"
	descTooLarge      jwtProblem = "token too large"
	descUnsupported   jwtProblem = "unsupported algorithm"
	descAlgNotAllowed jwtProblem = "algorithm not allowed for this key"
	descUnknownKey    jwtProblem = "unknown key ID"
	descBadKeyID      jwtProblem = "malformed key ID"
	descBadSignature  jwtProblem = "bad signature"
	descExpired       jwtProblem = "token expired"
	descNotYetValid   jwtProblem = "token not valid yet"
	descIssuedFuture  jwtProblem = "issued in the future"
	descMissingExp    jwtProblem = "missing exp"
	descMissingAud    jwtProblem = "missing aud"
	descMissingIss    jwtProblem = "missing iss"
	descWrongIssuer   jwtProblem = "wrong issuer"
	descWrongAudience jwtProblem = "wrong audience"
	descCritical      jwtProblem = "unsupported critical header"
	descWrongType     jwtProblem = "wrong token type"
	descBadExp        jwtProblem = "invalid exp"
	descBadNbf        jwtProblem = "invalid nbf"
	descBadIat        jwtProblem = "invalid iat"
	descBadAud        jwtProblem = "invalid aud"
	descBadIss        jwtProblem = "invalid iss"
	descBadSub        jwtProblem = "invalid sub"
)

// A keySourceError is a failure of the key source other than an unknown key.
type keySourceError struct{ err error }

func (e *keySourceError) Error() string { return "auth: key source: " + e.err.Error() }
func (e *keySourceError) Unwrap() error { return e.err }

// key is the jwt.Keyfunc: it checks the header of a decoded, not yet
// verified token and returns the key (or keys) that may verify it. The
// token's alg only selects among keys pinned to it; jku, x5u, jwk and x5c
// are never read.
func (a *JWTAuthenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if !slices.Contains(a.algorithms, alg) {
		// Includes "none", the only spelling golang-jwt decodes at all.
		return nil, descUnsupported
	}
	if a.typ != "" && !a.typeMatches(t.Header["typ"]) {
		return nil, descWrongType
	}
	if crit, ok := t.Header["crit"]; ok && !a.critOK(crit, t.Header) {
		return nil, descCritical
	}
	var kid string
	if v, ok := t.Header["kid"]; ok {
		if kid, ok = v.(string); !ok {
			return nil, descBadKeyID
		}
	}
	keys, err := a.keys.Keys(ctx, kid)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, descUnknownKey
		}
		return nil, &keySourceError{err}
	}
	var (
		first any
		set   []jwt.VerificationKey
		found bool
	)
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.ID != kid {
			continue // a key source that returns more than asked for
		}
		found = true
		if !k.Allows(alg) || !usableKey(k.Key) {
			continue
		}
		switch {
		case first == nil:
			first = k.Key
		case set == nil:
			set = []jwt.VerificationKey{first, k.Key}
		default:
			set = append(set, k.Key)
		}
	}
	switch {
	case set != nil:
		// Several keys share the kid (or the token has none): any may
		// have signed it.
		return jwt.VerificationKeySet{Keys: set}, nil
	case first != nil:
		return first, nil
	case !found:
		return nil, descUnknownKey
	default:
		return nil, descAlgNotAllowed
	}
}

// usableKey refuses an empty HMAC secret, with which anyone can sign.
func usableKey(k any) bool {
	switch k := k.(type) {
	case nil:
		return false
	case []byte:
		return len(k) > 0
	}
	return true
}

func (a *JWTAuthenticator) typeMatches(v any) bool {
	s, ok := v.(string)
	return ok && strings.EqualFold(trimApplication(s), a.typ)
}

// trimApplication removes an "application/" prefix: RFC 7515 §4.1.9 lets
// typ omit it.
func trimApplication(s string) string {
	const prefix = "application/"
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):]
	}
	return s
}

// critOK reports whether the crit header value v is well formed (RFC 7515
// §4.1.11: a non-empty array of the names of extension parameters present
// in the header, none registered, none repeated) and names only parameters
// the application understands.
func (a *JWTAuthenticator) critOK(v any, header map[string]any) bool {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return false
	}
	for i, e := range list {
		name, ok := e.(string)
		if !ok || !slices.Contains(a.critical, name) || slices.Contains(list[:i], e) {
			return false
		}
		if _, present := header[name]; !present {
			return false
		}
	}
	return true
}

// principal checks the claims golang-jwt does not and builds the principal.
func (a *JWTAuthenticator) principal(claims jwt.MapClaims) (*gateway.Principal, error) {
	var iss, sub string
	if v, ok := claims["iss"]; ok {
		if iss, ok = v.(string); !ok {
			return nil, a.invalid(descBadIss, nil)
		}
	}
	if len(a.issuers) > 0 {
		if iss == "" {
			return nil, a.invalid(descMissingIss, nil)
		}
		if !slices.Contains(a.issuers, iss) {
			return nil, a.invalid(descWrongIssuer, nil)
		}
	}
	if v, ok := claims["sub"]; ok {
		if sub, ok = v.(string); !ok {
			return nil, a.invalid(descBadSub, nil)
		}
	}
	if a.allowMissingExp {
		// golang-jwt reads "exp": 0 as no exp; with exp required that
		// refuses the token, but here it would make it valid forever.
		if exp, ok := claims["exp"].(float64); ok && exp == 0 {
			return nil, a.invalid(descExpired, nil)
		}
	}
	return &gateway.Principal{
		Subject: sub,
		Issuer:  iss,
		Scopes:  a.scopes(claims),
		Claims:  claims,
	}, nil
}

// scopes reads the first of the scope claims present: a space-delimited
// string (RFC 6749 §3.3) or an array of strings.
func (a *JWTAuthenticator) scopes(claims jwt.MapClaims) []string {
	for _, name := range a.scopeClaims {
		switch v := claims[name].(type) {
		case string:
			if s := splitScopes(v); len(s) > 0 {
				return s
			}
			return nil
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				if s, ok := e.(string); ok && s != "" {
					out = append(out, s)
				}
			}
			if len(out) == 0 {
				return nil
			}
			return out
		}
	}
	return nil
}

// refuse turns a golang-jwt or key lookup error into the reply.
func (a *JWTAuthenticator) refuse(err error, claims jwt.MapClaims) error {
	if _, ok := errors.AsType[*keySourceError](err); ok { // ErrKeysUnavailable among them
		return keysUnavailable(err)
	}
	if p, ok := errors.AsType[jwtProblem](err); ok {
		return a.invalid(p, err)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return a.invalid(descMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return a.invalid(descBadSignature, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An alg golang-jwt does not know ("None", "NONE", ...) or none.
		return a.invalid(descUnsupported, err)
	case errors.Is(err, jwt.ErrInvalidType):
		return a.invalid(a.claimProblem(claims, false), err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return a.invalid(descExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return a.invalid(descNotYetValid, err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return a.invalid(descIssuedFuture, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return a.invalid(descWrongAudience, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return a.invalid(a.claimProblem(claims, true), err)
	}
	return a.invalid(descMalformed, err)
}

// claimProblem says which claim golang-jwt found missing or of the wrong
// type: its errors name the claim only in their text, and errors are not
// classified by their text.
func (a *JWTAuthenticator) claimProblem(claims jwt.MapClaims, missing bool) jwtProblem {
	if missing {
		if exp, _ := claims["exp"].(float64); exp == 0 && !a.allowMissingExp {
			return descMissingExp
		}
		return descMissingAud
	}
	for _, c := range [...]struct {
		name string
		p    jwtProblem
	}{{"exp", descBadExp}, {"nbf", descBadNbf}, {"iat", descBadIat}} {
		if v, ok := claims[c.name]; ok {
			if _, ok := v.(float64); !ok {
				return c.p
			}
		}
	}
	switch v := claims["aud"].(type) {
	case nil, string:
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return descBadAud
			}
		}
	default:
		return descBadAud
	}
	return descMalformed
}

func keysUnavailable(err error) *gateway.Error {
	e := &gateway.Error{
		Status: http.StatusServiceUnavailable,
		Detail: "the keys that verify tokens are not available",
		Err:    err,
	}
	return e.WithHeader("Retry-After", keysRetryAfter)
}

func (a *JWTAuthenticator) invalid(p jwtProblem, err error) error {
	e := bearerError(http.StatusUnauthorized, a.realm, CodeInvalidToken, string(p))
	e.Err = err
	return e
}
