package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
	"github.com/golang-jwt/jwt/v5"
)

// TestJWTWithJWKS runs the JWT authenticator against keys an identity
// provider serves over HTTP: rotation, a flood of unknown kids, and the IdP
// going down, each seen through a gateway pipeline.
func TestJWTWithJWKS(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idp := ksNewIdP(t, ksSet(ksECJWK("k1", &k1.PublicKey)))
	clock := ksNewClock()
	keys := ksNewJWKS(t, idp, clock)
	a, err := auth.JWT(auth.JWTConfig{Keys: keys, Issuers: []string{"https://idp.test"}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := gateway.NewPipeline(okUpstream, gateway.Authenticate(a))
	p.Options.Logger = ksQuiet()
	sign := func(kid string, key *ecdsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": "https://idp.test", "sub": "u1", "exp": clock.Now().Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	call := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		return rec
	}
	want := func(token string, status int, inChallenge string) {
		t.Helper()
		rec := call(token)
		if rec.Code != status || !strings.Contains(rec.Header().Get("WWW-Authenticate"), inChallenge) {
			t.Fatalf("status %d, challenge %q; want %d with %q", rec.Code, rec.Header().Get("WWW-Authenticate"), status, inChallenge)
		}
	}

	want(sign("k1", k1), 200, "")
	ksWantFetches(t, idp, 1)

	// Rotation: the IdP now publishes k2 only. Inside the refetch interval
	// a token with the new kid is refused without a fetch; past it, one
	// fetch picks up k2 and drops k1.
	idp.serve(http.StatusOK, ksSet(ksECJWK("k2", &k2.PublicKey)))
	want(sign("k2", k2), 401, "unknown key ID")
	ksWantFetches(t, idp, 1)
	clock.Advance(auth.DefaultJWKSMinRefetchInterval + time.Second)
	want(sign("k2", k2), 200, "")
	ksWantFetches(t, idp, 2)
	want(sign("k1", k1), 401, "unknown key ID")

	// A flood of random kids costs the IdP nothing more inside the interval.
	for i := range 1000 {
		want(sign(fmt.Sprintf("random-%d", i), k2), 401, "unknown key ID")
	}
	ksWantFetches(t, idp, 2)

	// The IdP goes down: the last good set keeps serving.
	idp.serve(http.StatusServiceUnavailable, []byte("down"))
	clock.Advance(auth.DefaultJWKSMinRefetchInterval + time.Second)
	want(sign("k-unknown", k2), 401, "unknown key ID") // one refetch, which fails
	ksWantFetches(t, idp, 3)
	want(sign("k2", k2), 200, "")
}

// TestJWTFailsClosedWithoutKeys: an IdP that was never reachable makes the
// gateway refuse tokens with 503, never accept them unchecked.
func TestJWTFailsClosedWithoutKeys(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idp := ksNewIdP(t, nil)
	idp.serve(http.StatusInternalServerError, []byte("no"))
	clock := ksNewClock()
	keys := ksNewJWKS(t, idp, clock)
	a, err := auth.JWT(auth.JWTConfig{Keys: keys, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "u1", "exp": clock.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	s, _ := tok.SignedString(k1)
	p := gateway.NewPipeline(okUpstream, gateway.Authenticate(a))
	p.Options.Logger = ksQuiet()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+s)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if strings.Contains(rec.Body.String(), s) {
		t.Fatal("the token was echoed")
	}
}
