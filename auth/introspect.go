package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// Defaults of IntrospectionConfig.
const (
	// DefaultIntrospectionTimeout bounds each introspection request.
	DefaultIntrospectionTimeout = 5 * time.Second
	// DefaultIntrospectionCacheTTL is how long an active token's answer is
	// reused.
	DefaultIntrospectionCacheTTL = 60 * time.Second
	// DefaultIntrospectionCacheSize is how many answers are cached at most.
	DefaultIntrospectionCacheSize = 10_000
	// DefaultIntrospectionNegativeTTL is how long a refusal is reused.
	DefaultIntrospectionNegativeTTL = 5 * time.Second
)

// maxIntrospectionBytes bounds an introspection reply; real ones are a few
// hundred bytes.
const maxIntrospectionBytes = 1 << 20

// maxBearerTokenBytes bounds the tokens sent to the introspection endpoint.
const maxBearerTokenBytes = 16 << 10

// IntrospectionConfig configures an Introspector.
type IntrospectionConfig struct {
	// URL is the introspection endpoint of the authorization server, http
	// or https. Required.
	URL string
	// ClientID and ClientSecret authenticate the gateway to the endpoint
	// with HTTP Basic (client_secret_basic, RFC 6749 §2.3.1). Leave both
	// empty when Client authenticates some other way (mutual TLS, say).
	ClientID, ClientSecret string
	// Client sends the introspection requests; nil means a client of its
	// own that does not follow redirects. Every request is bounded by
	// Timeout whatever the client.
	Client *http.Client
	// Timeout bounds each introspection request; 0 means
	// DefaultIntrospectionTimeout (5s).
	Timeout time.Duration

	// CacheTTL is how long an active token's answer is reused; it is never
	// reused past the token's "exp". 0 means DefaultIntrospectionCacheTTL
	// (60s); negative turns caching of active tokens off. Revoking a token
	// at the authorization server takes up to CacheTTL to reach the
	// gateway: that is the trade against one round trip per request.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached answers, active and inactive,
	// evicting the least recently used; 0 means
	// DefaultIntrospectionCacheSize (10,000); negative turns the cache off.
	CacheSize int
	// NegativeTTL is how long a refusal (an inactive, expired or otherwise
	// unacceptable token) is reused, so a client retrying a dead token does
	// not reach the authorization server every time; 0 means
	// DefaultIntrospectionNegativeTTL (5s); negative turns it off.
	NegativeTTL time.Duration

	// Issuers, when set, are the accepted values of the reply's "iss": a
	// reply without one of them is refused.
	Issuers []string
	// Audiences, when set, are accepted values of the reply's "aud": a
	// reply must name at least one of them.
	Audiences []string
	// TokenTypes, when set, are accepted values of the reply's
	// "token_type" (such as "Bearer" or "access_token"): a reply naming
	// another type, a refresh token say, is refused. The token_type_hint
	// sent is only a hint the server may ignore (RFC 7662 §2.1).
	TokenTypes []string

	// Realm, when set, is the realm of the WWW-Authenticate challenge.
	Realm string
	// Now returns the current time, for "exp", "nbf" and the cache; nil
	// means time.Now.
	Now func() time.Time
}

// An Introspector is a gateway.Authenticator for opaque bearer tokens: it
// asks the authorization server about each token with OAuth 2.0 Token
// Introspection (RFC 7662), and caches the answers. It is safe for
// concurrent use.
type Introspector struct {
	url         string
	basic       string // the Authorization field value, or ""
	client      *http.Client
	timeout     time.Duration
	ttl         time.Duration
	negativeTTL time.Duration
	issuers     []string
	audiences   []string
	tokenTypes  []string
	realm       string
	challenge   string
	now         func() time.Time

	cache *introspectCache // nil when off

	mu    sync.Mutex // guards calls
	calls map[[32]byte]*introspectCall
}

var (
	_ gateway.Authenticator = (*Introspector)(nil)
	_ gateway.Challenger    = (*Introspector)(nil)
)

