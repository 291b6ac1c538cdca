package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
	"github.com/golang-jwt/jwt/v5"
)

// jwtNow is the fixed clock of the JWT tests.
var jwtNow = time.Unix(1_700_000_000, 0)

func jwtClock() time.Time { return jwtNow }

const (
	jwtIssuer   = "https://idp.example"
	jwtAudience = "api"
	jwtRealm    = "api"
)

// jwtFixture holds the test keys, made once: RSA generation is slow.
type jwtFixture struct {
	rsa, attacker          *rsa.PrivateKey
	ec256, ec384, ec521    *ecdsa.PrivateKey
	ed                     ed25519.PrivateKey
	hs256, hs384, hs512    []byte
	rsaPEM, rsaDER         []byte
	attackerJWK, attackerC string // the attacker's public key as a JWK, and a certificate (base64 DER)
}

var jwtKeysOnce = sync.OnceValue(func() *jwtFixture {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	f := new(jwtFixture)
	var err error
	f.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.attacker, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	f.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	f.ec521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(err)
	_, f.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	f.hs256, f.hs384, f.hs512 = jwtRandom(32), jwtRandom(48), jwtRandom(64)
	f.rsaDER, err = x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
	must(err)
	f.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: f.rsaDER})
	b64 := base64.RawURLEncoding.EncodeToString
	jwk, _ := json.Marshal(map[string]string{
		"kty": "RSA", "kid": "rs", "alg": "RS256",
		"n": b64(f.attacker.N.Bytes()), "e": b64(big.NewInt(int64(f.attacker.E)).Bytes()),
	})
	f.attackerJWK = string(jwk)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example"},
		NotBefore: jwtNow.Add(-time.Hour), NotAfter: jwtNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.attacker.PublicKey, f.attacker)
	must(err)
	f.attackerC = base64.StdEncoding.EncodeToString(der)
	return f
})

func jwtRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// jwtKeys is a KeySource over a fixed list, as the interface documents it.
type jwtKeys []auth.Key

func (ks jwtKeys) Keys(ctx context.Context, kid string) ([]auth.Key, error) {
	if kid == "" {
		return ks, nil
	}
	var out []auth.Key
	for _, k := range ks {
		if k.ID == kid {
			out = append(out, k)
		}
	}
	if out == nil {
		return nil, auth.ErrUnknownKey
	}
	return out, nil
}

// jwtKeyFunc adapts a function to a KeySource.
type jwtKeyFunc func(ctx context.Context, kid string) ([]auth.Key, error)

func (f jwtKeyFunc) Keys(ctx context.Context, kid string) ([]auth.Key, error) { return f(ctx, kid) }

func (f *jwtFixture) keys() jwtKeys {
	return jwtKeys{
		{ID: "hs256", Algorithms: []string{"HS256"}, Key: f.hs256},
		{ID: "hs384", Algorithms: []string{"HS384"}, Key: f.hs384},
		{ID: "hs512", Algorithms: []string{"HS512"}, Key: f.hs512},
		// One RSA key under three IDs, pinned to different algorithms.
		{ID: "rs", Algorithms: []string{"RS256", "RS384", "RS512"}, Key: &f.rsa.PublicKey},
		{ID: "rs256", Algorithms: []string{"RS256"}, Key: &f.rsa.PublicKey},
		{ID: "ps", Algorithms: []string{"PS256", "PS384", "PS512"}, Key: &f.rsa.PublicKey},
		{ID: "es256", Algorithms: []string{"ES256"}, Key: &f.ec256.PublicKey},
		{ID: "es384", Algorithms: []string{"ES384"}, Key: &f.ec384.PublicKey},
		{ID: "es512", Algorithms: []string{"ES512"}, Key: &f.ec521.PublicKey},
		{ID: "ed", Algorithms: []string{"EdDSA"}, Key: f.ed.Public()},
	}
}

// jwtClaims returns valid claims, changed by edits ("key": nil deletes).
func jwtClaims(edits map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":   "alice",
		"iss":   jwtIssuer,
		"aud":   jwtAudience,
		"exp":   jwtNow.Unix() + 300,
		"iat":   jwtNow.Unix() - 10,
		"nbf":   jwtNow.Unix() - 10,
		"scope": "read write",
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// jwtSign signs claims with method and key; header adds to (or, with nil
// values, removes from) the header golang-jwt writes.
func jwtSign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// jwtCraft builds a token by hand: any header, any claims, any signature.
func jwtCraft(header, claims any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	b64 := base64.RawURLEncoding.EncodeToString
	return b64(h) + "." + b64(c) + "." + b64(sig)
}

func jwtNew(t testing.TB, cfg auth.JWTConfig) *auth.JWTAuthenticator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = jwtClock
	}
	if cfg.Realm == "" {
		cfg.Realm = jwtRealm
	}
	a, err := auth.JWT(cfg)
	if err != nil {
		t.Fatalf("auth.JWT: %v", err)
	}
	return a
}

// jwtUpstream answers with the principal it sees.
var jwtUpstream = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	p := req.Principal
	body, _ := json.Marshal(map[string]any{"sub": p.Subject, "iss": p.Issuer, "scopes": p.Scopes})
	return gateway.NewResponse(http.StatusOK, nil, body), nil
})

// jwtServe sends a request through a pipeline guarded by a.
func jwtServe(a gateway.Authenticator, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	gateway.NewPipeline(jwtUpstream, gateway.Authenticate(a)).ServeHTTP(rec, r)
	return rec
}

func jwtBearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

type jwtCase struct {
	name   string
	token  string
	status int    // 0 means 401
	desc   string // the error_description and problem detail of a refusal
}

// jwtCheckRefusal asserts the exact status, the RFC 6750 error code and
// description, and that the reply does not echo the token.
func jwtCheckRefusal(t *testing.T, rec *httptest.ResponseRecorder, token string, status int, code, desc string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	want := `Bearer realm="` + jwtRealm + `", error="` + code + `", error_description="` + desc + `"`
	if got := rec.Header().Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate %q\nwant %q", got, want)
	}
	var problem struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &problem); err != nil {
		t.Fatalf("problem: %v: %s", err, rec.Body)
	}
	if problem.Status != status || problem.Detail != desc || problem.Error != code {
		t.Errorf("problem %+v, want status %d detail %q error %q", problem, status, desc, code)
	}
	jwtAssertNoEcho(t, rec, token)
}

