package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/golang-jwt/jwt/v5"
)

var tcStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tcClock is a clock the test moves.
type tcClock struct{ t atomic.Int64 }

func newTCClock() *tcClock {
	c := &tcClock{}
	c.t.Store(tcStart.UnixNano())
	return c
}
func (c *tcClock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *tcClock) Set(t time.Time)         { c.t.Store(t.UnixNano()) }
func (c *tcClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// tcKeys is a key source that counts lookups (one per full verification)
// and whose key set the test can replace, as a JWKS refresh does.
type tcKeys struct {
	set     atomic.Pointer[keySet]
	lookups atomic.Int64
}

func newTCKeys(t testing.TB, keys ...Key) *tcKeys {
	t.Helper()
	k := &tcKeys{}
	k.rotate(t, keys...)
	return k
}

func (k *tcKeys) rotate(t testing.TB, keys ...Key) {
	t.Helper()
	src, err := StaticKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	k.set.Store(src.(*keySet))
}

func (k *tcKeys) Keys(ctx context.Context, kid string) ([]Key, error) {
	k.lookups.Add(1)
	return k.set.Load().Keys(ctx, kid)
}

func (k *tcKeys) currentKeySet() *keySet { return k.set.Load() }

var (
	tcSecretA = []byte("token-cache-test-secret-A-0123456789abcdef")
	tcSecretB = []byte("token-cache-test-secret-B-0123456789abcdef")
)

func tcHMAC(t testing.TB, id string, secret []byte) Key {
	t.Helper()
	k, err := HMACKey(id, secret, "HS256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tcToken signs claims (exp an hour after tcStart unless given) with HS256.
func tcToken(t testing.TB, kid string, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "alice", "iat": tcStart.Unix(), "exp": tcStart.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type tcFixture struct {
	keys  *tcKeys
	clock *tcClock
	a     *JWTAuthenticator
}

func newTCFixture(t testing.TB, cfg JWTConfig) *tcFixture {
	t.Helper()
	f := &tcFixture{keys: newTCKeys(t, tcHMAC(t, "a", tcSecretA)), clock: newTCClock()}
	if cfg.Cache.Size == 0 {
		cfg.Cache.Size = 16
	}
	cfg.Keys = f.keys
	cfg.Now = f.clock.Now
	a, err := JWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	return f
}

// verify verifies token and returns its subject, or the problem's
// description, and whether the signature was checked (a key lookup).
func (f *tcFixture) verify(t testing.TB, token string) (result string, verified bool) {
	t.Helper()
	before := f.keys.lookups.Load()
	p, err := f.a.Verify(t.Context(), token)
	verified = f.keys.lookups.Load() > before
	if err != nil {
		var ge *gateway.Error
		if !errors.As(err, &ge) {
			t.Fatalf("Verify: %v, not a *gateway.Error", err)
		}
		if ge.Status != http.StatusUnauthorized {
			return fmt.Sprint(ge.Status), verified
		}
		return "refused: " + string(errorProblem(err)), verified
	}
	return p.Subject, verified
}

func errorProblem(err error) jwtProblem {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		for _, p := range []jwtProblem{descExpired, descNotYetValid, descIssuedFuture, descBadSignature, descUnknownKey, descWrongIssuer, descMalformed} {
			if strings.Contains(ge.Detail, string(p)) {
				return p
			}
		}
		return jwtProblem(ge.Detail)
	}
	return jwtProblem(err.Error())
}

// A tcStep is one Verify in a table case: before it, the clock moves by
// advance (or to at) and rotate runs; then token is verified.
type tcStep struct {
	advance  time.Duration
	rotate   func(t *testing.T, f *tcFixture)
	token    string
	want     string // subject, or "refused: <problem>"
	verified bool   // whether the signature was checked (not a cache hit)
}

func TestTokenCache(t *testing.T) {
	good := tcToken(t, "a", tcSecretA, nil)
	bob := tcToken(t, "a", tcSecretA, jwt.MapClaims{"sub": "bob"})
	// Same header and payload as good, another signature: made with
	// another secret, and made by flipping the signature's last byte.
	dot := strings.LastIndexByte(good, '.')
	otherKey := tcToken(t, "a", tcSecretB, nil)
	tampered := good[:dot] + otherKey[strings.LastIndexByte(otherKey, '.'):]
	flipped := good[:len(good)-2] + map[bool]string{true: "A", false: "B"}[good[len(good)-2] != 'A'] + good[len(good)-1:]
	if tampered == good || flipped == good || tampered[:dot] != good[:dot] {
		t.Fatal("bad fixture")
	}
	wrongIss := tcToken(t, "a", tcSecretA, jwt.MapClaims{"iss": "https://evil.example"})
	future := tcToken(t, "a", tcSecretA, jwt.MapClaims{"nbf": tcStart.Add(time.Minute).Unix()})
	noExp := tcToken(t, "a", tcSecretA, jwt.MapClaims{"exp": nil})

	cases := []struct {
		name  string
		cfg   JWTConfig
		steps []tcStep
	}{
		{name: "hit skips verification", steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{token: good, want: "alice"},
			{advance: 30 * time.Minute, token: good, want: "alice"},
		}},
		{name: "different tokens do not collide", steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{token: bob, want: "bob", verified: true},
			{token: good, want: "alice"},
			{token: bob, want: "bob"},
		}},
		{name: "another signature is not a hit", steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{token: tampered, want: "refused: " + string(descBadSignature), verified: true},
			{token: flipped, want: "refused: " + string(descBadSignature), verified: true},
			{token: tampered, want: "refused: " + string(descBadSignature), verified: true},
			{token: good, want: "alice"},
		}},
		{name: "failed verification is not cached", steps: []tcStep{
			{token: wrongIss, want: "refused: " + string(descWrongIssuer), verified: true},
			{token: wrongIss, want: "refused: " + string(descWrongIssuer), verified: true},
		}, cfg: JWTConfig{Issuers: []string{"https://idp.example"}}},
		{name: "exp respected", steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{advance: time.Hour - time.Second, token: good, want: "alice"},
			{advance: time.Second, token: good, want: "refused: " + string(descExpired), verified: true},
			{token: good, want: "refused: " + string(descExpired), verified: true},
		}},
		{name: "exp respected with leeway", cfg: JWTConfig{Leeway: time.Minute}, steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{advance: time.Hour + 59*time.Second, token: good, want: "alice"},
			{advance: time.Second, token: good, want: "refused: " + string(descExpired), verified: true},
		}},
		{name: "nbf and iat checked on every hit", steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{token: future, want: "refused: " + string(descNotYetValid), verified: true},
			{advance: time.Minute, token: future, want: "alice", verified: true},
			{token: future, want: "alice"},
			// The clock steps back before nbf and iat: both refused again.
			{advance: -2 * time.Minute, token: future, want: "refused: " + string(descNotYetValid), verified: true},
			{token: good, want: "refused: " + string(descIssuedFuture), verified: true},
		}},
		{name: "TTL bounds an entry", cfg: JWTConfig{Cache: TokenCacheConfig{Size: 4, TTL: 10 * time.Second}}, steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{advance: 9 * time.Second, token: good, want: "alice"},
			{advance: time.Second, token: good, want: "alice", verified: true},
			{token: good, want: "alice"}, // cached again
		}},
		{name: "no exp, no TTL: never cached", cfg: JWTConfig{AllowMissingExp: true}, steps: []tcStep{
			{token: noExp, want: "alice", verified: true},
			{token: noExp, want: "alice", verified: true},
		}},
		{name: "no exp with TTL: cached for the TTL", cfg: JWTConfig{AllowMissingExp: true, Cache: TokenCacheConfig{Size: 4, TTL: time.Minute}}, steps: []tcStep{
			{token: noExp, want: "alice", verified: true},
			{advance: 59 * time.Second, token: noExp, want: "alice"},
			{advance: time.Second, token: noExp, want: "alice", verified: true},
		}},
		{name: "rotation flushes", steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{token: good, want: "alice"},
			// The same key in a new set: verified again, then cached.
			{rotate: func(t *testing.T, f *tcFixture) { f.keys.rotate(t, tcHMAC(t, "a", tcSecretA)) }, token: good, want: "alice", verified: true},
			{token: good, want: "alice"},
			// Key "a" rotated out: its tokens stop at once.
			{rotate: func(t *testing.T, f *tcFixture) { f.keys.rotate(t, tcHMAC(t, "b", tcSecretB)) }, token: good, want: "refused: " + string(descUnknownKey), verified: true},
			{token: good, want: "refused: " + string(descUnknownKey), verified: true},
		}},
		{name: "bound respected", cfg: JWTConfig{Cache: TokenCacheConfig{Size: 2}}, steps: []tcStep{
			{token: good, want: "alice", verified: true},
			{token: bob, want: "bob", verified: true},
			{token: good, want: "alice"},
			{token: future, want: "refused: " + string(descNotYetValid), verified: true}, // not cached, evicts nothing
			{token: bob, want: "bob"},
			{token: tcToken(t, "a", tcSecretA, jwt.MapClaims{"sub": "carol"}), want: "carol", verified: true}, // evicts alice
			{token: good, want: "alice", verified: true},                                                      // evicts bob
			{token: bob, want: "bob", verified: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTCFixture(t, tc.cfg)
			for i, s := range tc.steps {
				f.clock.Advance(s.advance)
				if s.rotate != nil {
					s.rotate(t, f)
				}
				got, verified := f.verify(t, s.token)
				if got != s.want || verified != s.verified {
					t.Errorf("step %d: got %q, verified %v; want %q, verified %v", i, got, verified, s.want, s.verified)
				}
				if n, max := f.a.cache.len(), len(f.a.cache.ring); n > max {
					t.Errorf("step %d: %d tokens cached, bound %d", i, n, max)
				}
			}
		})
	}
}