// Introspection returns an authenticator that takes the bearer token from
// the Authorization field and asks the endpoint at cfg.URL about it.
//
// A request without a bearer token gets gateway.ErrNotResponsible; two
// Authorization fields, or a malformed token, get 400 invalid_request. A
// token that the server says is not active, that has expired ("exp" at or
// before now) or is not yet valid ("nbf"), or that fails the Issuers and
// Audiences checks, gets 401 invalid_token (RFC 6750). When the server
// cannot be reached, answers anything but 200, or answers something that is
// not an introspection reply, the request gets 503 and nothing is cached:
// the gateway fails closed.
//
// An active token's principal has Subject "sub" (else "username", else
// "client_id"), Issuer "iss" (else cfg.URL), Scopes from the
// space-separated "scope", and the whole reply as Claims and ClaimsJSON.
//
// Answers are cached by the SHA-256 of the token, never the token itself,
// for CacheTTL (capped by "exp") or NegativeTTL, in a cache bounded by
// CacheSize. Concurrent requests with the same uncached token share one
// introspection request.
func Introspection(cfg IntrospectionConfig) (*Introspector, error) {
	if cfg.URL == "" {
		return nil, errors.New("auth: IntrospectionConfig.URL is required")
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("auth: IntrospectionConfig.URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("auth: IntrospectionConfig.URL %q: want an http or https URL", cfg.URL)
	case u.Host == "":
		return nil, fmt.Errorf("auth: IntrospectionConfig.URL %q: no host", cfg.URL)
	case u.User != nil:
		return nil, errors.New("auth: IntrospectionConfig.URL: put credentials in ClientID and ClientSecret, not in the URL")
	case u.Fragment != "":
		return nil, fmt.Errorf("auth: IntrospectionConfig.URL %q: no fragment allowed", cfg.URL)
	case cfg.ClientID == "" && cfg.ClientSecret != "":
		return nil, errors.New("auth: IntrospectionConfig: ClientSecret without ClientID")
	case cfg.Timeout < 0:
		return nil, errors.New("auth: IntrospectionConfig.Timeout is negative")
	case strings.ContainsAny(cfg.Realm, "\"\\\r\n"):
		return nil, fmt.Errorf("auth: IntrospectionConfig.Realm %q must not hold quotes, backslashes or line breaks", cfg.Realm)
	case slices.Contains(cfg.Issuers, ""):
		return nil, errors.New("auth: IntrospectionConfig.Issuers holds an empty issuer")
	case slices.Contains(cfg.Audiences, ""):
		return nil, errors.New("auth: IntrospectionConfig.Audiences holds an empty audience")
	}
	ix := &Introspector{
		url:         cfg.URL,
		client:      cfg.Client,
		timeout:     introspectDefault(cfg.Timeout, DefaultIntrospectionTimeout),
		ttl:         introspectDefault(cfg.CacheTTL, DefaultIntrospectionCacheTTL),
		negativeTTL: introspectDefault(cfg.NegativeTTL, DefaultIntrospectionNegativeTTL),
		issuers:     slices.Clone(cfg.Issuers),
		audiences:   slices.Clone(cfg.Audiences),
		tokenTypes:  slices.Clone(cfg.TokenTypes),
		realm:       cfg.Realm,
		challenge:   bearerChallenge(cfg.Realm),
		now:         cfg.Now,
		calls:       make(map[[32]byte]*introspectCall),
	}
	if cfg.ClientID != "" {
		// RFC 6749 §2.3.1: the client ID and secret are form-encoded
		// before they are joined and base64-encoded.
		r := http.Request{Header: make(http.Header)}
		r.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
		ix.basic = r.Header.Get("Authorization")
	}
	if ix.client == nil {
		ix.client = &http.Client{
			Timeout: ix.timeout,
			// A redirected introspection request would carry the client's
			// credentials and the token somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if ix.now == nil {
		ix.now = time.Now
	}
	if size := introspectDefault(cfg.CacheSize, DefaultIntrospectionCacheSize); size > 0 && (ix.ttl > 0 || ix.negativeTTL > 0) {
		ix.cache = newIntrospectCache(size)
	}
	return ix, nil
}

func introspectDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Challenge returns the Bearer challenge sent when a request has no token.
func (ix *Introspector) Challenge() string { return ix.challenge }

// Authenticate introspects the bearer token req carries and returns its
// principal.
func (ix *Introspector) Authenticate(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
	token, err := introspectBearer(req.HTTP, ix.realm)
	if err != nil {
		return nil, err
	}
	key := introspectKey(token)
	now := ix.now()
	a, ok := ix.cache.get(key, now)
	if !ok {
		if a, err = ix.lookup(ctx, key, token, now); err != nil {
			return nil, err
		}
	}
	if a.principal == nil {
		return nil, bearerError(http.StatusUnauthorized, ix.realm, CodeInvalidToken, a.refusal)
	}
	if !a.exp.IsZero() && !now.Before(a.exp) {
		return nil, bearerError(http.StatusUnauthorized, ix.realm, CodeInvalidToken, "token has expired")
	}
	p := *a.principal // Scopes, Claims and ClaimsJSON are shared, and read-only
	return &p, nil
}

// introspectKey returns the SHA-256 of token, under which its answer is
// cached: the cache never holds a token. A stack buffer rather than
// []byte(token) saves an allocation for tokens up to its size.
func introspectKey(token string) [32]byte {
	var buf [1024]byte
	return sha256.Sum256(append(buf[:0], token...))
}

// An introspectAnswer is what the gateway concluded from one introspection
// reply: a principal, or why the token is refused.
type introspectAnswer struct {
	principal *gateway.Principal
	refusal   string    // the error_description when principal is nil
	exp       time.Time // the token's "exp", or zero
	until     time.Time // a refusal may be reused only until then ("nbf"), or zero
}

// An introspectCall is one introspection request in flight, which
// concurrent requests for the same token wait for.
type introspectCall struct {
	done    chan struct{}
	answer  introspectAnswer
	err     error
	waiters int // how many others wait for it; for tests
}

// lookup introspects token, or waits for the request in flight for it.
func (ix *Introspector) lookup(ctx context.Context, key [32]byte, token string, now time.Time) (introspectAnswer, error) {
	ix.mu.Lock()
	if c, ok := ix.calls[key]; ok {
		c.waiters++
		ix.mu.Unlock()
		select {
		case <-c.done:
			if e, ok := c.err.(*gateway.Error); ok {
				cp := *e // each request its own error value
				return c.answer, &cp
			}
			return c.answer, c.err
		case <-ctx.Done():
			return introspectAnswer{}, ctx.Err()
		}
	}
	// A call that finished between our cache miss and here has already
	// stored its answer: look again rather than ask twice.
	if a, ok := ix.cache.get(key, now); ok {
		ix.mu.Unlock()
		return a, nil
	}
	c := &introspectCall{done: make(chan struct{})}
	ix.calls[key] = c
	ix.mu.Unlock()

	defer func() {
		ix.mu.Lock()
		delete(ix.calls, key)
		ix.mu.Unlock()
		close(c.done)
	}()
	// The request serves every waiter, so the first caller going away
	// must not cancel it; Timeout still bounds it.
	c.answer, c.err = ix.introspect(context.WithoutCancel(ctx), token, now)
	if c.err == nil {
		ix.store(key, c.answer, now)
	}
	return c.answer, c.err
}

// store caches a: an active token's principal for the cache TTL but never
// past its exp, a refusal for the negative TTL but never past its until.
func (ix *Introspector) store(key [32]byte, a introspectAnswer, now time.Time) {
	ttl, limit := ix.ttl, a.exp
	if a.principal == nil {
		ttl, limit = ix.negativeTTL, a.until
	}
	if ix.cache == nil || ttl <= 0 {
		return
	}
	expires := now.Add(ttl)
	if !limit.IsZero() && limit.Before(expires) {
		expires = limit
	}
	if expires.After(now) {
		ix.cache.put(key, a, expires)
	}
}

// unavailable is the 503 for an authorization server that could not give a
// usable answer; cause goes to the log only.
func (ix *Introspector) unavailable(cause error) error {
	e := &gateway.Error{
		Status: http.StatusServiceUnavailable,
		Detail: "the token could not be checked with the authorization server",
		Err:    fmt.Errorf("auth: token introspection at %s: %w", ix.url, cause),
	}
	return e.WithHeader("Retry-After", "5")
}

// introspect asks the server about token (RFC 7662 §2.1) and interprets the
// reply (§2.2). Errors are 503s; refusals are answers.
func (ix *Introspector) introspect(ctx context.Context, token string, now time.Time) (introspectAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, ix.timeout)
	defer cancel()
	form := "token=" + url.QueryEscape(token) + "&token_type_hint=access_token"
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, ix.url, strings.NewReader(form))
	if err != nil {
		return introspectAnswer{}, ix.unavailable(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "application/json")
	if ix.basic != "" {
		r.Header.Set("Authorization", ix.basic)
	}
	resp, err := ix.client.Do(r)
	if err != nil {
		return introspectAnswer{}, ix.unavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBytes+1))
	switch {
	case resp.StatusCode != http.StatusOK:
		return introspectAnswer{}, ix.unavailable(fmt.Errorf("status %d", resp.StatusCode))
	case err != nil:
		return introspectAnswer{}, ix.unavailable(err)
	case len(body) > maxIntrospectionBytes:
		return introspectAnswer{}, ix.unavailable(fmt.Errorf("reply larger than %d bytes", maxIntrospectionBytes))
	}
	a, err := ix.interpret(body, now)
	if err != nil {
		return introspectAnswer{}, ix.unavailable(err)
	}
	return a, nil
}