// jwtAssertNoEcho fails if any part of the token shows up in the reply.
func jwtAssertNoEcho(t *testing.T, rec *httptest.ResponseRecorder, token string) {
	t.Helper()
	reply := rec.Body.String()
	for k, v := range rec.Header() {
		reply += k + ": " + strings.Join(v, ", ") + "\n"
	}
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) >= 8 && strings.Contains(reply, part) {
			t.Errorf("the reply echoes the token (%q): %s", part, reply)
		}
	}
}

func jwtRun(t *testing.T, a gateway.Authenticator, cases []jwtCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := jwtServe(a, jwtBearerRequest(tc.token))
			if tc.status == http.StatusOK {
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d, want 200; WWW-Authenticate %q; body %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
				}
				if !strings.Contains(rec.Body.String(), `"sub":"alice"`) {
					t.Errorf("upstream saw %s, want subject alice", rec.Body)
				}
				return
			}
			status := tc.status
			if status == 0 {
				status = http.StatusUnauthorized
			}
			jwtCheckRefusal(t, rec, tc.token, status, auth.CodeInvalidToken, tc.desc)
		})
	}
}

// TestJWTAttacks is the JWT attack catalogue: each forgery, confusion and
// stale token, with the exact status, error code and description.
func TestJWTAttacks(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{
		Keys:      f.keys(),
		Issuers:   []string{jwtIssuer, "https://other.example"},
		Audiences: []string{jwtAudience},
	})
	now := jwtNow.Unix()
	valid := jwtClaims(nil)
	hs := func(header map[string]any, claims jwt.MapClaims) string {
		if header == nil {
			header = map[string]any{"kid": "hs256"}
		}
		return jwtSign(t, jwt.SigningMethodHS256, f.hs256, header, claims)
	}
	kidHS := map[string]any{"kid": "hs256"}
	validHS := hs(nil, valid)
	segs := strings.Split(validHS, ".")

	var cases []jwtCase
	// alg none in its spellings, unsigned, with and without a kid and a
	// trailing signature.
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		cases = append(cases,
			jwtCase{name: "alg " + alg, token: jwtCraft(map[string]any{"alg": alg, "typ": "JWT"}, valid, nil), desc: "unsupported algorithm"},
			jwtCase{name: "alg " + alg + " with kid", token: jwtCraft(map[string]any{"alg": alg, "kid": "hs256"}, valid, nil), desc: "unsupported algorithm"},
			jwtCase{name: "alg " + alg + " with signature", token: jwtCraft(map[string]any{"alg": alg, "kid": "hs256"}, valid, []byte("sig")), desc: "unsupported algorithm"},
		)
	}
	cases = append(cases, []jwtCase{
		{name: "valid", token: validHS, status: http.StatusOK},
		// The HMAC-with-the-public-key confusion: the attacker knows the
		// public key and uses it as an HMAC secret.
		{name: "HS256 with RSA public key PEM", token: jwtSign(t, jwt.SigningMethodHS256, f.rsaPEM, map[string]any{"kid": "rs"}, valid), desc: "algorithm not allowed for this key"},
		{name: "HS256 with RSA public key DER", token: jwtSign(t, jwt.SigningMethodHS256, f.rsaDER, map[string]any{"kid": "rs"}, valid), desc: "algorithm not allowed for this key"},
		{name: "HS256 with RSA public key PEM no kid", token: jwtSign(t, jwt.SigningMethodHS256, f.rsaPEM, nil, valid), desc: "bad signature"},
		{name: "HS512 with RSA public key PEM kid rs256", token: jwtSign(t, jwt.SigningMethodHS512, f.rsaPEM, map[string]any{"kid": "rs256"}, valid), desc: "algorithm not allowed for this key"},
		{name: "RS384 on key pinned to RS256", token: jwtSign(t, jwt.SigningMethodRS384, f.rsa, map[string]any{"kid": "rs256"}, valid), desc: "algorithm not allowed for this key"},
		{name: "HS384 on key pinned to HS256", token: jwtSign(t, jwt.SigningMethodHS384, f.hs256, kidHS, valid), desc: "algorithm not allowed for this key"},
		{name: "ES256 on EdDSA key", token: jwtSign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ed"}, valid), desc: "algorithm not allowed for this key"},
		{name: "PS256 on RS-pinned key", token: jwtSign(t, jwt.SigningMethodPS256, f.rsa, map[string]any{"kid": "rs"}, valid), desc: "algorithm not allowed for this key"},
		{name: "RS256 on PS-pinned key", token: jwtSign(t, jwt.SigningMethodRS256, f.rsa, map[string]any{"kid": "ps"}, valid), desc: "algorithm not allowed for this key"},
		{name: "unregistered alg", token: jwtCraft(map[string]any{"alg": "HS1", "kid": "hs256"}, valid, []byte("x")), desc: "unsupported algorithm"},
		{name: "alg missing", token: jwtCraft(map[string]any{"kid": "hs256"}, valid, []byte("x")), desc: "unsupported algorithm"},
		{name: "alg not a string", token: jwtCraft(map[string]any{"alg": 256, "kid": "hs256"}, valid, []byte("x")), desc: "unsupported algorithm"},

		{name: "expired", token: hs(nil, jwtClaims(map[string]any{"exp": now - 1})), desc: "token expired"},
		{name: "exp == now", token: hs(nil, jwtClaims(map[string]any{"exp": now})), desc: "token expired"},
		{name: "exp == now+1", token: hs(nil, jwtClaims(map[string]any{"exp": now + 1})), status: http.StatusOK},
		{name: "exp 0", token: hs(nil, jwtClaims(map[string]any{"exp": 0})), desc: "missing exp"},
		{name: "nbf in the future", token: hs(nil, jwtClaims(map[string]any{"nbf": now + 1})), desc: "token not valid yet"},
		{name: "nbf == now", token: hs(nil, jwtClaims(map[string]any{"nbf": now})), status: http.StatusOK},
		{name: "iat in the future", token: hs(nil, jwtClaims(map[string]any{"iat": now + 1})), desc: "issued in the future"},
		{name: "iat == now", token: hs(nil, jwtClaims(map[string]any{"iat": now})), status: http.StatusOK},
		{name: "missing exp", token: hs(nil, jwtClaims(map[string]any{"exp": nil})), desc: "missing exp"},
		{name: "exp as a string", token: hs(nil, jwtClaims(map[string]any{"exp": strconv.FormatInt(now+300, 10)})), desc: "invalid exp"},
		{name: "nbf as a string", token: hs(nil, jwtClaims(map[string]any{"nbf": "0"})), desc: "invalid nbf"},
		{name: "iat as a bool", token: hs(nil, jwtClaims(map[string]any{"iat": true})), desc: "invalid iat"},
		{name: "wrong iss", token: hs(nil, jwtClaims(map[string]any{"iss": "https://evil.example"})), desc: "wrong issuer"},
		{name: "iss prefix of an accepted one", token: hs(nil, jwtClaims(map[string]any{"iss": "https://idp.exampl"})), desc: "wrong issuer"},
		{name: "second accepted iss", token: hs(nil, jwtClaims(map[string]any{"iss": "https://other.example"})), status: http.StatusOK},
		{name: "missing iss", token: hs(nil, jwtClaims(map[string]any{"iss": nil})), desc: "missing iss"},
		{name: "iss not a string", token: hs(nil, jwtClaims(map[string]any{"iss": []string{jwtIssuer}})), desc: "invalid iss"},
		{name: "sub not a string", token: hs(nil, jwtClaims(map[string]any{"sub": 42})), desc: "invalid sub"},
		{name: "wrong aud", token: hs(nil, jwtClaims(map[string]any{"aud": "other"})), desc: "wrong audience"},
		{name: "wrong aud list", token: hs(nil, jwtClaims(map[string]any{"aud": []string{"a", "b"}})), desc: "wrong audience"},
		{name: "aud list with ours", token: hs(nil, jwtClaims(map[string]any{"aud": []string{"other", jwtAudience}})), status: http.StatusOK},
		{name: "missing aud", token: hs(nil, jwtClaims(map[string]any{"aud": nil})), desc: "missing aud"},
		{name: "empty aud", token: hs(nil, jwtClaims(map[string]any{"aud": ""})), desc: "missing aud"},
		{name: "aud not strings", token: hs(nil, jwtClaims(map[string]any{"aud": []any{1}})), desc: "invalid aud"},
		{name: "unknown kid", token: hs(map[string]any{"kid": "nope"}, valid), desc: "unknown key ID"},
		{name: "kid with path characters", token: hs(map[string]any{"kid": "../../etc/passwd"}, valid), desc: "unknown key ID"},
		{name: "kid with NUL", token: hs(map[string]any{"kid": "hs256\x00"}, valid), desc: "unknown key ID"},
		{name: "kid not a string", token: hs(map[string]any{"kid": 1}, valid), desc: "malformed key ID"},
		{name: "no kid tries every pinned key", token: hs(map[string]any{}, valid), status: http.StatusOK},
		{name: "unknown crit", token: hs(map[string]any{"kid": "hs256", "crit": []string{"exp-ext"}, "exp-ext": 1}, valid), desc: "unsupported critical header"},
		{name: "crit naming a registered header", token: hs(map[string]any{"kid": "hs256", "crit": []string{"kid"}}, valid), desc: "unsupported critical header"},
		{name: "crit empty", token: hs(map[string]any{"kid": "hs256", "crit": []string{}}, valid), desc: "unsupported critical header"},
		{name: "crit not an array", token: hs(map[string]any{"kid": "hs256", "crit": "b64"}, valid), desc: "unsupported critical header"},
		{name: "crit null", token: hs(map[string]any{"kid": "hs256", "crit": json.RawMessage("null")}, valid), desc: "unsupported critical header"},
		{name: "truncated (2 segments)", token: segs[0] + "." + segs[1], desc: "malformed token"},
		{name: "1 segment", token: segs[0], desc: "malformed token"},
		{name: "extra segments (4)", token: validHS + "." + segs[2], desc: "malformed token"},
		{name: "5 segments (JWE shape)", token: segs[0] + ".." + segs[1] + "." + segs[2] + "." + segs[2], desc: "malformed token"},
		{name: "bad base64 in header", token: "eyJ+bGci." + segs[1] + "." + segs[2], desc: "malformed token"},
		{name: "padded base64", token: segs[0] + "." + segs[1] + "." + segs[2] + "=", desc: "malformed token"},
		{name: "bad base64 in payload", token: segs[0] + "." + segs[1][:len(segs[1])-1] + "/." + segs[2], desc: "malformed token"},
		{name: "bad base64 in signature", token: segs[0] + "." + segs[1] + "." + segs[2] + "AA", desc: "malformed token"},
		{name: "non-canonical base64 in signature", token: segs[0] + "." + segs[1] + "." + jwtNonCanonical(segs[2]), desc: "malformed token"},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("{alg")) + "." + segs[1] + "." + segs[2], desc: "malformed token"},
		{name: "payload not an object", token: jwtCraft(map[string]any{"alg": "HS256"}, []int{1}, []byte("x")), desc: "malformed token"},
		{name: "empty signature", token: segs[0] + "." + segs[1] + ".", desc: "bad signature"},
		{name: "flipped signature", token: segs[0] + "." + segs[1] + "." + jwtFlip(segs[2]), desc: "bad signature"},
		{name: "tampered payload", token: segs[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"`+jwtIssuer+`","aud":"api","exp":9999999999}`)) + "." + segs[2], desc: "bad signature"},
		{name: "signed by another HMAC secret", token: jwtSign(t, jwt.SigningMethodHS256, jwtRandom(32), kidHS, valid), desc: "bad signature"},
		{name: "RS256 signed by the attacker under our kid", token: jwtSign(t, jwt.SigningMethodRS256, f.attacker, map[string]any{"kid": "rs"}, valid), desc: "bad signature"},
	}...)
	jwtRun(t, a, cases)
}

// jwtNonCanonical changes the unused low bits of the last base64url character,
// which a lax decoder maps to the same bytes.
func jwtNonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

// jwtFlip changes one signature byte.
func jwtFlip(seg string) string {
	b, _ := base64.RawURLEncoding.DecodeString(seg)
	b[0] ^= 0xff
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestJWTAlgorithms accepts a valid token for every supported algorithm,
// with and without a kid.
func TestJWTAlgorithms(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), Issuers: []string{jwtIssuer}, Audiences: []string{jwtAudience}})
	valid := jwtClaims(nil)
	for _, tc := range []struct {
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{jwt.SigningMethodHS256, f.hs256, "hs256"},
		{jwt.SigningMethodHS384, f.hs384, "hs384"},
		{jwt.SigningMethodHS512, f.hs512, "hs512"},
		{jwt.SigningMethodRS256, f.rsa, "rs"},
		{jwt.SigningMethodRS384, f.rsa, "rs"},
		{jwt.SigningMethodRS512, f.rsa, "rs"},
		{jwt.SigningMethodPS256, f.rsa, "ps"},
		{jwt.SigningMethodPS384, f.rsa, "ps"},
		{jwt.SigningMethodPS512, f.rsa, "ps"},
		{jwt.SigningMethodES256, f.ec256, "es256"},
		{jwt.SigningMethodES384, f.ec384, "es384"},
		{jwt.SigningMethodES512, f.ec521, "es512"},
		{jwt.SigningMethodEdDSA, f.ed, "ed"},
	} {
		for _, kid := range []string{tc.kid, ""} {
			name := tc.method.Alg() + "/kid=" + kid
			t.Run(name, func(t *testing.T) {
				header := map[string]any{"kid": kid}
				if kid == "" {
					header = nil
				}
				token := jwtSign(t, tc.method, tc.key, header, valid)
				p, err := a.Verify(t.Context(), token)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Subject != "alice" || p.Issuer != jwtIssuer || !slices.Equal(p.Scopes, []string{"read", "write"}) {
					t.Errorf("principal %+v", p)
				}
				if p.Claims["aud"] != jwtAudience {
					t.Errorf("claims %v", p.Claims)
				}
			})
		}
	}
}

// TestJWTHeaderKeysNeverUsed sends tokens signed by an attacker whose key is
// named by jku, x5u, jwk or x5c. They must be refused without the gateway
// ever fetching the attacker's URL.
func TestJWTHeaderKeysNeverUsed(t *testing.T) {
	f := jwtKeysOnce()
	var hits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[` + f.attackerJWK + `]}`))
	}))
	t.Cleanup(attacker.Close)
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), Issuers: []string{jwtIssuer}, Audiences: []string{jwtAudience}})

	var jwk map[string]any
	json.Unmarshal([]byte(f.attackerJWK), &jwk)
	params := map[string]any{
		"jku": attacker.URL + "/jwks.json",
		"x5u": attacker.URL + "/cert.pem",
		"jwk": jwk,
		"x5c": []string{f.attackerC},
	}
	var cases []jwtCase
	for _, name := range []string{"jku", "x5u", "jwk", "x5c"} {
		for _, kid := range []string{"rs", "", "attacker"} {
			header := map[string]any{name: params[name]}
			desc := "bad signature"
			switch kid {
			case "":
			case "attacker":
				header["kid"] = kid
				desc = "unknown key ID"
			default:
				header["kid"] = kid
			}
			cases = append(cases, jwtCase{
				name:  name + "/kid=" + kid,
				token: jwtSign(t, jwt.SigningMethodRS256, f.attacker, header, jwtClaims(nil)),
				desc:  desc,
			})
		}
	}
	jwtRun(t, a, cases)
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's server saw %d requests, want 0", n)
	}
}