func TestTokenCachePrincipalIsACopy(t *testing.T) {
	f := newTCFixture(t, JWTConfig{})
	token := tcToken(t, "a", tcSecretA, jwt.MapClaims{"scope": "read write"})
	p1, err := f.a.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	p1.Subject = "mallory"
	p1.Scopes = append(p1.Scopes, "admin")
	p2, err := f.a.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Subject != "alice" || len(p2.Scopes) != 2 || p2.HasScope("admin") {
		t.Fatalf("cached principal changed by a caller: %+v", p2)
	}
	p3, _ := f.a.Verify(t.Context(), token)
	p3.Scopes = append(p3.Scopes, "other")
	if p2.Scopes[len(p2.Scopes)-1] != "write" || p1.Scopes[2] != "admin" {
		t.Fatal("appends share an array")
	}
}

func TestTokenCacheConfig(t *testing.T) {
	static, err := StaticKeys(tcHMAC(t, "a", tcSecretA))
	if err != nil {
		t.Fatal(err)
	}
	custom := KeySource(keySourceFunc(func(ctx context.Context, kid string) ([]Key, error) { return static.Keys(ctx, kid) }))
	cases := []struct {
		name    string
		cfg     JWTConfig
		wantErr string
	}{
		{"off", JWTConfig{Keys: custom}, ""},
		{"static keys", JWTConfig{Keys: static, Cache: TokenCacheConfig{Size: 10}}, ""},
		{"custom key source", JWTConfig{Keys: custom, Cache: TokenCacheConfig{Size: 10}}, "needs a key source"},
		{"negative size", JWTConfig{Keys: static, Cache: TokenCacheConfig{Size: -1}}, "Cache.Size"},
		{"negative TTL", JWTConfig{Keys: static, Cache: TokenCacheConfig{Size: 1, TTL: -time.Second}}, "Cache.TTL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := JWT(tc.cfg)
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("JWT: %v, want error %q", err, tc.wantErr)
			}
		})
	}
}