// interpret turns an introspection reply into an answer. A reply that is
// not one (no boolean "active", a member of the wrong type) is an error.
func (ix *Introspector) interpret(body []byte, now time.Time) (introspectAnswer, error) {
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return introspectAnswer{}, fmt.Errorf("reply is not JSON: %w", err)
	}
	if claims == nil {
		return introspectAnswer{}, errors.New("reply is not a JSON object")
	}
	if duplicateMembers(body) {
		// Claims (last duplicate wins) and ClaimsJSON (first wins) would
		// name different callers.
		return introspectAnswer{}, errors.New("reply repeats a member name")
	}
	active, ok := claims["active"].(bool)
	if !ok {
		return introspectAnswer{}, errors.New(`reply has no boolean "active"`)
	}
	if !active {
		return introspectAnswer{refusal: "token is not active"}, nil
	}
	var (
		exp, nbf                                       time.Time
		sub, username, clientID, iss, scope, tokenType string
		aud                                            []string
	)
	for name, dst := range map[string]*string{"sub": &sub, "username": &username, "client_id": &clientID, "iss": &iss, "scope": &scope, "token_type": &tokenType} {
		v, ok := claims[name]
		if !ok || v == nil {
			continue
		}
		if *dst, ok = v.(string); !ok {
			return introspectAnswer{}, fmt.Errorf("reply member %q is not a string", name)
		}
	}
	for name, dst := range map[string]*time.Time{"exp": &exp, "nbf": &nbf} {
		v, ok := claims[name]
		if !ok || v == nil {
			continue
		}
		f, ok := v.(float64)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return introspectAnswer{}, fmt.Errorf("reply member %q is not a number", name)
		}
		*dst = numericDate(f)
	}
	switch v := claims["aud"].(type) {
	case nil:
	case string:
		aud = []string{v}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return introspectAnswer{}, errors.New(`reply member "aud" is not a string or a list of strings`)
			}
			aud = append(aud, s)
		}
	default:
		return introspectAnswer{}, errors.New(`reply member "aud" is not a string or a list of strings`)
	}

	switch {
	case !exp.IsZero() && !now.Before(exp):
		return introspectAnswer{refusal: "token has expired"}, nil
	case !nbf.IsZero() && now.Before(nbf):
		return introspectAnswer{refusal: "token is not yet valid", until: nbf}, nil
	case len(ix.issuers) > 0 && !slices.Contains(ix.issuers, iss):
		return introspectAnswer{refusal: "token issuer is not accepted"}, nil
	case len(ix.audiences) > 0 && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(ix.audiences, a) }):
		return introspectAnswer{refusal: "token audience is not accepted"}, nil
	case len(ix.tokenTypes) > 0 && tokenType != "" && !slices.ContainsFunc(ix.tokenTypes, func(t string) bool { return strings.EqualFold(t, tokenType) }):
		return introspectAnswer{refusal: "token type is not accepted"}, nil
	}

	p := &gateway.Principal{Subject: sub, Issuer: iss, Scopes: splitScopes(scope), Claims: claims, ClaimsJSON: body}
	if p.Subject == "" {
		p.Subject = username
	}
	if p.Subject == "" {
		p.Subject = clientID
	}
	if p.Issuer == "" {
		p.Issuer = ix.url
	}
	return introspectAnswer{principal: p, exp: exp}, nil
}