// TestJWTType checks the typ header against JWTConfig.Type (RFC 9068).
func TestJWTType(t *testing.T) {
	f := jwtKeysOnce()
	for _, typ := range []string{"at+jwt", "application/AT+JWT"} {
		a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), Type: typ})
		tok := func(typ any) string {
			return jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256", "typ": typ}, jwtClaims(nil))
		}
		t.Run(typ, func(t *testing.T) {
			jwtRun(t, a, []jwtCase{
				{name: "at+jwt", token: tok("at+jwt"), status: http.StatusOK},
				{name: "AT+JWT", token: tok("AT+JWT"), status: http.StatusOK},
				{name: "application/at+jwt", token: tok("application/at+jwt"), status: http.StatusOK},
				{name: "JWT", token: tok("JWT"), desc: "wrong token type"},
				{name: "missing", token: jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256", "typ": nil}, jwtClaims(nil)), desc: "wrong token type"},
				{name: "not a string", token: tok(1), desc: "wrong token type"},
				{name: "other prefix", token: tok("text/at+jwt"), desc: "wrong token type"},
				{name: "prefix only", token: tok("application/"), desc: "wrong token type"},
			})
		})
	}
	// Without Type any typ is accepted.
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys()})
	jwtRun(t, a, []jwtCase{{name: "any typ", token: jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256", "typ": "whatever"}, jwtClaims(nil)), status: http.StatusOK}})
}

// TestJWTCritical accepts the crit extensions the application names, and
// only when the crit header is well formed.
func TestJWTCritical(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), Critical: []string{"ext", "ext2"}})
	tok := func(header map[string]any) string {
		header["kid"] = "hs256"
		return jwtSign(t, jwt.SigningMethodHS256, f.hs256, header, jwtClaims(nil))
	}
	jwtRun(t, a, []jwtCase{
		{name: "understood", token: tok(map[string]any{"crit": []string{"ext"}, "ext": true}), status: http.StatusOK},
		{name: "both understood", token: tok(map[string]any{"crit": []string{"ext", "ext2"}, "ext": 1, "ext2": 2}), status: http.StatusOK},
		{name: "extension present, not critical", token: tok(map[string]any{"other": 1}), status: http.StatusOK},
		{name: "one not understood", token: tok(map[string]any{"crit": []string{"ext", "other"}, "ext": 1, "other": 2}), desc: "unsupported critical header"},
		{name: "listed but absent", token: tok(map[string]any{"crit": []string{"ext"}}), desc: "unsupported critical header"},
		{name: "repeated", token: tok(map[string]any{"crit": []string{"ext", "ext"}, "ext": 1}), desc: "unsupported critical header"},
		{name: "registered name", token: tok(map[string]any{"crit": []string{"alg"}}), desc: "unsupported critical header"},
		{name: "empty", token: tok(map[string]any{"crit": []string{}}), desc: "unsupported critical header"},
		{name: "not strings", token: tok(map[string]any{"crit": []int{1}}), desc: "unsupported critical header"},
		{name: "object", token: tok(map[string]any{"crit": map[string]any{"ext": true}, "ext": 1}), desc: "unsupported critical header"},
	})
}

