package auth

// These tests are internal to the package so that they can see the cache
// and the requests in flight; helpers carry an "ix" prefix to stay clear of
// other files.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

const (
	ixClientID     = "gateway client"
	ixClientSecret = "s3cr:et/+"
)

// ixBase is the fake clock's start; replies' times are relative to it.
var ixBase = time.Unix(1_700_000_000, 0)

func ixAt(d time.Duration) int64 { return ixBase.Add(d).Unix() }

// ixClock is a settable clock.
type ixClock struct {
	mu sync.Mutex
	t  time.Time
}

func newIXClock() *ixClock { return &ixClock{t: ixBase} }

func (c *ixClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ixClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ixServer is an introspection endpoint that checks each request, counts
// them, and answers from a table of tokens (inactive when not listed).
type ixServer struct {
	*httptest.Server
	t        *testing.T
	requests atomic.Int32

	mu      sync.Mutex
	replies map[string]string // token → reply body
	status  int               // when not 0, the status of every reply
	release chan struct{}     // when not nil, replies wait for it
}

func newIXServer(t *testing.T, replies map[string]string) *ixServer {
	s := &ixServer{t: t, replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *ixServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Accept") != "application/json" {
		s.t.Errorf("introspection request: %s with Content-Type %q, Accept %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept"))
	}
	// RFC 6749 §2.3.1: form-encoded, then Basic.
	if id, secret, ok := r.BasicAuth(); !ok || id != "gateway+client" || secret != "s3cr%3Aet%2F%2B" {
		s.t.Errorf("introspection request: basic auth %q %q %v", id, secret, ok)
	}
	if err := r.ParseForm(); err != nil || len(r.PostForm) != 2 || r.PostForm.Get("token_type_hint") != "access_token" {
		s.t.Errorf("introspection request: form %v (%v)", r.PostForm, err)
	}
	s.mu.Lock()
	reply, ok := s.replies[r.PostForm.Get("token")]
	status, release := s.status, s.release
	s.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if !ok {
		reply = `{"active": false}`
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, reply)
}

func (s *ixServer) set(f func(s *ixServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func ixNew(t testing.TB, cfg IntrospectionConfig) *Introspector {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = ixClientID, ixClientSecret
	}
	ix, err := Introspection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// ixRequest builds a request with the given Authorization fields.
func ixRequest(authorization ...string) *gateway.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, a := range authorization {
		r.Header.Add("Authorization", a)
	}
	return gateway.NewRequest(r)
}

func ixBearer(token string) *gateway.Request { return ixRequest("Bearer " + token) }

// ixStatus returns the status of err: 0 for nil, -1 for ErrNotResponsible.
func ixStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if errors.Is(err, gateway.ErrNotResponsible) {
		return -1
	}
	e, ok := errors.AsType[*gateway.Error](err)
	if !ok {
		t.Fatalf("error %v is neither a *gateway.Error nor ErrNotResponsible", err)
	}
	return e.Status
}

