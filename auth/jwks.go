package auth

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of JWKSConfig.
const (
	// DefaultJWKSRefreshInterval is the default JWKSConfig.RefreshInterval.
	DefaultJWKSRefreshInterval = 15 * time.Minute
	// DefaultJWKSMinRefetchInterval is the default
	// JWKSConfig.MinRefetchInterval.
	DefaultJWKSMinRefetchInterval = 30 * time.Second
	// DefaultJWKSMaxBytes is the default JWKSConfig.MaxBytes.
	DefaultJWKSMaxBytes = 1 << 20
	// defaultFetchTimeout bounds a fetch made with our own client, or with
	// a client that has no Timeout, so that a hung identity provider cannot
	// hold the single in-flight fetch forever.
	defaultFetchTimeout = 10 * time.Second
)

// JWKSConfig configures a JWKS. A zero field means its documented default.
type JWKSConfig struct {
	// URL is the identity provider's JWK Set endpoint, http or https.
	// Required (DiscoverJWKS fills it in).
	URL string
	// Client fetches the set. nil means a client of the JWKS's own with a
	// 10 s timeout that follows at most 5 redirects and never from https to
	// http. A client without a Timeout gets a 10 s limit per fetch.
	Client *http.Client
	// RefreshInterval is how often the set is refetched in the background.
	// Default 15 minutes. While no set has ever loaded, the background
	// retries every MinRefetchInterval instead.
	RefreshInterval time.Duration
	// MinRefetchInterval is the least time between the start of one fetch
	// and a fetch caused by a lookup (an unknown kid, or no set loaded
	// yet), so that a flood of tokens with made-up kids cannot hammer the
	// identity provider. Default 30 s.
	MinRefetchInterval time.Duration
	// Now is the clock that MinRefetchInterval is measured on; nil means
	// time.Now. The background refresh runs on real timers.
	Now func() time.Time
	// Logger receives failed fetches and dropped keys; nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxBytes bounds the size of a response body. Default 1 MiB.
	MaxBytes int64
	// AllowInsecureHTTP accepts an http:// URL for a host other than a
	// loopback address. Keys fetched over plain HTTP can be replaced by
	// anyone on the path, who could then sign tokens: leave it off outside
	// a trusted network.
	AllowInsecureHTTP bool
	// OnRefresh, when set, is told the outcome of every fetch: the URL
	// (without a password) and nil or the error, such as for metrics
	// (gateway/metrics' JWKSRefreshed). It must be quick.
	OnRefresh func(source string, err error)
}

// A JWKS is a KeySource that serves the JWK Set (RFC 7517 §5) of an
// identity provider, fetched from one configured URL. Keys come only from
// there: the JWS header parameters "jku", "x5u", "jwk" and "x5c" of a token
// never select a key or cause a fetch.
//
// NewJWKS starts the first fetch at once, in the background, so that an
// identity provider that is down does not stop the gateway from starting;
// lookups made while that fetch runs wait for it. Until a set has loaded,
// Keys fails closed with ErrKeysUnavailable, and a lookup tries again at
// most once per MinRefetchInterval. An application that wants start-up to
// fail instead calls Refresh after NewJWKS.
//
// The set is refetched every RefreshInterval in the background. A lookup of
// an unknown kid refetches once, synchronously, when the last fetch started
// more than MinRefetchInterval ago, and otherwise returns ErrUnknownKey at
// once. A lookup that misses while any fetch is in flight waits for that
// fetch and looks again, so concurrent lookups share one fetch (and a burst
// of tokens with a freshly rotated kid costs one). A fetch that fails
// (network error, a status other than 200, a body that is not a JWK Set)
// keeps the last good set and is logged; one that succeeds replaces it, so a
// new kid is accepted and a removed one refused. A well-formed set with no
// usable key also replaces it, and then every token is refused: the IdP has
// withdrawn the keys, and keeping them would be failing open.
//
// Keys are checked by the rules of ParseJWKSet, and in addition a key that
// is published with its private members, or a symmetric "oct" key, is
// dropped (anyone who can fetch the set could sign with it). Dropped keys
// are logged.
//
// Lookups of a known kid are a map access on an immutable snapshot: no lock
// and no allocation. The slices Keys returns are shared; callers must not
// modify them. Close stops the background refresh.
type JWKS struct {
	url        string // for requests
	logURL     string // for logs and errors: without a password
	client     *http.Client
	ownTimeout bool // fetches need their own deadline
	refresh    time.Duration
	minRefetch time.Duration
	now        func() time.Time
	log        *slog.Logger
	maxBytes   int64
	onRefresh  func(string, error)

	set atomic.Pointer[keySet] // nil until a fetch succeeds

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresh loop and fetches in flight

	mu        sync.Mutex
	inflight  *fetchCall // the fetch in flight, if any
	lastFetch time.Time  // start of the last fetch, on the Now clock
	lastErr   error      // outcome of the last finished fetch
	closed    bool
}