type keySourceFunc func(ctx context.Context, kid string) ([]Key, error)

func (f keySourceFunc) Keys(ctx context.Context, kid string) ([]Key, error) { return f(ctx, kid) }

// TestTokenCacheJWKSRotation rotates the signing key at a real JWKS
// endpoint: after a refresh, tokens of the removed key are refused though
// they were cached.
func TestTokenCacheJWKSRotation(t *testing.T) {
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := func(kid string, k *ecdsa.PrivateKey) string {
		b, err := k.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.RawURLEncoding.EncodeToString
		return fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":%q,"alg":"ES256","use":"sig","x":%q,"y":%q}`, kid, enc(b[1:33]), enc(b[33:]))
	}
	var mu sync.Mutex
	body := `{"keys":[` + jwk("a", keyA) + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	clock := newTCClock()
	j, err := NewJWKS(JWKSConfig{URL: srv.URL, Now: clock.Now, RefreshInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	a, err := JWT(JWTConfig{Keys: j, Now: clock.Now, Cache: TokenCacheConfig{Size: 8}})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(kid string, k *ecdsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice", "exp": tcStart.Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tokA, tokB := sign("a", keyA), sign("b", keyB)
	ctx := t.Context()
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := a.Verify(ctx, tokA); err != nil {
			t.Fatal(err)
		}
	}
	if a.cache.len() != 1 {
		t.Fatalf("%d cached, want 1", a.cache.len())
	}
	// A fetch that brings the same keys (a JWKS is refetched hourly) keeps
	// the set, and so the cached tokens.
	set := j.set.Load()
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if j.set.Load() != set {
		t.Fatal("an unchanged key set was replaced")
	}
	if _, err := a.Verify(ctx, tokA); err != nil || a.cache.len() != 1 {
		t.Fatalf("after an unchanged refresh: %v, %d cached, want a hit", err, a.cache.len())
	}
	mu.Lock()
	body = `{"keys":[` + jwk("b", keyB) + `]}`
	mu.Unlock()
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, tokA); err == nil || errorProblem(err) != descUnknownKey {
		t.Fatalf("token of a rotated-out key after refresh: %v, want %q", err, descUnknownKey)
	}
	if p, err := a.Verify(ctx, tokB); err != nil || p.Subject != "alice" {
		t.Fatalf("token of the new key: %v, %v", p, err)
	}
}

// TestTokenCacheConcurrent verifies tokens from many goroutines while the
// key set rotates and the clock moves; run with -race.
func TestTokenCacheConcurrent(t *testing.T) {
	f := newTCFixture(t, JWTConfig{Cache: TokenCacheConfig{Size: 8}})
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = tcToken(t, "a", tcSecretA, jwt.MapClaims{"sub": fmt.Sprint("user-", i)})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(tokens)
				p, err := f.a.Verify(context.Background(), tokens[k])
				if err != nil {
					t.Error(err)
					return
				}
				if want := fmt.Sprint("user-", k); p.Subject != want {
					t.Errorf("got %q for %q", p.Subject, want)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			f.keys.rotate(t, tcHMAC(t, "a", tcSecretA))
			f.clock.Advance(time.Second)
		}
	})
	wg.Wait()
	if n := f.a.cache.len(); n > 8 {
		t.Fatalf("%d cached, bound 8", n)
	}
}