// TestJWTLeeway tolerates clock skew up to Leeway and not beyond.
func TestJWTLeeway(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), Leeway: 30 * time.Second})
	now := jwtNow.Unix()
	tok := func(edits map[string]any) string {
		return jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256"}, jwtClaims(edits))
	}
	jwtRun(t, a, []jwtCase{
		{name: "expired within leeway", token: tok(map[string]any{"exp": now - 29}), status: http.StatusOK},
		{name: "expired at leeway", token: tok(map[string]any{"exp": now - 30}), desc: "token expired"},
		{name: "expired beyond leeway", token: tok(map[string]any{"exp": now - 31}), desc: "token expired"},
		{name: "nbf within leeway", token: tok(map[string]any{"nbf": now + 30}), status: http.StatusOK},
		{name: "nbf beyond leeway", token: tok(map[string]any{"nbf": now + 31}), desc: "token not valid yet"},
		{name: "iat within leeway", token: tok(map[string]any{"iat": now + 30}), status: http.StatusOK},
		{name: "iat beyond leeway", token: tok(map[string]any{"iat": now + 31}), desc: "issued in the future"},
	})
}

// TestJWTAllowMissingExp accepts tokens without exp only when configured,
// and still refuses "exp": 0.
func TestJWTAllowMissingExp(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), AllowMissingExp: true})
	tok := func(edits map[string]any) string {
		return jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256"}, jwtClaims(edits))
	}
	jwtRun(t, a, []jwtCase{
		{name: "no exp", token: tok(map[string]any{"exp": nil}), status: http.StatusOK},
		{name: "exp 0", token: tok(map[string]any{"exp": 0}), desc: "token expired"},
		{name: "expired", token: tok(map[string]any{"exp": jwtNow.Unix() - 1}), desc: "token expired"},
	})
}