var _ KeySource = (*JWKS)(nil)

// A fetchCall is one fetch that several lookups may wait for.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// NewJWKS checks cfg, starts the first fetch and the background refresh,
// and returns the JWKS. It does not wait for the fetch and does not fail
// when the identity provider is unreachable. Call Close to stop it.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	if cfg.URL == "" {
		return nil, errors.New("auth: JWKSConfig.URL: required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKSConfig.URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: JWKSConfig.URL %q: want an absolute http or https URL", u.Redacted())
	}
	if u.Scheme == "http" && !cfg.AllowInsecureHTTP && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("auth: JWKSConfig.URL %q: plain http lets anyone on the path swap the signing keys; use https or set AllowInsecureHTTP", u.Redacted())
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	j := &JWKS{
		url:        cfg.URL,
		logURL:     u.Redacted(),
		onRefresh:  cfg.OnRefresh,
		client:     cfg.Client,
		ownTimeout: cfg.Client.Timeout == 0,
		refresh:    cfg.RefreshInterval,
		minRefetch: cfg.MinRefetchInterval,
		now:        cfg.Now,
		log:        cfg.Logger,
		maxBytes:   cfg.MaxBytes,
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	j.mu.Lock()
	first := j.startFetchLocked()
	j.mu.Unlock()
	j.wg.Add(1)
	go j.loop(first)
	return j, nil
}

// setDefaults checks every field but URL and fills in the defaults.
func (cfg *JWKSConfig) setDefaults() error {
	switch {
	case cfg.RefreshInterval < 0:
		return fmt.Errorf("auth: JWKSConfig.RefreshInterval: %v is negative", cfg.RefreshInterval)
	case cfg.MinRefetchInterval < 0:
		return fmt.Errorf("auth: JWKSConfig.MinRefetchInterval: %v is negative", cfg.MinRefetchInterval)
	case cfg.MaxBytes < 0:
		return fmt.Errorf("auth: JWKSConfig.MaxBytes: %d is negative", cfg.MaxBytes)
	}
	if cfg.Client == nil {
		cfg.Client = defaultClient()
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultJWKSRefreshInterval
	}
	if cfg.MinRefetchInterval == 0 {
		cfg.MinRefetchInterval = DefaultJWKSMinRefetchInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultJWKSMaxBytes
	}
	return nil
}

// defaultClient is the client a JWKS uses when given none. It uses the
// shared http.DefaultTransport, so that connections are pooled.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout: defaultFetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("refusing a redirect from https to " + req.URL.Scheme)
			}
			return nil
		},
	}
}

// Keys returns the keys with ID kid, or all keys when kid is "". See JWKS
// for when it fetches. It returns ErrUnknownKey when the set has no such
// key, ErrKeysUnavailable (wrapping the last fetch error) when no set has
// loaded, and the context's error when ctx ends while it waits for a fetch.
func (j *JWKS) Keys(ctx context.Context, kid string) ([]Key, error) {
	if s := j.set.Load(); s != nil {
		if ks, ok := s.lookup(kid); ok {
			return ks, nil
		}
	}
	return j.miss(ctx, kid)
}

// miss handles a lookup the current set cannot answer: it waits for the
// fetch in flight, or starts one when the rate limit allows, and looks
// again.
func (j *JWKS) miss(ctx context.Context, kid string) ([]Key, error) {
	j.mu.Lock()
	c := j.inflight
	if c == nil {
		if j.closed || j.now().Sub(j.lastFetch) < j.minRefetch {
			lastErr := j.lastErr
			j.mu.Unlock()
			return j.lookup(kid, lastErr)
		}
		c = j.startFetchLocked()
	}
	j.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("auth: JWKS %s: waiting for a fetch: %w", j.logURL, ctx.Err())
	}
	return j.lookup(kid, c.err)
}

// lookup answers from the current set; fetchErr explains an empty one.
func (j *JWKS) lookup(kid string, fetchErr error) ([]Key, error) {
	s := j.set.Load()
	if s == nil {
		if fetchErr != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, fetchErr)
		}
		return nil, ErrKeysUnavailable
	}
	if ks, ok := s.lookup(kid); ok {
		return ks, nil
	}
	return nil, ErrUnknownKey
}

// Refresh fetches the key set now, whatever MinRefetchInterval says, and
// returns the fetch's error: nil when the set was replaced. A fetch already
// in flight may have started before the change Refresh is meant to see, so
// Refresh waits for it and then fetches again. A failed Refresh keeps the
// last good set. ctx bounds the wait; the fetch itself goes on for others.
func (j *JWKS) Refresh(ctx context.Context) error {
	for {
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			return fmt.Errorf("auth: JWKS %s: closed", j.logURL)
		}
		c, mine := j.inflight, false
		if c == nil {
			c, mine = j.startFetchLocked(), true
		}
		j.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("auth: JWKS %s: refresh: %w", j.logURL, ctx.Err())
		}
		if mine {
			return c.err
		}
	}
}

