package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/golang-jwt/jwt/v5"
)

// A TokenCacheConfig configures the verified-token cache of a
// JWTAuthenticator (JWTConfig.Cache). The zero value turns it off.
type TokenCacheConfig struct {
	// Size is the most tokens the cache holds; when it is full, the
	// token cached longest ago makes way. 0 turns the cache off. Each
	// entry keeps its token (at most 64 KiB, typically under 1 KiB) and
	// its claims.
	Size int

	// TTL, when positive, bounds how long a token stays cached after it
	// was verified; 0 keeps it until its exp. A token without exp
	// (JWTConfig.AllowMissingExp) is cached only when TTL is set.
	TTL time.Duration
}

// A keySetter is a KeySource whose current key set the cache can see, so
// that it forgets its tokens when the set changes: a static set, which
// never does, and a JWKS, which makes a new set on every good fetch.
type keySetter interface {
	currentKeySet() *keySet
}

func (s *keySet) currentKeySet() *keySet { return s }
func (j *JWKS) currentKeySet() *keySet   { return j.set.Load() }

// A tokenCache remembers the principals of verified tokens, keyed by the
// whole compact token, so that a repeated token skips the signature check
// and the decoding. It belongs to one JWTAuthenticator: what was verified
// depends on its configuration (issuers, audiences, algorithms, type).
//
// Only what does not depend on the time is cached: exp, nbf and iat are
// checked against the clock on every hit, with the authenticator's leeway,
// and a token that fails them is verified again in full, which refuses it
// with the usual error. Nothing a failed verification saw is cached.
type tokenCache struct {
	keys   keySetter
	ttl    time.Duration
	leeway time.Duration
	now    func() time.Time

	mu      sync.RWMutex
	set     *keySet // the key set the cached tokens were verified with
	entries map[string]*tokenEntry
	ring    []string // tokens in insertion order, for eviction; "" is free
	next    int      // the slot the next token takes
}

type tokenEntry struct {
	principal gateway.Principal
	until     time.Time // when the entry stops serving: exp+leeway, or the TTL
	notBefore time.Time // nbf or iat less the leeway, whichever is later; zero when neither
	slot      int
}

// errNoTokenCache is the JWT error of a cache on a key source it cannot
// watch.
var errNoTokenCache = errors.New("auth: JWTConfig.Cache: needs a key source whose changes it can see: StaticKeys, NewJWKS or DiscoverJWKS")

func newTokenCache(cfg TokenCacheConfig, keys KeySource, now func() time.Time, leeway time.Duration) (*tokenCache, error) {
	if cfg.Size < 0 {
		return nil, errors.New("auth: JWTConfig.Cache.Size: must not be negative")
	}
	if cfg.TTL < 0 {
		return nil, errors.New("auth: JWTConfig.Cache.TTL: must not be negative")
	}
	if cfg.Size == 0 {
		return nil, nil
	}
	ks, ok := keys.(keySetter)
	if !ok {
		return nil, errNoTokenCache
	}
	if now == nil {
		now = time.Now
	}
	return &tokenCache{
		keys: ks, ttl: cfg.TTL, leeway: leeway, now: now,
		entries: make(map[string]*tokenEntry, cfg.Size),
		ring:    make([]string, cfg.Size),
	}, nil
}

// verify answers from the cache when it can, and otherwise calls full and
// caches what it accepts.
func (c *tokenCache) verify(ctx context.Context, token string, full func(context.Context, string) (*gateway.Principal, error)) (*gateway.Principal, error) {
	set := c.keys.currentKeySet()
	now := c.now()
	if p, ok := c.get(token, set, now); ok {
		return p, nil
	}
	p, err := full(ctx, token)
	if err != nil {
		return nil, err
	}
	c.put(token, p, set, now)
	return p, nil
}

// get returns a copy of the cached principal of token, if the cache holds
// it for the current key set and it is valid at now.
func (c *tokenCache) get(token string, set *keySet, now time.Time) (*gateway.Principal, bool) {
	c.mu.RLock()
	if c.set != set {
		c.mu.RUnlock()
		c.flush(set)
		return nil, false
	}
	e, ok := c.entries[token]
	if !ok {
		c.mu.RUnlock()
		return nil, false
	}
	if !now.Before(e.until) || now.Before(e.notBefore) {
		c.mu.RUnlock()
		return nil, false // verified again, and refused or cached anew
	}
	p := e.principal // a copy: a stage may replace fields of its own
	c.mu.RUnlock()
	return &p, true
}

// flush forgets every token when the key set has changed (rotated keys, a
// revoked one): tokens are verified again with the new set.
func (c *tokenCache) flush(set *keySet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == set {
		return
	}
	clear(c.entries)
	clear(c.ring)
	c.next = 0
	c.set = set
}

// put caches the principal of a token verified with the key set set (read
// before verification began) at now.
func (c *tokenCache) put(token string, p *gateway.Principal, set *keySet, now time.Time) {
	if set == nil {
		return
	}
	claims := jwt.MapClaims(p.Claims)
	var until, notBefore time.Time
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		until = exp.Add(c.leeway)
	} else if c.ttl == 0 {
		return // no exp and no TTL: it would never leave
	}
	if c.ttl > 0 {
		if ttl := now.Add(c.ttl); until.IsZero() || ttl.Before(until) {
			until = ttl
		}
	}
	if !now.Before(until) {
		return
	}
	for _, get := range [...]func() (*jwt.NumericDate, error){claims.GetNotBefore, claims.GetIssuedAt} {
		if t, err := get(); err == nil && t != nil && t.Add(-c.leeway).After(notBefore) {
			notBefore = t.Add(-c.leeway)
		}
	}
	e := &tokenEntry{principal: *p, until: until, notBefore: notBefore}
	e.principal.Scopes = slices.Clip(e.principal.Scopes) // an append by a stage gets its own array

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set != set || c.keys.currentKeySet() != set {
		return // the keys changed meanwhile: this token was verified with old ones
	}
	if old, ok := c.entries[token]; ok {
		e.slot = old.slot // one past its TTL, verified again
		c.entries[c.ring[e.slot]] = e
		return
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.entries, old)
	}
	token = strings.Clone(token) // not the request's header, which the map would keep alive
	e.slot = c.next
	c.ring[c.next] = token
	c.entries[token] = e
	c.next = (c.next + 1) % len(c.ring)
}

// len returns how many tokens are cached.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