// TestJWTAlgorithmAllowList intersects JWTConfig.Algorithms with each key's
// pinned algorithms.
func TestJWTAlgorithmAllowList(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), Algorithms: []string{"RS256", "EdDSA"}})
	jwtRun(t, a, []jwtCase{
		{name: "RS256", token: jwtSign(t, jwt.SigningMethodRS256, f.rsa, map[string]any{"kid": "rs"}, jwtClaims(nil)), status: http.StatusOK},
		{name: "EdDSA", token: jwtSign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "ed"}, jwtClaims(nil)), status: http.StatusOK},
		{name: "HS256 pinned on the key but not allowed", token: jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256"}, jwtClaims(nil)), desc: "unsupported algorithm"},
		{name: "RS384 pinned on the key but not allowed", token: jwtSign(t, jwt.SigningMethodRS384, f.rsa, map[string]any{"kid": "rs"}, jwtClaims(nil)), desc: "unsupported algorithm"},
	})
}

// TestJWTKeySource covers what a key source may answer: several keys under
// one kid, errors, keys it should not have returned.
func TestJWTKeySource(t *testing.T) {
	f := jwtKeysOnce()
	old, current := jwtRandom(32), jwtRandom(32)
	tokWith := func(secret []byte, kid string) string {
		return jwtSign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": kid}, jwtClaims(nil))
	}

	t.Run("several keys under one kid", func(t *testing.T) {
		a := jwtNew(t, auth.JWTConfig{Keys: jwtKeys{
			{ID: "k", Algorithms: []string{"HS256"}, Key: old},
			{ID: "k", Algorithms: []string{"RS256"}, Key: &f.rsa.PublicKey},
			{ID: "k", Algorithms: []string{"HS256"}, Key: current},
		}})
		jwtRun(t, a, []jwtCase{
			{name: "first", token: tokWith(old, "k"), status: http.StatusOK},
			{name: "last", token: tokWith(current, "k"), status: http.StatusOK},
			{name: "RS256", token: jwtSign(t, jwt.SigningMethodRS256, f.rsa, map[string]any{"kid": "k"}, jwtClaims(nil)), status: http.StatusOK},
			{name: "neither", token: tokWith(jwtRandom(32), "k"), desc: "bad signature"},
			{name: "no alg fits", token: jwtSign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "k"}, jwtClaims(nil)), desc: "algorithm not allowed for this key"},
		})
	})

	t.Run("misbehaving source", func(t *testing.T) {
		a := jwtNew(t, auth.JWTConfig{Keys: jwtKeyFunc(func(ctx context.Context, kid string) ([]auth.Key, error) {
			switch kid {
			case "other-id": // returns a key it was not asked for
				return []auth.Key{{ID: "k", Algorithms: []string{"HS256"}, Key: current}}, nil
			case "empty-secret":
				return []auth.Key{{ID: kid, Algorithms: []string{"HS256"}, Key: []byte{}}}, nil
			case "nil-key":
				return []auth.Key{{ID: kid, Algorithms: []string{"HS256"}}}, nil
			case "pinned-none":
				return []auth.Key{{ID: kid, Algorithms: []string{"none", "HS256"}, Key: current}}, nil
			case "no-algorithms":
				return []auth.Key{{ID: kid, Key: current}}, nil
			case "wrong-type": // an RSA key wrongly pinned to HS256
				return []auth.Key{{ID: kid, Algorithms: []string{"HS256", "RS256"}, Key: &f.rsa.PublicKey}}, nil
			case "none":
				return nil, nil
			}
			return nil, auth.ErrUnknownKey
		})})
		jwtRun(t, a, []jwtCase{
			{name: "key with another ID", token: tokWith(current, "other-id"), desc: "unknown key ID"},
			{name: "no keys, no error", token: tokWith(current, "none"), desc: "unknown key ID"},
			{name: "empty HMAC secret", token: tokWith([]byte{}, "empty-secret"), desc: "algorithm not allowed for this key"},
			{name: "nil key", token: tokWith(current, "nil-key"), desc: "algorithm not allowed for this key"},
			{name: "no algorithms", token: tokWith(current, "no-algorithms"), desc: "algorithm not allowed for this key"},
			{name: "alg none on a key pinned to none", token: jwtCraft(map[string]any{"alg": "none", "kid": "pinned-none"}, jwtClaims(nil), nil), desc: "unsupported algorithm"},
			{name: "HMAC with the PEM of a key pinned to HS256 too", token: jwtSign(t, jwt.SigningMethodHS256, f.rsaPEM, map[string]any{"kid": "wrong-type"}, jwtClaims(nil)), desc: "bad signature"},
		})
	})

	for _, tc := range []struct {
		name string
		err  error
	}{
		{"keys unavailable", auth.ErrKeysUnavailable},
		{"wrapped keys unavailable", errors.Join(errors.New("jwks: fetch: 502"), auth.ErrKeysUnavailable)},
		{"other failure", errors.New("jwks: connection refused to idp.internal:443")},
		{"context canceled", context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := jwtNew(t, auth.JWTConfig{Keys: jwtKeyFunc(func(ctx context.Context, kid string) ([]auth.Key, error) {
				return nil, tc.err
			})})
			token := tokWith(current, "k")
			rec := jwtServe(a, jwtBearerRequest(token))
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Retry-After"); got == "" {
				t.Error("no Retry-After")
			}
			if strings.Contains(rec.Body.String(), "idp.internal") || strings.Contains(rec.Body.String(), "jwks") {
				t.Errorf("the reply leaks the internal error: %s", rec.Body)
			}
			jwtAssertNoEcho(t, rec, token)
			// The cause stays available to logs.
			_, err := a.Verify(t.Context(), token)
			if !errors.Is(err, tc.err) {
				t.Errorf("Verify error %v does not wrap %v", err, tc.err)
			}
		})
	}

	t.Run("context reaches the source", func(t *testing.T) {
		type ctxKey struct{}
		var saw any
		a := jwtNew(t, auth.JWTConfig{Keys: jwtKeyFunc(func(ctx context.Context, kid string) ([]auth.Key, error) {
			saw = ctx.Value(ctxKey{})
			return []auth.Key{{ID: kid, Algorithms: []string{"HS256"}, Key: current}}, nil
		})})
		ctx := context.WithValue(t.Context(), ctxKey{}, "here")
		if _, err := a.Verify(ctx, tokWith(current, "k")); err != nil {
			t.Fatal(err)
		}
		if saw != "here" {
			t.Errorf("source saw context value %v", saw)
		}
	})
}

