package auth_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
	"github.com/golang-jwt/jwt/v5"
)

// jwtKeyIndex is a warm, allocation-free key source: one map lookup, as a
// static set or a loaded JWKS costs.
type jwtKeyIndex map[string][]auth.Key

func (m jwtKeyIndex) Keys(ctx context.Context, kid string) ([]auth.Key, error) {
	if ks, ok := m[kid]; ok {
		return ks, nil
	}
	return nil, auth.ErrUnknownKey
}

func jwtIndexKeys(keys []auth.Key) jwtKeyIndex {
	m := jwtKeyIndex{"": keys}
	for _, k := range keys {
		m[k.ID] = append(m[k.ID], k)
	}
	return m
}

// BenchmarkJWT measures per-request verification through Authenticate on a
// prepared request with a warm key source, beside golang-jwt's bare
// jwt.Parse (MapClaims, a keyfunc returning the key) of the same token.
//
// Target: the authenticator's overhead (token extraction, key lookup, the
// header and claims checks beyond golang-jwt's defaults, the principal)
// under 15% of the bare parse. Measured with BenchmarkJWTOverhead (Go 1.26,
// amd64, 2 shared vCPUs under other load, median of 5 runs):
//
//	alg    authenticate  bare jwt.Parse  overhead  allocs (ours/bare)
//	HS256   17.5 µs        15.9 µs         10.2%     76/74
//	RS256   67.9 µs        65.5 µs          3.6%     81/79
//	ES256  133.4 µs       130.4 µs          2.0%     93/91
//	EdDSA   74.6 µs        73.9 µs          1.0%     70/68
func BenchmarkJWT(b *testing.B) {
	a, cases := jwtBenchSetup(b)
	for _, tc := range cases {
		b.Run(tc.name+"/authenticate", func(b *testing.B) {
			req := gateway.NewRequest(jwtBearerRequest(tc.token))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				p, err := a.Authenticate(ctx, req)
				if err != nil || p.Subject != "alice" {
					b.Fatal(p, err)
				}
			}
		})
		b.Run(tc.name+"/jwt.Parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, err := jwt.Parse(tc.token, tc.keyfunc)
				if err != nil || !t.Valid {
					b.Fatal(t, err)
				}
			}
		})
	}
}

// BenchmarkJWTOverhead measures the same two costs as BenchmarkJWT, but
// interleaved token by token and summarised by the jwtMedian, so that other
// load on the machine (a preempted iteration) weighs on neither. It reports
// both medians in ns/token and the overhead in percent of the bare parse.
// Target: overhead-% under 15.
func BenchmarkJWTOverhead(b *testing.B) {
	a, cases := jwtBenchSetup(b)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			req := gateway.NewRequest(jwtBearerRequest(tc.token))
			ctx := context.Background()
			var ours, bare []time.Duration
			for b.Loop() {
				// Alternate which goes first, so neither always runs
				// with the other's warm caches.
				first := len(ours) % 2
				for i := range 2 {
					start := time.Now()
					if i == first {
						if _, err := a.Authenticate(ctx, req); err != nil {
							b.Fatal(err)
						}
						ours = append(ours, time.Since(start))
					} else {
						if _, err := jwt.Parse(tc.token, tc.keyfunc); err != nil {
							b.Fatal(err)
						}
						bare = append(bare, time.Since(start))
					}
				}
			}
			mo, mb := jwtMedian(ours), jwtMedian(bare)
			b.ReportMetric(float64(mo.Nanoseconds()), "auth-ns/token")
			b.ReportMetric(float64(mb.Nanoseconds()), "parse-ns/token")
			b.ReportMetric(100*(float64(mo)/float64(mb)-1), "overhead-%")
		})
	}
}

func jwtMedian(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

type jwtBenchCase struct {
	name    string
	token   string
	keyfunc jwt.Keyfunc
}

// jwtBenchSetup returns an authenticator with a warm key source and one
// valid token per benchmarked algorithm, with the trivial keyfunc a bare
// jwt.Parse of it needs.
func jwtBenchSetup(b *testing.B) (*auth.JWTAuthenticator, []jwtBenchCase) {
	f := jwtKeysOnce()
	keys := jwtIndexKeys(f.keys())
	a, err := auth.JWT(auth.JWTConfig{
		Keys:      keys,
		Issuers:   []string{jwtIssuer},
		Audiences: []string{jwtAudience},
		Realm:     jwtRealm,
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	claims := jwtClaims(map[string]any{
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix() - 10,
		"nbf": now.Unix() - 10,
		"jti": "5c1f6a3e-7b8d-4f3e-9a43-0c8f1f2b6d4e",
	})
	var cases []jwtBenchCase
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		signer any
		verify any
		kid    string
	}{
		{"HS256", jwt.SigningMethodHS256, f.hs256, f.hs256, "hs256"},
		{"RS256", jwt.SigningMethodRS256, f.rsa, &f.rsa.PublicKey, "rs"},
		{"ES256", jwt.SigningMethodES256, f.ec256, &f.ec256.PublicKey, "es256"},
		{"EdDSA", jwt.SigningMethodEdDSA, f.ed, f.ed.Public(), "ed"},
	} {
		token := jwtSign(b, tc.method, tc.signer, map[string]any{"kid": tc.kid, "typ": "at+jwt"}, claims)
		verify := tc.verify
		cases = append(cases, jwtBenchCase{tc.name, token, func(*jwt.Token) (any, error) { return verify, nil }})
	}
	return a, cases
}
