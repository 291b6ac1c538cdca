package auth_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
)

// ksIdP is an identity provider serving a JWK Set that the test can change,
// and counting the fetches.
type ksIdP struct {
	srv     *httptest.Server
	fetches atomic.Int64
	hits    chan int64 // receives the fetch count at each fetch, when not full

	mu     sync.Mutex
	body   []byte
	status int
	block  chan struct{} // when set, a fetch waits for it to close
}

func ksNewIdP(t *testing.T, body []byte) *ksIdP {
	t.Helper()
	idp := &ksIdP{body: body, status: http.StatusOK, hits: make(chan int64, 64)}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		n := idp.fetches.Add(1)
		select {
		case idp.hits <- n:
		default:
		}
		idp.mu.Lock()
		body, status, block := idp.body, idp.status, idp.block
		idp.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *ksIdP) url() string { return idp.srv.URL + "/jwks" }

func (idp *ksIdP) serve(status int, body []byte) {
	idp.mu.Lock()
	idp.status, idp.body = status, body
	idp.mu.Unlock()
}

// ksClock is a clock the test moves by hand.
type ksClock struct {
	mu sync.Mutex
	t  time.Time
}

func ksNewClock() *ksClock { return &ksClock{t: time.Unix(1_700_000_000, 0)} }