// BenchmarkTokenCache is Verify of one HS256 token with the cache off and
// on (a hit every time).
func BenchmarkTokenCache(b *testing.B) {
	for _, size := range []int{0, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			f := newTCFixture(b, JWTConfig{Cache: TokenCacheConfig{Size: size}})
			if size == 0 {
				f.a.cache = nil
			}
			token := tcToken(b, "a", tcSecretA, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.a.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTokenCacheHitAllocs guards the hit path: one allocation, the
// caller's copy of the principal.
func TestTokenCacheHitAllocs(t *testing.T) {
	f := newTCFixture(t, JWTConfig{})
	token := tcToken(t, "a", tcSecretA, nil)
	ctx := context.Background()
	if _, err := f.a.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := f.a.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Fatalf("a cache hit allocates %v times, want at most 1", n)
	}
}

func TestSameKeys(t *testing.T) {
	ecA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edA, _, _ := ed25519.GenerateKey(rand.Reader)
	ecCopy := ecA.PublicKey // an equal key in another value, as a refetch parses it
	k := func(id string, key any, algs ...string) Key { return Key{ID: id, Algorithms: algs, Key: key} }
	cases := []struct {
		name string
		a, b []Key
		want bool
	}{
		{"same", []Key{k("a", &ecA.PublicKey, "ES256"), k("h", []byte("secret"), "HS256")}, []Key{k("a", &ecCopy, "ES256"), k("h", []byte("secret"), "HS256")}, true},
		{"ed25519", []Key{k("e", edA, "EdDSA")}, []Key{k("e", edA, "EdDSA")}, true},
		{"other key", []Key{k("a", &ecA.PublicKey, "ES256")}, []Key{k("a", &ecB.PublicKey, "ES256")}, false},
		{"other id", []Key{k("a", &ecA.PublicKey, "ES256")}, []Key{k("b", &ecA.PublicKey, "ES256")}, false},
		{"other algorithms", []Key{k("a", &ecA.PublicKey, "ES256")}, []Key{k("a", &ecA.PublicKey, "ES256", "ES384")}, false},
		{"other secret", []Key{k("h", []byte("secret"), "HS256")}, []Key{k("h", []byte("secreT"), "HS256")}, false},
		{"secret against a public key", []Key{k("h", []byte("secret"), "HS256")}, []Key{k("h", &ecA.PublicKey, "HS256")}, false},
		{"one more", []Key{k("a", &ecA.PublicKey, "ES256")}, []Key{k("a", &ecA.PublicKey, "ES256"), k("b", &ecB.PublicKey, "ES256")}, false},
		{"empty", nil, []Key{}, true},
	}
	for _, tc := range cases {
		if got := sameKeys(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameKeys = %v, want %v", tc.name, got, tc.want)
		}
	}
}