// TestJWTPrincipal checks what the principal holds: subject, issuer, scopes
// from scope or scp, and every claim.
func TestJWTPrincipal(t *testing.T) {
	f := jwtKeysOnce()
	tok := func(edits map[string]any) string {
		return jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256"}, jwtClaims(edits))
	}
	def := jwtNew(t, auth.JWTConfig{Keys: f.keys()})
	custom := jwtNew(t, auth.JWTConfig{Keys: f.keys(), ScopeClaims: []string{"permissions"}})
	for _, tc := range []struct {
		name   string
		a      *auth.JWTAuthenticator
		edits  map[string]any
		scopes []string
	}{
		{"scope string", def, nil, []string{"read", "write"}},
		{"scope with extra spaces", def, map[string]any{"scope": "  read   write "}, []string{"read", "write"}},
		{"scope empty", def, map[string]any{"scope": ""}, nil},
		{"scp array", def, map[string]any{"scope": nil, "scp": []string{"a", "b"}}, []string{"a", "b"}},
		{"scp string", def, map[string]any{"scope": nil, "scp": "a b"}, []string{"a", "b"}},
		{"scp with non-strings", def, map[string]any{"scope": nil, "scp": []any{"a", 1, "", "b"}}, []string{"a", "b"}},
		{"scope wins over scp", def, map[string]any{"scp": []string{"x"}}, []string{"read", "write"}},
		{"no scopes", def, map[string]any{"scope": nil}, nil},
		{"scope of another type", def, map[string]any{"scope": 7}, nil},
		{"custom claim", custom, map[string]any{"permissions": []string{"orders:read"}}, []string{"orders:read"}},
		{"custom claim ignores scope", custom, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.a.Verify(t.Context(), tok(tc.edits))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Scopes, tc.scopes) {
				t.Errorf("scopes %q, want %q", p.Scopes, tc.scopes)
			}
		})
	}
	p, err := def.Verify(t.Context(), tok(map[string]any{"tenant": map[string]any{"id": "acme"}}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || p.Issuer != jwtIssuer {
		t.Errorf("principal %+v", p)
	}
	if tenant, _ := p.Claim("tenant"); tenant.(map[string]any)["id"] != "acme" {
		t.Errorf("claims %v", p.Claims)
	}
	if _, ok := p.Claim("exp"); !ok {
		t.Error("exp missing from claims")
	}
	// No sub is accepted, with an empty Subject.
	if p, err := def.Verify(t.Context(), tok(map[string]any{"sub": nil})); err != nil || p.Subject != "" {
		t.Errorf("no sub: %+v, %v", p, err)
	}
}

// TestJWTVerifyRaw covers Verify on strings no header would carry.
func TestJWTVerifyRaw(t *testing.T) {
	a := jwtNew(t, auth.JWTConfig{Keys: jwtKeysOnce().keys()})
	for _, tc := range []struct{ name, token, desc string }{
		{"empty", "", "malformed token"},
		{"dots", "..", "malformed token"},
		{"spaces", "a b.c d.e f", "malformed token"},
		{"huge", strings.Repeat("a", 1<<20), "token too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Verify(t.Context(), tc.token)
			e, ok := errors.AsType[*gateway.Error](err)
			if !ok || e.Status != http.StatusUnauthorized || e.Detail != tc.desc {
				t.Fatalf("Verify: %v, want 401 %q", err, tc.desc)
			}
		})
	}
}