func TestIntrospection(t *testing.T) {
	activeReply := fmt.Sprintf(`{"active": true, "scope": "orders:read  orders:write", "client_id": "app", "username": "ada",
		"sub": "u-1", "exp": %d, "iat": %d, "iss": "https://idp.example", "aud": ["api", "other"], "token_type": "Bearer",
		"realm_access": {"roles": ["admin"]}}`, ixAt(time.Hour), ixAt(-time.Minute))
	srv := newIXServer(t, map[string]string{
		"active":             activeReply,
		"inactive":           `{"active": false}`,
		"expired":            fmt.Sprintf(`{"active": true, "sub": "u", "exp": %d}`, ixAt(-time.Second)),
		"expires-now":        fmt.Sprintf(`{"active": true, "sub": "u", "exp": %d}`, ixAt(0)),
		"not-yet":            fmt.Sprintf(`{"active": true, "sub": "u", "nbf": %d}`, ixAt(time.Minute)),
		"username-only":      `{"active": true, "username": "bob"}`,
		"client-only":        `{"active": true, "client_id": "svc", "aud": "api"}`,
		"no-active":          `{"sub": "u"}`,
		"active-string":      `{"active": "true"}`,
		"not-json":           `<html>oops</html>`,
		"not-object":         `[true]`,
		"null":               `null`,
		"exp-string":         `{"active": true, "exp": "tomorrow"}`,
		"aud-number":         `{"active": true, "aud": 7}`,
		"sub-number":         `{"active": true, "sub": 7}`,
		"scope-list":         `{"active": true, "scope": ["a"]}`,
		"other-iss":          `{"active": true, "sub": "u", "iss": "https://evil.example"}`,
		"padded+/token==":    `{"active": true, "sub": "padded"}`,
		"fractional-exp":     fmt.Sprintf(`{"active": true, "sub": "u", "exp": %d.5}`, ixAt(time.Hour)),
		"-._~+/ALL-b64chars": `{"active": true, "sub": "chars"}`,
		"refresh":            `{"active": true, "sub": "u", "token_type": "refresh_token"}`,
		"duplicate-sub":      `{"active": true, "sub": "admin", "sub": "u"}`,
	})
	tests := []struct {
		name       string
		cfg        IntrospectionConfig
		req        *gateway.Request
		wantStatus int    // 0: accepted; -1: not responsible
		wantDesc   string // the error_description, or a substring of the detail of a 503
		wantSub    string
		wantIss    string
	}{
		{name: "active", req: ixBearer("active"), wantSub: "u-1", wantIss: "https://idp.example"},
		{name: "scheme in lower case", req: ixRequest("bearer active"), wantSub: "u-1", wantIss: "https://idp.example"},
		{name: "refresh token refused when types are named", cfg: IntrospectionConfig{TokenTypes: []string{"Bearer", "access_token"}}, req: ixBearer("refresh"), wantStatus: 401, wantDesc: "token type is not accepted"},
		{name: "named type accepted", cfg: IntrospectionConfig{TokenTypes: []string{"bearer"}}, req: ixBearer("active"), wantSub: "u-1", wantIss: "https://idp.example"},
		{name: "repeated member refused", req: ixBearer("duplicate-sub"), wantStatus: 503, wantDesc: "could not be checked"},
		{name: "scheme in upper case", req: ixRequest("BEARER  active"), wantSub: "u-1", wantIss: "https://idp.example"},
		{name: "inactive", req: ixBearer("inactive"), wantStatus: 401, wantDesc: "token is not active"},
		{name: "unknown", req: ixBearer("made-up"), wantStatus: 401, wantDesc: "token is not active"},
		{name: "expired", req: ixBearer("expired"), wantStatus: 401, wantDesc: "token has expired"},
		{name: "exp is now", req: ixBearer("expires-now"), wantStatus: 401, wantDesc: "token has expired"},
		{name: "not yet valid", req: ixBearer("not-yet"), wantStatus: 401, wantDesc: "token is not yet valid"},
		{name: "username as subject", req: ixBearer("username-only"), wantSub: "bob", wantIss: "URL"},
		{name: "client as subject", req: ixBearer("client-only"), wantSub: "svc", wantIss: "URL"},
		{name: "padded token", req: ixBearer("padded+/token=="), wantSub: "padded", wantIss: "URL"},
		{name: "all token characters", req: ixBearer("-._~+/ALL-b64chars"), wantSub: "chars", wantIss: "URL"},
		{name: "fractional exp", req: ixBearer("fractional-exp"), wantSub: "u", wantIss: "URL"},
		{name: "issuer accepted", cfg: IntrospectionConfig{Issuers: []string{"https://other", "https://idp.example"}}, req: ixBearer("active"), wantSub: "u-1", wantIss: "https://idp.example"},
		{name: "issuer refused", cfg: IntrospectionConfig{Issuers: []string{"https://idp.example"}}, req: ixBearer("other-iss"), wantStatus: 401, wantDesc: "token issuer is not accepted"},
		{name: "no issuer refused", cfg: IntrospectionConfig{Issuers: []string{"https://idp.example"}}, req: ixBearer("username-only"), wantStatus: 401, wantDesc: "token issuer is not accepted"},
		{name: "audience in a list", cfg: IntrospectionConfig{Audiences: []string{"api"}}, req: ixBearer("active"), wantSub: "u-1", wantIss: "https://idp.example"},
		{name: "audience as a string", cfg: IntrospectionConfig{Audiences: []string{"x", "api"}}, req: ixBearer("client-only"), wantSub: "svc", wantIss: "URL"},
		{name: "audience refused", cfg: IntrospectionConfig{Audiences: []string{"billing"}}, req: ixBearer("active"), wantStatus: 401, wantDesc: "token audience is not accepted"},
		{name: "no audience refused", cfg: IntrospectionConfig{Audiences: []string{"api"}}, req: ixBearer("username-only"), wantStatus: 401, wantDesc: "token audience is not accepted"},
		{name: "no active member", req: ixBearer("no-active"), wantStatus: 503, wantDesc: "could not be checked"},
		{name: "active not a boolean", req: ixBearer("active-string"), wantStatus: 503},
		{name: "reply not JSON", req: ixBearer("not-json"), wantStatus: 503},
		{name: "reply not an object", req: ixBearer("not-object"), wantStatus: 503},
		{name: "reply null", req: ixBearer("null"), wantStatus: 503},
		{name: "exp not a number", req: ixBearer("exp-string"), wantStatus: 503},
		{name: "aud not a string", req: ixBearer("aud-number"), wantStatus: 503},
		{name: "sub not a string", req: ixBearer("sub-number"), wantStatus: 503},
		{name: "scope not a string", req: ixBearer("scope-list"), wantStatus: 503},
		{name: "no Authorization", req: ixRequest(), wantStatus: -1},
		{name: "other scheme", req: ixRequest("Basic YTpi"), wantStatus: -1},
		{name: "scheme only as a prefix", req: ixRequest("Bearertoken"), wantStatus: -1},
		{name: "two Authorization fields", req: ixRequest("Bearer active", "Bearer active"), wantStatus: 400, wantDesc: "more than one header field carries a token"},
		{name: "empty token", req: ixRequest("Bearer "), wantStatus: 400, wantDesc: "the Bearer credentials hold no token"},
		{name: "scheme alone", req: ixRequest("Bearer"), wantStatus: 400, wantDesc: "the Bearer credentials hold no token"},
		{name: "token with a space", req: ixBearer("act ive"), wantStatus: 400, wantDesc: "the token is not in the form RFC 6750 allows"},
		{name: "token with a quote", req: ixBearer(`a"b`), wantStatus: 400, wantDesc: "the token is not in the form RFC 6750 allows"},
		{name: "padding inside", req: ixBearer("a=b"), wantStatus: 400, wantDesc: "the token is not in the form RFC 6750 allows"},
		{name: "padding only", req: ixBearer("=="), wantStatus: 400, wantDesc: "the token is not in the form RFC 6750 allows"},
		{name: "token too long", req: ixBearer(strings.Repeat("a", maxBearerTokenBytes+1)), wantStatus: 400, wantDesc: "the bearer token is too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL, cfg.Now, cfg.Realm = srv.URL, newIXClock().Now, "api"
			ix := ixNew(t, cfg)
			before := srv.requests.Load()
			p, err := ix.Authenticate(context.Background(), tc.req)
			sent := srv.requests.Load() - before
			status := ixStatus(t, err)
			if status != tc.wantStatus {
				t.Fatalf("Authenticate = %v, %v; want status %d", p, err, tc.wantStatus)
			}
			if (status == -1 || status == 400) && sent != 0 {
				t.Errorf("%d introspection requests for a request without a usable token", sent)
			}
			if status == 0 {
				wantIss := tc.wantIss
				if wantIss == "URL" {
					wantIss = srv.URL
				}
				if p.Subject != tc.wantSub || p.Issuer != wantIss {
					t.Errorf("principal %q from %q, want %q from %q", p.Subject, p.Issuer, tc.wantSub, wantIss)
				}
				return
			}
			if status == -1 {
				return
			}
			e, _ := errors.AsType[*gateway.Error](err)
			challenge := e.Header.Get("WWW-Authenticate")
			switch status {
			case 401:
				if want := `Bearer realm="api", error="invalid_token", error_description="` + tc.wantDesc + `"`; challenge != want {
					t.Errorf("WWW-Authenticate %q, want %q", challenge, want)
				}
			case 400:
				if want := `Bearer realm="api", error="invalid_request", error_description="` + tc.wantDesc + `"`; challenge != want {
					t.Errorf("WWW-Authenticate %q, want %q", challenge, want)
				}
			case 503:
				if !strings.Contains(e.Detail, tc.wantDesc) || e.Err == nil || strings.Contains(e.Detail, "active") {
					t.Errorf("503 %#v: want a generic detail and the cause kept for the log", e)
				}
			}
		})
	}
}

