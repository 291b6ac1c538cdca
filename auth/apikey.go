package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// APIKeyIssuer is the Issuer of the principals that API keys establish.
const APIKeyIssuer = "apikey"

// DefaultAPIKeyHeader is the header field an APIKeyAuthenticator reads when
// APIKeyConfig.Header is empty.
const DefaultAPIKeyHeader = "X-API-Key"

// HashAPIKey returns the SHA-256 hash of key, the only form in which key
// stores hold a key.
func HashAPIKey(key string) [32]byte {
	// Copying into a stack buffer, rather than []byte(key), saves an
	// allocation per request for keys up to its size.
	var buf [256]byte
	return sha256.Sum256(append(buf[:0], key...))
}

// An APIKey is one key a client may present, identified by its hash, with the
// identity and metadata it stands for.
type APIKey struct {
	// ID names the key in logs, errors and the principal's "key_id" claim;
	// it is not secret. Required and unique within a store.
	ID string
	// Hash is the SHA-256 hash of the key (see HashAPIKey). The key itself
	// is never stored.
	Hash [32]byte
	// Owner is who the key belongs to: the principal's Subject (the ID when
	// empty) and its "owner" claim.
	Owner string
	// Plan names the key's service plan, the "plan" claim, for rate limits
	// and quotas.
	Plan string
	// Scopes are the permissions the key grants.
	Scopes []string
	// Metadata holds further attributes, the "metadata" claim.
	Metadata map[string]string
	// Revoked keys are refused.
	Revoked bool
	// ExpiresAt, when set, is the instant from which the key is refused.
	ExpiresAt time.Time

	// principal is the template the stores of this package build once per
	// key, so that a request costs one small allocation; a key obtained
	// elsewhere has none and its principal is built per request.
	principal *gateway.Principal
}

// newPrincipal builds the principal k stands for. Its Claims hold "key_id",
// "sub", and, when set, "owner", "plan", "scope" (space-separated, as in a
// JWT) and "metadata" (an object of strings), so that authorization, rate
// limiting and transforms can read them like JWT claims.
func (k *APIKey) newPrincipal() *gateway.Principal {
	p := &gateway.Principal{Subject: k.Owner, Issuer: APIKeyIssuer, Scopes: k.Scopes}
	if p.Subject == "" {
		p.Subject = k.ID
	}
	claims := map[string]any{"key_id": k.ID, "sub": p.Subject}
	if k.Owner != "" {
		claims["owner"] = k.Owner
	}
	if k.Plan != "" {
		claims["plan"] = k.Plan
	}
	if len(k.Scopes) > 0 {
		claims["scope"] = strings.Join(k.Scopes, " ")
	}
	if len(k.Metadata) > 0 {
		md := make(map[string]any, len(k.Metadata))
		for name, v := range k.Metadata {
			md[name] = v
		}
		claims["metadata"] = md
	}
	p.Claims = claims
	return p
}

// ErrUnknownAPIKey is returned by an APIKeyStore that holds no key with the
// hash asked for.
var ErrUnknownAPIKey = errors.New("auth: unknown API key")

// An APIKeyStore finds API keys by their SHA-256 hash.
type APIKeyStore interface {
	// LookupAPIKey returns the key whose Hash is hash, or ErrUnknownAPIKey.
	// Revoked and expired keys are returned too: the authenticator refuses
	// them with a reason. The caller must not modify the key.
	LookupAPIKey(ctx context.Context, hash [32]byte) (*APIKey, error)
}

// apiKeyIndex is an immutable set of keys by hash, shared by the memory and the
// file store.
type apiKeyIndex map[[32]byte]*APIKey

// newAPIKeyIndex checks keys and indexes them. Errors begin with prefix and
// name keys by name(i), a position in a file, say.
func newAPIKeyIndex(keys []APIKey, prefix string, name func(i int) string) (apiKeyIndex, error) {
	idx := make(apiKeyIndex, len(keys))
	ids := make(map[string]int, len(keys))
	for i := range keys {
		k := keys[i] // a copy: later changes by the caller cannot reach the store
		switch {
		case k.ID == "":
			return nil, fmt.Errorf("%s%s: ID is empty", prefix, name(i))
		case k.Hash == [32]byte{}:
			return nil, fmt.Errorf("%s%s: Hash is not set (use HashAPIKey)", prefix, name(i))
		}
		if j, dup := ids[k.ID]; dup {
			return nil, fmt.Errorf("%s%s: ID %q is already used by %s", prefix, name(i), k.ID, name(j))
		}
		if other, dup := idx[k.Hash]; dup {
			return nil, fmt.Errorf("%s%s: same key as %s", prefix, name(i), name(ids[other.ID]))
		}
		ids[k.ID] = i
		k.Scopes = slices.Clone(k.Scopes)
		k.Metadata = maps.Clone(k.Metadata)
		p := k.newPrincipal()
		if b, err := json.Marshal(p.Claims); err == nil {
			p.ClaimsJSON = b
		}
		k.principal = p
		idx[k.Hash] = &k
	}
	return idx, nil
}