// Close stops the background refresh and waits for a fetch in flight to
// end. Keys keeps serving the last set, without fetching. Close always
// returns nil.
func (j *JWKS) Close() error {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cancel()
	j.wg.Wait()
	return nil
}

// startFetchLocked starts a fetch and registers it as the one in flight.
// j.mu is held, no fetch is in flight, and j is not closed.
func (j *JWKS) startFetchLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	j.inflight = c
	j.lastFetch = j.now()
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		err := j.fetch()
		c.err = err
		j.mu.Lock()
		j.inflight = nil
		j.lastErr = err
		j.mu.Unlock()
		close(c.done)
	}()
	return c
}

// loop refreshes the set in the background until Close.
func (j *JWKS) loop(first *fetchCall) {
	defer j.wg.Done()
	select {
	case <-first.done:
	case <-j.ctx.Done():
		return
	}
	t := time.NewTimer(j.nextRefresh())
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-j.ctx.Done():
			return
		}
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			return
		}
		c := j.inflight
		if c == nil {
			c = j.startFetchLocked()
		}
		j.mu.Unlock()
		select {
		case <-c.done:
		case <-j.ctx.Done():
			return
		}
		t.Reset(j.nextRefresh())
	}
}

func (j *JWKS) nextRefresh() time.Duration {
	if j.set.Load() == nil {
		return min(j.minRefetch, j.refresh)
	}
	return j.refresh
}

// fetch gets the set once and, when it is good, makes it the current one.
func (j *JWKS) fetch() error {
	ctx := j.ctx
	if j.ownTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultFetchTimeout)
		defer cancel()
	}
	keys, err := j.get(ctx)
	if j.onRefresh != nil && j.ctx.Err() == nil {
		j.onRefresh(j.logURL, err)
	}
	if err != nil {
		if j.ctx.Err() != nil { // closed: not worth a log line
			return err
		}
		if j.set.Load() != nil {
			j.log.Warn("auth: JWKS fetch failed; keeping the last good key set", "url", j.logURL, "err", err)
		} else {
			j.log.Error("auth: JWKS fetch failed and no key set was ever loaded; tokens are refused", "url", j.logURL, "err", err)
		}
		return err
	}
	if old := j.set.Load(); old != nil && sameKeys(old.all, keys) {
		// Unchanged: the set stays the one in use, so that what was
		// verified with it (JWTConfig.Cache) stays valid.
		j.log.Debug("auth: JWKS unchanged", "url", j.logURL, "keys", len(keys))
		return nil
	}
	j.set.Store(newKeySet(keys))
	j.log.Debug("auth: JWKS loaded", "url", j.logURL, "keys", len(keys))
	return nil
}

// sameKeys reports whether a and b hold the same keys, in the same order,
// with the same IDs and algorithms.
func sameKeys(a, b []Key) bool {
	return slices.EqualFunc(a, b, func(x, y Key) bool {
		if x.ID != y.ID || !slices.Equal(x.Algorithms, y.Algorithms) {
			return false
		}
		switch xk := x.Key.(type) {
		case []byte:
			yk, ok := y.Key.([]byte)
			return ok && bytes.Equal(xk, yk)
		case interface{ Equal(crypto.PublicKey) bool }:
			return xk.Equal(y.Key)
		}
		return false
	})
}

// get fetches and parses the set.
func (j *JWKS) get(ctx context.Context) ([]Key, error) {
	fail := func(err error) ([]Key, error) { return nil, fmt.Errorf("auth: JWKS %s: %w", j.logURL, err) }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err) // a *url.Error names the URL, without a password
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		return fail(fmt.Errorf("status %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.maxBytes+1))
	if err != nil {
		return fail(err)
	}
	if int64(len(body)) > j.maxBytes {
		return fail(fmt.Errorf("response larger than %d bytes", j.maxBytes))
	}
	keys, dropped, err := parseJWKSet(body, true)
	if err != nil {
		return fail(err)
	}
	for _, d := range dropped {
		j.log.Warn("auth: JWKS key dropped", "url", j.logURL, "reason", d)
	}
	if len(keys) == 0 {
		// The IdP answered, and its answer is that no key is valid now (an
		// emergency revocation, or a rotation to keys we refuse). That
		// replaces the last set: keeping withdrawn keys would be failing
		// open. Every token is refused until a usable key appears.
		j.log.Error("auth: the JWKS holds no usable key; every token is refused", "url", j.logURL, "dropped", len(dropped))
	}
	return keys, nil
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