func TestIntrospectionPrincipal(t *testing.T) {
	reply := fmt.Sprintf(`{"active": true, "scope": "orders:read orders:write", "sub": "u-1", "iss": "https://idp.example",
		"exp": %d, "aud": ["api"], "realm_access": {"roles": ["admin"]}}`, ixAt(time.Hour))
	srv := newIXServer(t, map[string]string{"tok": reply})
	ix := ixNew(t, IntrospectionConfig{URL: srv.URL, Now: newIXClock().Now})
	p1, err := ix.Authenticate(context.Background(), ixBearer("tok"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(reply), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p1.Claims, want) || string(p1.ClaimsJSON) != reply {
		t.Errorf("Claims %v, ClaimsJSON %s; want the reply %s", p1.Claims, p1.ClaimsJSON, reply)
	}
	if !reflect.DeepEqual(p1.Scopes, []string{"orders:read", "orders:write"}) {
		t.Errorf("Scopes %q", p1.Scopes)
	}
	if roles := claimValues(p1, "realm_access.roles"); !reflect.DeepEqual(roles, []string{"admin"}) {
		t.Errorf("realm_access.roles = %v", roles)
	}
	p2, err := ix.Authenticate(context.Background(), ixBearer("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 {
		t.Error("two requests share one *Principal; a stage changing one would change the other")
	}
}

func TestIntrospectionCache(t *testing.T) {
	srv := newIXServer(t, map[string]string{
		"long":  fmt.Sprintf(`{"active": true, "sub": "long", "exp": %d}`, ixAt(24*time.Hour)),
		"short": fmt.Sprintf(`{"active": true, "sub": "short", "exp": %d}`, ixAt(10*time.Second)),
		"open":  `{"active": true, "sub": "open"}`,
	})
	type step struct {
		advance    time.Duration
		token      string
		wantStatus int
		wantSent   int32 // introspection requests so far, in this case
	}
	tests := []struct {
		name  string
		cfg   IntrospectionConfig
		steps []step
	}{
		{name: "hit within the TTL, miss after", steps: []step{
			{0, "long", 0, 1},
			{0, "long", 0, 1},
			{59 * time.Second, "long", 0, 1},
			{time.Second, "long", 0, 2},
			{time.Second, "long", 0, 2},
		}},
		{name: "no exp: the TTL alone", cfg: IntrospectionConfig{CacheTTL: 10 * time.Second}, steps: []step{
			{0, "open", 0, 1},
			{9 * time.Second, "open", 0, 1},
			{time.Second, "open", 0, 2},
		}},
		{name: "never past exp", steps: []step{
			{0, "short", 0, 1},
			{9 * time.Second, "short", 0, 1},
			{time.Second, "short", 401, 2}, // the reply, asked again, is expired
		}},
		{name: "negative answers cached briefly", steps: []step{
			{0, "dead", 401, 1},
			{4 * time.Second, "dead", 401, 1},
			{time.Second, "dead", 401, 2},
		}},
		{name: "negative caching off", cfg: IntrospectionConfig{NegativeTTL: -1}, steps: []step{
			{0, "dead", 401, 1},
			{0, "dead", 401, 2},
		}},
		{name: "positive caching off", cfg: IntrospectionConfig{CacheTTL: -1}, steps: []step{
			{0, "long", 0, 1},
			{0, "long", 0, 2},
			{0, "dead", 401, 3},
			{0, "dead", 401, 3},
		}},
		{name: "cache off", cfg: IntrospectionConfig{CacheSize: -1}, steps: []step{
			{0, "long", 0, 1},
			{0, "long", 0, 2},
			{0, "dead", 401, 3},
			{0, "dead", 401, 4},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newIXClock()
			cfg := tc.cfg
			cfg.URL, cfg.Now = srv.URL, clock.Now
			ix := ixNew(t, cfg)
			before := srv.requests.Load()
			for i, st := range tc.steps {
				clock.Advance(st.advance)
				_, err := ix.Authenticate(context.Background(), ixBearer(st.token))
				if got := ixStatus(t, err); got != st.wantStatus {
					t.Fatalf("step %d: status %d (%v), want %d", i, got, err, st.wantStatus)
				}
				if sent := srv.requests.Load() - before; sent != st.wantSent {
					t.Fatalf("step %d: %d introspection requests, want %d", i, sent, st.wantSent)
				}
			}
		})
	}
}

func TestIntrospectionCacheKeyIsHash(t *testing.T) {
	srv := newIXServer(t, map[string]string{"secret-token": `{"active": true, "sub": "u"}`})
	ix := ixNew(t, IntrospectionConfig{URL: srv.URL})
	if _, err := ix.Authenticate(context.Background(), ixBearer("secret-token")); err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.cache.get(HashAPIKey("secret-token"), time.Now()); !ok {
		t.Fatal("the answer is not cached under the token's SHA-256")
	}
	if s := fmt.Sprintf("%+v", ix.cache.shards[0].m); strings.Contains(s, "secret-token") {
		t.Fatal("the cache holds the token")
	}
}

func TestIntrospectionCacheBounded(t *testing.T) {
	srv := newIXServer(t, nil) // every token inactive: negative answers fill the cache too
	for _, size := range []int{3, 100} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			ix := ixNew(t, IntrospectionConfig{URL: srv.URL, CacheSize: size, Now: newIXClock().Now})
			for i := range size*2 + 10 {
				ix.Authenticate(context.Background(), ixBearer("t"+strconv.Itoa(i)))
				if n := ix.cache.len(); n > size {
					t.Fatalf("after %d tokens the cache holds %d answers, more than %d", i+1, n, size)
				}
			}
			if n := ix.cache.len(); n < size*3/4 {
				t.Errorf("the cache holds %d answers, want it close to its size %d", n, size)
			}
		})
	}
}