// numericDate converts seconds since the epoch to a time, saturating far
// outside the range a token could mean.
func numericDate(f float64) time.Time {
	const limit = 1 << 40 // some 35,000 years
	f = max(min(f, limit), -limit)
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9))
}

// introspectBearer returns the bearer token of the Authorization field of r
// (RFC 6750 §2.1), read as the JWT authenticator reads it. It returns
// gateway.ErrNotResponsible when there is no Authorization field or it holds
// another scheme, and a 400 invalid_request when there are two fields or the
// token is empty, malformed or too long.
func introspectBearer(r *http.Request, realm string) (string, error) {
	x := newTokenExtractor("", "", "", realm)
	token, err := x.extract(r)
	if err != nil {
		return "", err
	}
	if len(token) > maxBearerTokenBytes {
		return "", bearerError(http.StatusBadRequest, realm, CodeInvalidRequest, "the bearer token is too long")
	}
	return token, nil
}

// introspectCache holds introspection answers by token hash, bounded in
// size with least-recently-used eviction. Large caches are split into
// shards by hash, each with its own lock, so that concurrent requests
// rarely wait on each other. A nil cache holds nothing.
type introspectCache struct {
	shards []introspectShard
}

type introspectShard struct {
	mu   sync.Mutex
	m    map[[32]byte]*introspectEntry
	lru  introspectEntry // sentinel: lru.next is the most recently used
	size int
}