func (idx apiKeyIndex) lookup(hash [32]byte) (*APIKey, error) {
	if k, ok := idx[hash]; ok {
		return k, nil
	}
	return nil, ErrUnknownAPIKey
}

// A MemoryKeyStore is an APIKeyStore holding a fixed set of keys in memory.
// It is safe for concurrent use.
type MemoryKeyStore struct {
	keys apiKeyIndex
}

var _ APIKeyStore = (*MemoryKeyStore)(nil)

// NewMemoryKeyStore returns a store holding keys. Every key needs an ID and
// a Hash; two keys with the same ID or the same hash are an error that names
// them.
func NewMemoryKeyStore(keys ...APIKey) (*MemoryKeyStore, error) {
	idx, err := newAPIKeyIndex(keys, "auth: NewMemoryKeyStore: ", func(i int) string {
		return fmt.Sprintf("API key #%d (id %q)", i, keys[i].ID)
	})
	if err != nil {
		return nil, err
	}
	return &MemoryKeyStore{keys: idx}, nil
}

// LookupAPIKey returns the key with the given hash, or ErrUnknownAPIKey.
func (s *MemoryKeyStore) LookupAPIKey(ctx context.Context, hash [32]byte) (*APIKey, error) {
	return s.keys.lookup(hash)
}

// APIKeyConfig configures an APIKeyAuthenticator.
type APIKeyConfig struct {
	// Store finds keys by hash. Required.
	Store APIKeyStore
	// Header is the header field that carries the key; "" means
	// DefaultAPIKeyHeader ("X-API-Key").
	Header string
	// QueryParam, when set, also accepts the key from this query parameter.
	// Off by default: URLs end up in logs, browser history and Referer
	// fields, so a key in a query string leaks far more easily.
	QueryParam string
	// Realm, when set, is the realm of the WWW-Authenticate challenge.
	Realm string
	// Now returns the current time, for expiry; nil means time.Now.
	Now func() time.Time
}

// An APIKeyAuthenticator is a gateway.Authenticator that accepts requests
// carrying a known API key. It is safe for concurrent use.
type APIKeyAuthenticator struct {
	store      APIKeyStore
	header     string // canonical form, to index http.Header directly
	query      string
	now        func() time.Time
	challenge  string
	headerName string // as configured, for messages
}

var (
	_ gateway.Authenticator = (*APIKeyAuthenticator)(nil)
	_ gateway.Challenger    = (*APIKeyAuthenticator)(nil)
)

// APIKeys returns an authenticator that reads an API key from cfg.Header
// (or cfg.QueryParam when set), looks it up in cfg.Store by its SHA-256
// hash, and on success returns the key's principal: Subject the key's Owner
// (its ID when there is none), Issuer APIKeyIssuer, the key's Scopes, and
// claims "key_id", "sub", "owner", "plan", "scope" and "metadata".
//
// A request with no key gets gateway.ErrNotResponsible. A key sent twice
// (two header fields, two query parameters, or header and query) is
// refused with 400. An unknown, revoked or expired key is refused with 401
// and a challenge such as `APIKey header="X-API-Key"`; the reply never
// holds the key.
//
// The key's hash is looked up in a map. The map's timing depends on the
// hash of what was sent, never on the stored key, and SHA-256 being
// preimage-resistant, a caller cannot steer the hash of its guess toward a
// stored one byte by byte; so no timing attack reaches the key. The stored
// hash is then compared with the presented one using
// subtle.ConstantTimeCompare, so that a store which looks keys up some
// other way (a database index, a hash prefix) cannot turn an inexact match
// into an accepted key or a timing leak.
func APIKeys(cfg APIKeyConfig) (*APIKeyAuthenticator, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: APIKeyConfig.Store is required")
	}
	header := cfg.Header
	if header == "" {
		header = DefaultAPIKeyHeader
	}
	if !gateway.IsToken(header) {
		return nil, fmt.Errorf("auth: APIKeyConfig.Header %q is not a valid header field name", header)
	}
	if cfg.QueryParam != "" && !apiKeyQueryNameOK(cfg.QueryParam) {
		return nil, fmt.Errorf("auth: APIKeyConfig.QueryParam %q must be a plain name", cfg.QueryParam)
	}
	if strings.ContainsAny(cfg.Realm, "\"\\\r\n") {
		return nil, fmt.Errorf("auth: APIKeyConfig.Realm %q must not hold quotes, backslashes or line breaks", cfg.Realm)
	}
	a := &APIKeyAuthenticator{
		store:      cfg.Store,
		header:     textproto.CanonicalMIMEHeaderKey(header),
		headerName: header,
		query:      cfg.QueryParam,
		now:        cfg.Now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	var b strings.Builder
	b.WriteString("APIKey ")
	if cfg.Realm != "" {
		b.WriteString(`realm="` + cfg.Realm + `", `)
	}
	b.WriteString(`header="` + header + `"`)
	if a.query != "" {
		b.WriteString(`, query="` + a.query + `"`)
	}
	a.challenge = b.String()
	return a, nil
}