// TestIntrospectCacheShardedBounded fills a cache large enough to be split
// into shards directly, without a server.
func TestIntrospectCacheShardedBounded(t *testing.T) {
	const size = 5000
	c := newIntrospectCache(size)
	if len(c.shards) < 2 {
		t.Fatalf("a cache of %d has %d shard", size, len(c.shards))
	}
	expires := ixBase.Add(time.Hour)
	for i := range size * 3 {
		c.put(HashAPIKey(strconv.Itoa(i)), introspectAnswer{refusal: "x"}, expires)
		if i%997 == 0 && c.len() > size {
			t.Fatalf("after %d answers the cache holds %d, more than %d", i+1, c.len(), size)
		}
	}
	if n := c.len(); n > size || n < size*3/4 {
		t.Fatalf("the cache holds %d answers, want at most %d and close to it", n, size)
	}
	// The most recent answers are the ones kept.
	for i := size*3 - 100; i < size*3; i++ {
		if _, ok := c.get(HashAPIKey(strconv.Itoa(i)), ixBase); !ok {
			t.Fatalf("answer %d, among the last put, was evicted", i)
		}
	}
	if _, ok := c.get(HashAPIKey(strconv.Itoa(size*3-1)), expires); ok {
		t.Fatal("an answer is served at its expiry")
	}
}