func (c *ksClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ksClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ksQuiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ksNewJWKS starts a JWKS on the test IdP with the test clock; it is closed
// at the end of the test.
func ksNewJWKS(t testing.TB, idp *ksIdP, clock *ksClock) *auth.JWKS {
	t.Helper()
	j, err := auth.NewJWKS(auth.JWKSConfig{
		URL:             idp.url(),
		Now:             clock.Now,
		Logger:          ksQuiet(),
		RefreshInterval: time.Hour, // no background refresh during a test
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func ksWantKey(t *testing.T, j *auth.JWKS, kid string) {
	t.Helper()
	keys, err := j.Keys(t.Context(), kid)
	if err != nil {
		t.Fatalf("Keys(%q): %v", kid, err)
	}
	if len(keys) == 0 || keys[0].ID != kid {
		t.Fatalf("Keys(%q) = %v", kid, keys)
	}
}

func ksWantErr(t *testing.T, j *auth.JWKS, kid string, want error) {
	t.Helper()
	keys, err := j.Keys(t.Context(), kid)
	if !errors.Is(err, want) {
		t.Fatalf("Keys(%q) = %v, %v; want %v", kid, keys, err, want)
	}
}

func ksWantFetches(t *testing.T, idp *ksIdP, want int64) {
	t.Helper()
	if got := idp.fetches.Load(); got != want {
		t.Fatalf("the IdP saw %d fetches, want %d", got, want)
	}
}

func TestJWKSRotation(t *testing.T) {
	k1 := ksRSAJWK("k1", &ksRSA().PublicKey)
	k2 := ksECJWK("k2", &ksP256().PublicKey)
	k3 := ksEdJWK("k3", ksEd().Public().(ed25519.PublicKey))
	idp := ksNewIdP(t, ksSet(k1))
	clock := ksNewClock()
	j := ksNewJWKS(t, idp, clock)

	ksWantKey(t, j, "k1") // waits for the first fetch
	ksWantFetches(t, idp, 1)

	// k2 appears. Within MinRefetchInterval of the last fetch, an unknown
	// kid does not fetch.
	idp.serve(http.StatusOK, ksSet(k1, k2))
	ksWantErr(t, j, "k2", auth.ErrUnknownKey)
	ksWantFetches(t, idp, 1)

	// Past it, the unknown kid refetches once and is found.
	clock.Advance(auth.DefaultJWKSMinRefetchInterval)
	ksWantKey(t, j, "k2")
	ksWantFetches(t, idp, 2)

	// k1 is removed and k3 added; after Refresh k1 is refused, without
	// another fetch (the refresh just happened).
	idp.serve(http.StatusOK, ksSet(k2, k3))
	if err := j.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ksWantFetches(t, idp, 3)
	ksWantErr(t, j, "k1", auth.ErrUnknownKey)
	ksWantKey(t, j, "k3")
	ksWantFetches(t, idp, 3)

	all, err := j.Keys(t.Context(), "")
	if err != nil || len(all) != 2 {
		t.Errorf(`Keys("") = %v, %v; want 2 keys`, all, err)
	}
}

func TestJWKSRefetchRateLimit(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	clock := ksNewClock()
	j := ksNewJWKS(t, idp, clock)
	ksWantKey(t, j, "k1")
	ksWantFetches(t, idp, 1)

	flood := func() {
		t.Helper()
		const workers, each = 8, 125 // 1,000 lookups
		var wg sync.WaitGroup
		var wrong atomic.Int64
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					_, err := j.Keys(t.Context(), fmt.Sprintf("random-%d-%d-%x", w, i, rand.Uint64()))
					if !errors.Is(err, auth.ErrUnknownKey) {
						wrong.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := wrong.Load(); n != 0 {
			t.Fatalf("%d lookups of random kids did not answer ErrUnknownKey", n)
		}
	}

	// Within the interval of the first fetch: no fetch at all.
	flood()
	ksWantFetches(t, idp, 1)

	// Past the interval: exactly one fetch, shared by whoever was waiting.
	clock.Advance(auth.DefaultJWKSMinRefetchInterval + time.Second)
	flood()
	ksWantFetches(t, idp, 2)
	flood()
	ksWantFetches(t, idp, 2)

	// Past it again: one more.
	clock.Advance(auth.DefaultJWKSMinRefetchInterval)
	flood()
	ksWantFetches(t, idp, 3)

	// A known kid never fetches.
	clock.Advance(time.Hour)
	ksWantKey(t, j, "k1")
	ksWantFetches(t, idp, 3)
}

// TestJWKSWithdrawnKeys: a set the IdP publishes with no usable key (an
// emergency revocation, or only keys our rules drop) replaces the last one:
// the withdrawn keys are refused, not kept.
func TestJWKSWithdrawnKeys(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"empty set", []byte(`{"keys":[]}`)},
		{"only dropped keys", ksSet(ksRSAJWK("weak", &ksRSAWeak().PublicKey), ksRSAJWK("k9", &ksRSA2().PublicKey).with("use", "enc"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
			j := ksNewJWKS(t, idp, ksNewClock())
			ksWantKey(t, j, "k1")
			idp.serve(http.StatusOK, tc.body)
			if err := j.Refresh(t.Context()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			ksWantErr(t, j, "k1", auth.ErrUnknownKey)
		})
	}
}

func TestJWKSKeepsLastGoodSet(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	clock := ksNewClock()
	j := ksNewJWKS(t, idp, clock)
	ksWantKey(t, j, "k1")

	tests := []struct {
		name    string
		status  int
		body    []byte
		wantErr string
	}{
		{"503", http.StatusServiceUnavailable, []byte("down"), "status 503"},
		{"500 with a set", http.StatusInternalServerError, ksSet(ksECJWK("k2", &ksP256().PublicKey)), "status 500"},
		{"404", http.StatusNotFound, nil, "status 404"},
		{"invalid JSON", http.StatusOK, []byte(`{"keys":[`), "invalid JSON"},
		{"HTML", http.StatusOK, []byte(`<html>`), "invalid JSON"},
		{"no keys member", http.StatusOK, []byte(`{}`), `no "keys" member`},
		{"too large", http.StatusOK, []byte(`{"keys":[],"pad":"` + strings.Repeat("x", auth.DefaultJWKSMaxBytes) + `"}`), "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idp.serve(tc.status, tc.body)
			err := j.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Refresh error %v, want it to contain %q", err, tc.wantErr)
			}
			ksWantKey(t, j, "k1")
			// An unknown kid past the interval fetches (and fails) once.
			before := idp.fetches.Load()
			clock.Advance(auth.DefaultJWKSMinRefetchInterval)
			ksWantErr(t, j, "k2", auth.ErrUnknownKey)
			ksWantErr(t, j, "k2", auth.ErrUnknownKey)
			ksWantFetches(t, idp, before+1)
			ksWantKey(t, j, "k1")
		})
	}

	t.Run("IdP gone", func(t *testing.T) {
		idp.serve(http.StatusOK, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
		idp.srv.Close()
		if err := j.Refresh(t.Context()); err == nil {
			t.Fatal("Refresh from a closed server succeeded")
		}
		ksWantKey(t, j, "k1")
	})
}

// Keys the IdP must not publish are dropped from a fetched set, though
// ParseJWKSet would keep them.
func TestJWKSDropsPublishedSecrets(t *testing.T) {
	idp := ksNewIdP(t, ksSet(
		ksRSAJWK("good", &ksRSA().PublicKey),
		ksOctJWK("hmac", make([]byte, 32)),
		ksECJWK("with-d", &ksP256().PublicKey).with("d", ksB64(ksP256().D.Bytes())),
		ksRSAJWK("with-p", &ksRSA2().PublicKey).with("p", "AQAB"),
	))
	var logged strings.Builder
	var mu sync.Mutex
	j, err := auth.NewJWKS(auth.JWKSConfig{
		URL:    idp.url(),
		Logger: slog.New(slog.NewTextHandler(ksWriterFunc(func(p []byte) { mu.Lock(); logged.Write(p); mu.Unlock() }), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ksWantKey(t, j, "good")
	for _, kid := range []string{"hmac", "with-d", "with-p"} {
		ksWantErr(t, j, kid, auth.ErrUnknownKey)
	}
	j.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{`kid \"hmac\"`, `kid \"with-d\"`, `kid \"with-p\"`, "JWKS key dropped"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log does not mention %s:\n%s", want, logged.String())
		}
	}
}

type ksWriterFunc func(p []byte)

func (f ksWriterFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestJWKSDownFromStart(t *testing.T) {
	idp := ksNewIdP(t, nil)
	idp.serve(http.StatusServiceUnavailable, []byte("starting"))
	clock := ksNewClock()
	j := ksNewJWKS(t, idp, clock) // does not fail

	// The first lookup waits for the first fetch, which fails: closed.
	ksWantErr(t, j, "k1", auth.ErrKeysUnavailable)
	ksWantErr(t, j, "", auth.ErrKeysUnavailable)
	ksWantFetches(t, idp, 1)
	if _, err := j.Keys(t.Context(), "k1"); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("error %v does not explain the failure", err)
	}

	// No storm: many lookups within the interval fetch nothing.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := j.Keys(t.Context(), "k1"); !errors.Is(err, auth.ErrKeysUnavailable) {
					t.Errorf("Keys = %v, want ErrKeysUnavailable", err)
					return
				}
			}
		})
	}
	wg.Wait()
	ksWantFetches(t, idp, 1)

	// One retry per interval.
	clock.Advance(auth.DefaultJWKSMinRefetchInterval)
	ksWantErr(t, j, "k1", auth.ErrKeysUnavailable)
	ksWantErr(t, j, "k1", auth.ErrKeysUnavailable)
	ksWantFetches(t, idp, 2)

	// The IdP comes up: the next retry loads the set.
	idp.serve(http.StatusOK, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	ksWantErr(t, j, "k1", auth.ErrKeysUnavailable)
	clock.Advance(auth.DefaultJWKSMinRefetchInterval)
	ksWantKey(t, j, "k1")
	ksWantFetches(t, idp, 3)
}

func TestJWKSUnreachableFromStart(t *testing.T) {
	idp := ksNewIdP(t, nil)
	idp.srv.Close() // nothing listens
	j := ksNewJWKS(t, idp, ksNewClock())
	ksWantErr(t, j, "k1", auth.ErrKeysUnavailable)
	if err := j.Refresh(t.Context()); err == nil {
		t.Error("Refresh succeeded with no server")
	}
}

func TestJWKSContextCancelled(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	release := make(chan struct{})
	idp.mu.Lock()
	idp.block = release
	idp.mu.Unlock()
	j := ksNewJWKS(t, idp, ksNewClock())
	<-idp.hits // the first fetch is in the IdP, held

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := j.Keys(ctx, "k1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Keys with a cancelled context = %v, want context.Canceled", err)
	}
	if err := j.Refresh(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Refresh with a cancelled context = %v, want context.Canceled", err)
	}
	// The fetch goes on for those who wait.
	close(release)
	ksWantKey(t, j, "k1")
	ksWantFetches(t, idp, 1)
}

// Close ends a fetch in flight and the refresh loop (goleak checks that no
// goroutine is left); the JWKS keeps answering from its last set.
func TestJWKSClose(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	clock := ksNewClock()
	j := ksNewJWKS(t, idp, clock)
	ksWantKey(t, j, "k1")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j.Close() // twice is fine
	clock.Advance(time.Hour)
	ksWantKey(t, j, "k1")
	ksWantErr(t, j, "k2", auth.ErrUnknownKey)
	if err := j.Refresh(t.Context()); err == nil {
		t.Error("Refresh after Close succeeded")
	}
	ksWantFetches(t, idp, 1)

	// Closed while the first fetch hangs.
	idp2 := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	idp2.mu.Lock()
	idp2.block = make(chan struct{}) // never released
	idp2.mu.Unlock()
	j2 := ksNewJWKS(t, idp2, ksNewClock())
	<-idp2.hits
	j2.Close()
	ksWantErr(t, j2, "k1", auth.ErrKeysUnavailable)
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	j, err := auth.NewJWKS(auth.JWKSConfig{URL: idp.url(), Logger: ksQuiet(), RefreshInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ksWantKey(t, j, "k1")
	idp.serve(http.StatusOK, ksSet(ksECJWK("k2", &ksP256().PublicKey)))
	// Fetches are sequential: once fetch n+2 has begun, fetch n+1, which
	// began after the change, has been stored.
	target := idp.fetches.Load() + 2
	timeout := time.After(10 * time.Second)
	for n := int64(0); n < target; {
		select {
		case n = <-idp.hits:
		case <-timeout:
			t.Fatalf("the background refresh did not fetch (%d fetches)", idp.fetches.Load())
		}
	}
	// Well within MinRefetchInterval of the last fetch: only the background
	// refresh can have loaded k2 and removed k1.
	ksWantKey(t, j, "k2")
	ksWantErr(t, j, "k1", auth.ErrUnknownKey)
}

func TestNewJWKSConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     auth.JWKSConfig
		wantErr string
	}{
		{"no URL", auth.JWKSConfig{}, "JWKSConfig.URL: required"},
		{"relative URL", auth.JWKSConfig{URL: "/jwks"}, "want an absolute http or https URL"},
		{"ftp", auth.JWKSConfig{URL: "ftp://idp.example/jwks"}, "want an absolute http or https URL"},
		{"bad URL", auth.JWKSConfig{URL: "http://[::1"}, "JWKSConfig.URL"},
		{"password not echoed", auth.JWKSConfig{URL: "file://user:hunter2@idp/jwks"}, "xxxxx"},
		{"negative refresh", auth.JWKSConfig{URL: "https://idp.example/jwks", RefreshInterval: -1}, "RefreshInterval"},
		{"negative refetch", auth.JWKSConfig{URL: "https://idp.example/jwks", MinRefetchInterval: -1}, "MinRefetchInterval"},
		{"negative max bytes", auth.JWKSConfig{URL: "https://idp.example/jwks", MaxBytes: -1}, "MaxBytes"},
		{"plain http to a remote host", auth.JWKSConfig{URL: "http://idp.example/jwks"}, "AllowInsecureHTTP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := auth.NewJWKS(tc.cfg)
			if err == nil {
				j.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// A lookup of a known kid is a map access: no allocation.
func TestJWKSKeysWarmAllocs(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey), ksECJWK("k2", &ksP256().PublicKey)))
	j := ksNewJWKS(t, idp, ksNewClock())
	ksWantKey(t, j, "k1")
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { j.Keys(ctx, "k2") }); n != 0 {
		t.Errorf("a warm lookup allocates %v times, want 0", n)
	}
}

// BenchmarkJWKSKeysWarm measures the lookup of a known kid in a loaded set.
// Target: a few ns, 0 allocs/op.
func BenchmarkJWKSKeysWarm(b *testing.B) {
	set := []ksJWK{ksRSAJWK("k1", &ksRSA().PublicKey), ksECJWK("k2", &ksP256().PublicKey), ksEdJWK("k3", ksEd().Public().(ed25519.PublicKey))}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(ksSet(set...)) }))
	defer srv.Close()
	j, err := auth.NewJWKS(auth.JWKSConfig{URL: srv.URL, Logger: ksQuiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	if err := j.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Keys(ctx, "k2"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJWKSOnRefresh checks that every fetch's outcome reaches OnRefresh,
// with the URL to name it.
func TestJWKSOnRefresh(t *testing.T) {
	idp := ksNewIdP(t, ksSet(ksRSAJWK("k1", &ksRSA().PublicKey)))
	var mu sync.Mutex
	var got []string
	j, err := auth.NewJWKS(auth.JWKSConfig{
		URL: idp.url(), Logger: ksQuiet(), RefreshInterval: time.Hour,
		OnRefresh: func(source string, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				got = append(got, source+" error")
			} else {
				got = append(got, source+" ok")
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	idp.serve(http.StatusServiceUnavailable, nil)
	j.Refresh(t.Context())
	mu.Lock()
	defer mu.Unlock()
	// The first fetch may also have run in the background at start.
	if n := len(got); n < 2 || got[n-2] != idp.url()+" ok" || got[n-1] != idp.url()+" error" {
		t.Fatalf("OnRefresh heard %q", got)
	}
}