// TestJWTPipeline runs the authenticator in a gateway pipeline: the
// challenge without a token, the principal upstream with one, 400 for a
// token sent twice, and another authenticator trying Basic credentials.
func TestJWTPipeline(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: f.keys(), QueryParam: "access_token"})
	token := jwtSign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "es256"}, jwtClaims(nil))

	if got, want := a.Challenge(), `Bearer realm="api"`; got != want {
		t.Errorf("Challenge() = %q, want %q", got, want)
	}

	rec := jwtServe(a, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Bearer realm="api"` {
		t.Errorf("no token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}

	rec = jwtServe(a, jwtBearerRequest(token))
	if rec.Code != http.StatusOK || rec.Body.String() != `{"iss":"https://idp.example","scopes":["read","write"],"sub":"alice"}` {
		t.Errorf("valid token: %d %s", rec.Code, rec.Body)
	}

	rec = jwtServe(a, httptest.NewRequest(http.MethodGet, "/?access_token="+token, nil))
	if rec.Code != http.StatusOK {
		t.Errorf("query token: %d %s", rec.Code, rec.Body)
	}

	r := jwtBearerRequest(token)
	r.URL.RawQuery = "access_token=" + token
	jwtCheckRefusal(t, jwtServe(a, r), token, http.StatusBadRequest, auth.CodeInvalidRequest, "the token is sent in more than one place")

	r = jwtBearerRequest(token)
	r.Header.Add("Authorization", "Bearer "+token)
	jwtCheckRefusal(t, jwtServe(a, r), token, http.StatusBadRequest, auth.CodeInvalidRequest, "more than one header field carries a token")

	// Basic credentials are someone else's: a second authenticator gets them.
	basic := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		if _, _, ok := req.HTTP.BasicAuth(); ok {
			return &gateway.Principal{Subject: "alice"}, nil
		}
		return nil, gateway.ErrNotResponsible
	})
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth("alice", "secret")
	rec = httptest.NewRecorder()
	gateway.NewPipeline(jwtUpstream, gateway.Authenticate(a, basic)).ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("Basic after JWT: %d %s", rec.Code, rec.Body)
	}
}

// TestJWTConfigErrors names the field at fault.
func TestJWTConfigErrors(t *testing.T) {
	keys := jwtKeys{{ID: "k", Algorithms: []string{"HS256"}, Key: jwtRandom(32)}}
	for _, tc := range []struct {
		name string
		cfg  auth.JWTConfig
		want string
	}{
		{"no keys", auth.JWTConfig{}, "auth: JWTConfig.Keys: required"},
		{"leeway too long", auth.JWTConfig{Keys: keys, Leeway: 10 * time.Minute}, "auth: JWTConfig.Leeway 10m0s: at most 5m0s"},
		{"negative leeway", auth.JWTConfig{Keys: keys, Leeway: -time.Second}, "auth: JWTConfig.Leeway -1s: must not be negative"},
		{"no algorithms", auth.JWTConfig{Keys: keys, Algorithms: []string{}}, "auth: JWTConfig.Algorithms: names no algorithm"},
		{"alg none", auth.JWTConfig{Keys: keys, Algorithms: []string{"RS256", "none"}}, `auth: JWTConfig.Algorithms[1] "none": not a supported algorithm`},
		{"alg None", auth.JWTConfig{Keys: keys, Algorithms: []string{"None"}}, `auth: JWTConfig.Algorithms[0] "None": not a supported algorithm`},
		{"unknown alg", auth.JWTConfig{Keys: keys, Algorithms: []string{"rs256"}}, `auth: JWTConfig.Algorithms[0] "rs256": not a supported algorithm`},
		{"empty issuer", auth.JWTConfig{Keys: keys, Issuers: []string{"a", ""}}, "auth: JWTConfig.Issuers[1]: empty"},
		{"empty audience", auth.JWTConfig{Keys: keys, Audiences: []string{""}}, "auth: JWTConfig.Audiences[0]: empty"},
		{"type prefix only", auth.JWTConfig{Keys: keys, Type: "application/"}, `auth: JWTConfig.Type "application/": not a media type`},
		{"type with space", auth.JWTConfig{Keys: keys, Type: "at jwt"}, `auth: JWTConfig.Type "at jwt": not a media type`},
		{"critical registered", auth.JWTConfig{Keys: keys, Critical: []string{"kid"}}, `auth: JWTConfig.Critical[0] "kid": not an extension header parameter`},
		{"critical empty", auth.JWTConfig{Keys: keys, Critical: []string{""}}, `auth: JWTConfig.Critical[0] "": not an extension header parameter`},
		{"bad header", auth.JWTConfig{Keys: keys, Header: "X Token"}, `auth: JWTConfig.Header "X Token": not a header field name`},
		{"bad cookie", auth.JWTConfig{Keys: keys, Cookie: "a;b"}, `auth: JWTConfig.Cookie "a;b": not a cookie name`},
		{"empty scope claim", auth.JWTConfig{Keys: keys, ScopeClaims: []string{"scope", ""}}, "auth: JWTConfig.ScopeClaims[1]: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := auth.JWT(tc.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("JWT() = %v, %v; want error %q", a, err, tc.want)
			}
		})
	}
	// The maximum leeway itself is fine.
	if _, err := auth.JWT(auth.JWTConfig{Keys: keys, Leeway: auth.MaxLeeway}); err != nil {
		t.Errorf("Leeway %v: %v", auth.MaxLeeway, err)
	}
}

// TestJWTConfigIsCopied: changing the config after JWT() changes nothing.
func TestJWTConfigIsCopied(t *testing.T) {
	f := jwtKeysOnce()
	cfg := auth.JWTConfig{Keys: f.keys(), Issuers: []string{jwtIssuer}, Audiences: []string{jwtAudience}, Algorithms: []string{"HS256"}, Now: jwtClock}
	a, err := auth.JWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuers[0], cfg.Audiences[0], cfg.Algorithms[0] = "x", "x", "RS256"
	if _, err := a.Verify(t.Context(), jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256"}, jwtClaims(nil))); err != nil {
		t.Errorf("Verify after the config changed: %v", err)
	}
}

// TestJWTWeakHMACKey: a weak secret is refused when the key is built, not
// on a request (the key constructors enforce the strength rules).
func TestJWTWeakHMACKey(t *testing.T) {
	if _, err := auth.HMACKey("k", []byte("secret")); err == nil {
		t.Error("HMACKey accepted a 6-byte secret")
	}
	if _, err := auth.HMACKey("k", jwtRandom(31)); err == nil {
		t.Error("HMACKey accepted a 31-byte secret")
	}
	if _, err := auth.HMACKey("k", jwtRandom(32), "HS512"); err == nil {
		t.Error("HMACKey accepted a 32-byte secret for HS512")
	}
	k, err := auth.HMACKey("k", jwtRandom(32))
	if err != nil {
		t.Fatalf("HMACKey with 32 bytes: %v", err)
	}
	a := jwtNew(t, auth.JWTConfig{Keys: jwtKeys{k}})
	if _, err := a.Verify(t.Context(), jwtSign(t, jwt.SigningMethodHS256, k.Key, map[string]any{"kid": "k"}, jwtClaims(nil))); err != nil {
		t.Errorf("Verify with an HMACKey: %v", err)
	}
}

// TestJWTAllocs guards the hot path: the authenticator allocates at most a
// few objects beyond golang-jwt's own parse of the same token.
func TestJWTAllocs(t *testing.T) {
	f := jwtKeysOnce()
	a := jwtNew(t, auth.JWTConfig{Keys: jwtIndexKeys(f.keys()), Issuers: []string{jwtIssuer}, Audiences: []string{jwtAudience}})
	token := jwtSign(t, jwt.SigningMethodHS256, f.hs256, map[string]any{"kid": "hs256"}, jwtClaims(nil))
	req := gateway.NewRequest(jwtBearerRequest(token))
	ctx := t.Context()
	ours := testing.AllocsPerRun(100, func() {
		if _, err := a.Authenticate(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	bare := testing.AllocsPerRun(100, func() {
		if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return f.hs256, nil }, jwt.WithTimeFunc(jwtClock)); err != nil {
			t.Fatal(err)
		}
	})
	// The extra allocations: the keyfunc closure, the principal, the
	// scopes slice; the bare parse allocates its parser that we reuse.
	t.Logf("allocations per token: Authenticate %v, bare jwt.Parse %v", ours, bare)
	if ours > bare+3 {
		t.Errorf("Authenticate allocates %v times per token, bare jwt.Parse %v: more than 3 extra", ours, bare)
	}
}

// FuzzJWTVerify sends arbitrary strings through Verify: no panic, and never
// a principal. The seeds are real tokens that all fail: expired, altered,
// unsigned, confused.
func FuzzJWTVerify(f *testing.F) {
	fx := jwtKeysOnce()
	// Every seed token expired a year before the fuzzing clock, so a
	// mutation that restores a signature still cannot authenticate.
	late := func() time.Time { return jwtNow.Add(365 * 24 * time.Hour) }
	a, err := auth.JWT(auth.JWTConfig{Keys: fx.keys(), Now: late, Critical: []string{"ext"}, Issuers: []string{jwtIssuer}})
	if err != nil {
		f.Fatal(err)
	}
	valid := jwtClaims(nil)
	for _, tok := range []string{
		jwtSign(f, jwt.SigningMethodHS256, fx.hs256, map[string]any{"kid": "hs256"}, valid),
		jwtSign(f, jwt.SigningMethodHS256, fx.hs256, nil, valid),
		jwtSign(f, jwt.SigningMethodRS256, fx.rsa, map[string]any{"kid": "rs", "crit": []string{"ext"}, "ext": 1}, valid),
		jwtSign(f, jwt.SigningMethodES256, fx.ec256, map[string]any{"kid": "es256", "jku": "http://127.0.0.1:1/"}, valid),
		jwtSign(f, jwt.SigningMethodEdDSA, fx.ed, map[string]any{"kid": "ed"}, valid),
		jwtSign(f, jwt.SigningMethodHS256, fx.rsaPEM, map[string]any{"kid": "rs"}, valid),
		jwtCraft(map[string]any{"alg": "none"}, valid, nil),
		jwtCraft(map[string]any{"alg": "HS256", "kid": []int{1}}, valid, []byte("x")),
		jwtCraft(map[string]any{"alg": "HS256", "crit": []any{}}, map[string]any{"exp": "soon"}, nil),
		"", ".", "..", "...", "a.b.c", "eyJ.eyJ.", "e30.e30.e30",
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := a.Verify(t.Context(), token)
		if err == nil || p != nil {
			t.Fatalf("Verify(%q) = %+v, %v: authenticated", token, p, err)
		}
		e, ok := errors.AsType[*gateway.Error](err)
		if !ok || e.Status != http.StatusUnauthorized {
			t.Fatalf("Verify(%q): %v, want a 401", token, err)
		}
		if len(token) >= 8 && strings.Contains(e.Detail+e.Header.Get("WWW-Authenticate"), token) {
			t.Fatalf("the refusal echoes the token")
		}
	})
}

// A route that accepts access tokens signed by the identity provider with
// HS256 under the key ID "2024-01", and hands the caller to the upstream.
func ExampleJWT() {
	secret := []byte("0123456789abcdef0123456789abcdef") // at least 32 bytes
	key, err := auth.HMACKey("2024-01", secret, "HS256")
	if err != nil {
		panic(err)
	}
	keys, err := auth.StaticKeys(key) // in production: auth.NewJWKS or auth.DiscoverJWKS
	if err != nil {
		panic(err)
	}
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	jwtAuth, err := auth.JWT(auth.JWTConfig{
		Keys:      keys,
		Issuers:   []string{"https://idp.example"},
		Audiences: []string{"orders-api"},
		Realm:     "orders",
		Now:       now,
	})
	if err != nil {
		panic(err)
	}
	hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		p := req.Principal
		return gateway.NewResponse(http.StatusOK, nil, []byte(p.Subject+" "+strings.Join(p.Scopes, ","))), nil
	})
	pipeline := gateway.NewPipeline(hello, gateway.Authenticate(jwtAuth))

	for _, exp := range []int64{now().Unix() + 60, now().Unix()} {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "alice", "iss": "https://idp.example", "aud": "orders-api",
			"exp": exp, "scope": "orders:read orders:write",
		})
		tok.Header["kid"] = "2024-01"
		signed, _ := tok.SignedString(secret)

		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+signed)
		rec := httptest.NewRecorder()
		pipeline.ServeHTTP(rec, r)
		if rec.Code == http.StatusOK {
			fmt.Println(rec.Code, rec.Body)
		} else {
			fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 alice orders:read,orders:write
	// 401 Bearer realm="orders", error="invalid_token", error_description="token expired"
}