func TestIntrospectionCacheLRU(t *testing.T) {
	srv := newIXServer(t, map[string]string{"a": `{"active": true}`, "b": `{"active": true}`, "c": `{"active": true}`, "d": `{"active": true}`})
	ix := ixNew(t, IntrospectionConfig{URL: srv.URL, CacheSize: 3, Now: newIXClock().Now})
	for _, tok := range []string{"a", "b", "c", "a", "d"} { // "a" used again, so "b" is the one evicted
		if _, err := ix.Authenticate(context.Background(), ixBearer(tok)); err != nil {
			t.Fatal(err)
		}
	}
	for tok, wantHit := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, hit := ix.cache.get(HashAPIKey(tok), ixBase); hit != wantHit {
			t.Errorf("token %s cached: %v, want %v", tok, hit, wantHit)
		}
	}
}

func TestIntrospectionFailsClosed(t *testing.T) {
	srv := newIXServer(t, map[string]string{"tok": `{"active": true, "sub": "u"}`})
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"active": true, "pad": "%s"}`, strings.Repeat("x", maxIntrospectionBytes))
	}))
	t.Cleanup(huge.Close)

	for _, status := range []int{500, 502, 503, 401, 404} {
		t.Run("status "+strconv.Itoa(status), func(t *testing.T) {
			srv.set(func(s *ixServer) { s.status = status })
			ix := ixNew(t, IntrospectionConfig{URL: srv.URL})
			_, err := ix.Authenticate(context.Background(), ixBearer("tok"))
			if got := ixStatus(t, err); got != 503 {
				t.Fatalf("status %d from the server: %d (%v), want 503", status, got, err)
			}
			// A failure is not cached: the next request asks again.
			srv.set(func(s *ixServer) { s.status = 0 })
			if _, err := ix.Authenticate(context.Background(), ixBearer("tok")); err != nil {
				t.Fatalf("after the server recovered: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		cfg  IntrospectionConfig
	}{
		{"unreachable", IntrospectionConfig{URL: downURL}},
		{"redirect not followed", IntrospectionConfig{URL: redirect.URL}},
		{"timeout", IntrospectionConfig{URL: slow.URL, Timeout: 50 * time.Millisecond}},
		{"timeout with the caller's client", IntrospectionConfig{URL: slow.URL, Timeout: 50 * time.Millisecond, Client: slow.Client()}},
		{"reply too large", IntrospectionConfig{URL: huge.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := ixNew(t, tc.cfg)
			_, err := ix.Authenticate(context.Background(), ixBearer("tok"))
			if got := ixStatus(t, err); got != 503 {
				t.Fatalf("%d (%v), want 503", got, err)
			}
			if ix.cache.len() != 0 {
				t.Fatal("a failure was cached")
			}
		})
	}
}

// TestIntrospectionCoalesces checks that concurrent requests with one
// uncached token share one introspection request. Caching is off, so only
// the sharing can keep the count at one.
func TestIntrospectionCoalesces(t *testing.T) {
	srv := newIXServer(t, map[string]string{"tok": `{"active": true, "sub": "u"}`})
	release := make(chan struct{})
	srv.set(func(s *ixServer) { s.release = release })
	ix := ixNew(t, IntrospectionConfig{URL: srv.URL, CacheSize: -1})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			p, err := ix.Authenticate(context.Background(), ixBearer("tok"))
			if err == nil && p.Subject != "u" {
				err = fmt.Errorf("subject %q", p.Subject)
			}
			errs <- err
		})
	}
	// Release the reply once every other request waits for the first.
	key := HashAPIKey("tok")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ix.mu.Lock()
		c := ix.calls[key]
		waiting := c != nil && c.waiters == n-1
		ix.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the requests did not all wait for the first one")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("%d introspection requests for %d concurrent ones, want 1", got, n)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.calls) != 0 {
		t.Fatalf("%d calls left in flight", len(ix.calls))
	}
}

// TestIntrospectionWaiterCancelled checks that a request waiting for
// another's introspection can give up, and that the first one's going away
// does not fail the others.
func TestIntrospectionWaiterCancelled(t *testing.T) {
	srv := newIXServer(t, map[string]string{"tok": `{"active": true, "sub": "u"}`})
	release := make(chan struct{})
	srv.set(func(s *ixServer) { s.release = release })
	ix := ixNew(t, IntrospectionConfig{URL: srv.URL, CacheSize: -1})

	firstCtx, cancelFirst := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := ix.Authenticate(firstCtx, ixBearer("tok"))
		first <- err
	}()
	key := HashAPIKey("tok")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		ix.mu.Lock()
		inFlight := ix.calls[key] != nil
		ix.mu.Unlock()
		if inFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no introspection in flight")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Authenticate(ctx, ixBearer("tok")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
	}

	second := make(chan error, 1)
	go func() {
		_, err := ix.Authenticate(context.Background(), ixBearer("tok"))
		second <- err
	}()
	cancelFirst() // the first caller goes away; the introspection carries on
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		ix.mu.Lock()
		c := ix.calls[key]
		waiting := c != nil && c.waiters == 2
		ix.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second request does not wait for the first")
		}
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("second request: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
}

func TestIntrospectionConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     IntrospectionConfig
		wantErr string
	}{
		{"no URL", IntrospectionConfig{}, "URL is required"},
		{"bad URL", IntrospectionConfig{URL: "http://[::1"}, "URL"},
		{"not HTTP", IntrospectionConfig{URL: "ftp://idp/introspect"}, "http or https"},
		{"relative", IntrospectionConfig{URL: "/introspect"}, "http or https"},
		{"no host", IntrospectionConfig{URL: "https:///introspect"}, "no host"},
		{"credentials in URL", IntrospectionConfig{URL: "https://id:secret@idp/introspect"}, "ClientID and ClientSecret"},
		{"secret without ID", IntrospectionConfig{URL: "https://idp/introspect", ClientSecret: "s"}, "ClientSecret without ClientID"},
		{"negative timeout", IntrospectionConfig{URL: "https://idp/introspect", Timeout: -1}, "Timeout"},
		{"bad realm", IntrospectionConfig{URL: "https://idp/introspect", Realm: "a\"b"}, "Realm"},
		{"empty issuer", IntrospectionConfig{URL: "https://idp/introspect", Issuers: []string{""}}, "Issuers"},
		{"empty audience", IntrospectionConfig{URL: "https://idp/introspect", Audiences: []string{"a", ""}}, "Audiences"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Introspection(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Introspection error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(fmt.Sprint(err), "id:secret") {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}

func TestIntrospectionChallenge(t *testing.T) {
	for realm, want := range map[string]string{"": "Bearer", "api": `Bearer realm="api"`} {
		if got := ixNew(t, IntrospectionConfig{URL: "https://idp/introspect", Realm: realm}).Challenge(); got != want {
			t.Errorf("Challenge() = %q, want %q", got, want)
		}
	}
}

// TestIntrospectionThroughPipeline checks the replies a client sees.
func TestIntrospectionThroughPipeline(t *testing.T) {
	srv := newIXServer(t, map[string]string{"tok": `{"active": true, "sub": "u-1"}`})
	ix := ixNew(t, IntrospectionConfig{URL: srv.URL})
	ok := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte(req.Principal.Subject)), nil
	})
	p := gateway.NewPipeline(ok, gateway.Authenticate(ix))
	for _, tc := range []struct {
		authorization string
		wantStatus    int
		wantBody      string
		wantChallenge string
	}{
		{"Bearer tok", 200, "u-1", ""},
		{"Bearer dead-token", 401, `"error":"invalid_token"`, `Bearer error="invalid_token", error_description="token is not active"`},
		{"", 401, "no credentials", "Bearer"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.authorization != "" {
			r.Header.Set("Authorization", tc.authorization)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) || rec.Header().Get("WWW-Authenticate") != tc.wantChallenge {
			t.Errorf("%q: %d %q %s, want %d %q with %q", tc.authorization, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body, tc.wantStatus, tc.wantChallenge, tc.wantBody)
		}
		if strings.Contains(rec.Body.String(), "dead-token") {
			t.Errorf("the reply echoes the token: %s", rec.Body)
		}
	}
}

// FuzzIntrospectBearer checks the bearer extraction on arbitrary
// Authorization values: no panic, and a token only when it is a b64token
// taken from the value.
func FuzzIntrospectBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c==", "Bearer ", "Bearer", "Basic YTpi", "Bearer a b", "BEARER\tx", "Bearer =", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := &http.Request{Header: http.Header{"Authorization": {v}}}
		token, err := introspectBearer(r, "")
		if err != nil {
			if !errors.Is(err, gateway.ErrNotResponsible) {
				if e, ok := errors.AsType[*gateway.Error](err); !ok || e.Status != 400 {
					t.Fatalf("%q: %v", v, err)
				}
			}
			return
		}
		if !isToken68(token) || !strings.Contains(v, token) || len(v) < len("Bearer ")+len(token) {
			t.Fatalf("%q gave token %q", v, token)
		}
	})
}

// BenchmarkIntrospectionCached measures a request whose token's answer is
// cached: the common case, and the authenticator's own overhead.
func BenchmarkIntrospectionCached(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"active": true, "sub": "u", "scope": "a b"}`)
	}))
	defer srv.Close()
	ix := ixNew(b, IntrospectionConfig{URL: srv.URL})
	req := ixBearer("2YotnFZFEjr1zCsicMWpAA.some-opaque-token-value")
	ctx := context.Background()
	if _, err := ix.Authenticate(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ix.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