// Refusals are built per request (a rare path), so that no two requests share
// a mutable *gateway.Error.

func (a *APIKeyAuthenticator) badRequest(detail string) *gateway.Error {
	return &gateway.Error{Status: http.StatusBadRequest, Detail: detail}
}

func (a *APIKeyAuthenticator) unauthorized(detail string) *gateway.Error {
	return (&gateway.Error{Status: http.StatusUnauthorized, Detail: detail}).WithHeader("WWW-Authenticate", a.challenge)
}

// Challenge returns the WWW-Authenticate challenge naming where the key goes,
// such as `APIKey header="X-API-Key"`.
func (a *APIKeyAuthenticator) Challenge() string { return a.challenge }

// Authenticate checks the API key req carries and returns its principal.
func (a *APIKeyAuthenticator) Authenticate(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
	key, err := a.extract(req.HTTP)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, a.unauthorized("the API key is not valid")
	}
	hash := HashAPIKey(key)
	k, err := a.store.LookupAPIKey(ctx, hash)
	switch {
	case errors.Is(err, ErrUnknownAPIKey):
		return nil, a.unauthorized("the API key is not valid")
	case err != nil:
		if _, ok := errors.AsType[*gateway.Error](err); ok {
			return nil, err
		}
		// Fail closed, and keep the store's error for the log only.
		return nil, &gateway.Error{Status: http.StatusServiceUnavailable, Detail: "the API key could not be checked", Err: err}
	case k == nil || subtle.ConstantTimeCompare(k.Hash[:], hash[:]) != 1:
		return nil, a.unauthorized("the API key is not valid")
	case k.Revoked:
		return nil, a.unauthorized("the API key has been revoked")
	case !k.ExpiresAt.IsZero() && !a.now().Before(k.ExpiresAt):
		return nil, a.unauthorized("the API key has expired")
	}
	if k.principal == nil {
		return k.newPrincipal(), nil
	}
	p := *k.principal // Scopes, Claims and ClaimsJSON are shared, and read-only
	return &p, nil
}

// extract returns the key req carries, "" with ErrNotResponsible when there
// is none, or a 400 when there is more than one.
func (a *APIKeyAuthenticator) extract(r *http.Request) (string, error) {
	values := r.Header[a.header]
	if len(values) > 1 {
		return "", a.badRequest("the request carries more than one " + a.headerName + " field")
	}
	if a.query != "" && r.URL != nil && r.URL.RawQuery != "" {
		q, n, err := apiKeyQueryValue(r.URL.RawQuery, a.query)
		switch {
		case err != nil:
			return "", a.badRequest("the query parameter " + a.query + " is not well encoded")
		case n > 1:
			return "", a.badRequest("the query carries more than one " + a.query + " parameter")
		case n == 1 && len(values) == 1:
			return "", a.badRequest("the request carries an API key in both the " + a.headerName + " field and the query")
		case n == 1:
			return q, nil
		}
	}
	if len(values) == 0 {
		return "", gateway.ErrNotResponsible
	}
	return strings.TrimSpace(values[0]), nil
}

// apiKeyQueryValue returns the value of parameter name in the raw query, and how
// many times name occurs, without building a url.Values map.
func apiKeyQueryValue(raw, name string) (value string, n int, err error) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if strings.ContainsAny(k, "%+") {
			uk, kerr := url.QueryUnescape(k)
			if kerr != nil {
				continue // not name, whatever it was meant to be
			}
			k = uk
		}
		if k != name {
			continue
		}
		n++
		if strings.ContainsAny(v, "%+") {
			if v, err = url.QueryUnescape(v); err != nil {
				return "", n, err
			}
		}
		value = v
	}
	return value, n, nil
}

// apiKeyQueryNameOK reports whether s can be matched in a raw query without
// decoding and quoted in a challenge: printable ASCII without the query's
// delimiters, escapes, quotes or spaces.
func apiKeyQueryNameOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("&=;#?%+\"\\", c) >= 0 {
			return false
		}
	}
	return s != ""
}