type introspectEntry struct {
	key        [32]byte
	answer     introspectAnswer
	expires    time.Time
	prev, next *introspectEntry
}

func newIntrospectCache(size int) *introspectCache {
	n := 1
	if size >= 16*64 {
		n = 16
	}
	c := &introspectCache{shards: make([]introspectShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.size = size / n // the shards together hold at most size entries
		s.m = make(map[[32]byte]*introspectEntry)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return c
}

func (c *introspectCache) shard(key [32]byte) *introspectShard {
	return &c.shards[int(key[0])%len(c.shards)]
}

// get returns the answer cached for key, if it has not expired by now.
func (c *introspectCache) get(key [32]byte, now time.Time) (introspectAnswer, bool) {
	if c == nil {
		return introspectAnswer{}, false
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return introspectAnswer{}, false
	}
	if !now.Before(e.expires) {
		s.remove(e)
		return introspectAnswer{}, false
	}
	s.unlink(e)
	s.pushFront(e)
	return e.answer, true
}

// put caches a for key until expires, evicting the least recently used
// answer when the shard is full.
func (c *introspectCache) put(key [32]byte, a introspectAnswer, expires time.Time) {
	if c == nil {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok {
		e.answer, e.expires = a, expires
		s.unlink(e)
		s.pushFront(e)
		return
	}
	for len(s.m) >= s.size && s.lru.prev != &s.lru {
		s.remove(s.lru.prev)
	}
	e := &introspectEntry{key: key, answer: a, expires: expires}
	s.m[key] = e
	s.pushFront(e)
}

// len returns the number of cached answers.
func (c *introspectCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *introspectShard) remove(e *introspectEntry) {
	s.unlink(e)
	delete(s.m, e.key)
}

func (s *introspectShard) unlink(e *introspectEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *introspectShard) pushFront(e *introspectEntry) {
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}
