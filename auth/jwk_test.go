package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
)

// Test keys, generated once: RSA generation is slow under -race.
var (
	ksRSA     = sync.OnceValue(func() *rsa.PrivateKey { return ksMustRSA(2048) })
	ksRSA2    = sync.OnceValue(func() *rsa.PrivateKey { return ksMustRSA(2048) })
	ksRSAWeak = sync.OnceValue(func() *rsa.PrivateKey { return ksMustRSA(1024) })
	ksP256    = sync.OnceValue(func() *ecdsa.PrivateKey { return ksMustEC(elliptic.P256()) })
	ksP384    = sync.OnceValue(func() *ecdsa.PrivateKey { return ksMustEC(elliptic.P384()) })
	ksP521    = sync.OnceValue(func() *ecdsa.PrivateKey { return ksMustEC(elliptic.P521()) })
	ksEd      = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func ksMustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func ksMustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func ksB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ksJWK is a JWK under construction: a JSON object with exact member names.
type ksJWK map[string]any

func (m ksJWK) with(kv ...any) ksJWK {
	c := make(ksJWK, len(m)+len(kv)/2)
	for k, v := range m {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func (m ksJWK) json() []byte {
	b, err := json.Marshal(map[string]any(m))
	if err != nil {
		panic(err)
	}
	return b
}

func ksRSAJWK(kid string, pub *rsa.PublicKey) ksJWK {
	return ksJWK{"kty": "RSA", "kid": kid, "n": ksB64(pub.N.Bytes()), "e": ksB64(big.NewInt(int64(pub.E)).Bytes())}
}

func ksECJWK(kid string, pub *ecdsa.PublicKey) ksJWK {
	raw, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	size := (len(raw) - 1) / 2
	return ksJWK{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name, "x": ksB64(raw[1 : 1+size]), "y": ksB64(raw[1+size:])}
}

func ksEdJWK(kid string, pub ed25519.PublicKey) ksJWK {
	return ksJWK{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": ksB64(pub)}
}

func ksOctJWK(kid string, secret []byte) ksJWK {
	return ksJWK{"kty": "oct", "kid": kid, "k": ksB64(secret)}
}

func ksSet(keys ...ksJWK) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// ksCheckKey is the fuzz oracle, written apart from the package's own
// checks: an accepted key has algorithms, each fitting its type, and meets
// the strength rules.
func ksCheckKey(t *testing.T, k auth.Key) {
	t.Helper()
	if len(k.Algorithms) == 0 {
		t.Fatalf("key %q: no algorithms", k.ID)
	}
	for _, alg := range k.Algorithms {
		ok := false
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			ok = key.N.BitLen() >= 2048 && slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
		case *ecdsa.PublicKey:
			_, err := key.ECDH()
			ok = err == nil &&
				(alg == "ES256" && key.Curve == elliptic.P256() ||
					alg == "ES384" && key.Curve == elliptic.P384() ||
					alg == "ES512" && key.Curve == elliptic.P521())
		case ed25519.PublicKey:
			ok = len(key) == 32 && alg == "EdDSA"
		case []byte:
			ok = len(key) >= 32 && (alg == "HS256" || alg == "HS384" && len(key) >= 48 || alg == "HS512" && len(key) >= 64)
		}
		if !ok {
			t.Fatalf("key %q: %T accepted with algorithm %q", k.ID, k.Key, alg)
		}
	}
}

// ksVerifies checks that the parsed key verifies a signature made with priv,
// so that the members were decoded right.
func ksVerifies(t *testing.T, k auth.Key, priv crypto.Signer) {
	t.Helper()
	msg := []byte("header.payload")
	digest := sha256.Sum256(msg)
	var ok bool
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	case *ecdsa.PublicKey:
		sig, err := ecdsa.SignASN1(rand.Reader, priv.(*ecdsa.PrivateKey), digest[:])
		if err != nil {
			t.Fatal(err)
		}
		ok = ecdsa.VerifyASN1(pub, digest[:], sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, msg, ed25519.Sign(priv.(ed25519.PrivateKey), msg))
	}
	if !ok {
		t.Fatalf("parsed %T does not verify a signature of its private key", k.Key)
	}
}

func TestParseJWK(t *testing.T) {
	rsaPub := &ksRSA().PublicKey
	rsaJWK := ksRSAJWK("r1", rsaPub)
	p256 := ksECJWK("e1", &ksP256().PublicKey)
	p384 := ksECJWK("e2", &ksP384().PublicKey)
	p521 := ksECJWK("e3", &ksP521().PublicKey)
	ed := ksEdJWK("d1", ksEd().Public().(ed25519.PublicKey))
	secret := []byte(strings.Repeat("s", 32))
	oct := ksOctJWK("h1", secret)

	// A P-256 point off the curve: y + 1.
	offCurve := func() ksJWK {
		raw, _ := ksP256().PublicKey.Bytes()
		y := new(big.Int).SetBytes(raw[33:])
		y.Add(y, big.NewInt(1))
		return p256.with("y", ksB64(y.FillBytes(make([]byte, 32))))
	}()

	tests := []struct {
		name     string
		data     []byte
		wantAlgs []string // nil: an error is wanted
		wantErr  string   // a substring of the error
		signer   crypto.Signer
	}{
		{name: "RSA", data: rsaJWK.json(), wantAlgs: []string{"RS256"}, signer: ksRSA()},
		{name: "RSA alg RS512", data: rsaJWK.with("alg", "RS512").json(), wantAlgs: []string{"RS512"}, signer: ksRSA()},
		{name: "RSA alg PS256", data: rsaJWK.with("alg", "PS256").json(), wantAlgs: []string{"PS256"}, signer: ksRSA()},
		{name: "RSA use sig key_ops verify", data: rsaJWK.with("use", "sig", "key_ops", []string{"verify"}).json(), wantAlgs: []string{"RS256"}},
		{name: "RSA private members ignored", data: rsaJWK.with("d", ksB64(ksRSA().D.Bytes())).json(), wantAlgs: []string{"RS256"}, signer: ksRSA()},
		{name: "RSA unknown member ignored", data: rsaJWK.with("x5t", "abc").json(), wantAlgs: []string{"RS256"}},
		{name: "RSA alg ES256", data: rsaJWK.with("alg", "ES256").json(), wantErr: `"alg": "ES256" does not fit`},
		{name: "RSA alg HS256", data: rsaJWK.with("alg", "HS256").json(), wantErr: `"alg": "HS256" does not fit`},
		{name: "RSA 1024 bits", data: ksRSAJWK("w", &ksRSAWeak().PublicKey).json(), wantErr: "1024 bits is too weak"},
		{name: "RSA missing n", data: rsaJWK.with("n", nil).json(), wantErr: `"n": missing`},
		{name: "RSA missing e", data: rsaJWK.with("e", nil).json(), wantErr: `"e": missing`},
		{name: "RSA n not a string", data: rsaJWK.with("n", 12345).json(), wantErr: `"n": not a string`},
		{name: "RSA even exponent", data: rsaJWK.with("e", ksB64([]byte{1, 0, 0})).json(), wantErr: "exponent 65536 is invalid"},
		{name: "RSA exponent 1", data: rsaJWK.with("e", "AQ").json(), wantErr: "exponent 1 is invalid"},
		{name: "RSA n padded base64", data: rsaJWK.with("n", rsaJWK["n"].(string)+"==").json(), wantErr: `"n": not base64url`},
		{name: "RSA n std base64", data: rsaJWK.with("n", base64.StdEncoding.EncodeToString(rsaPub.N.Bytes())).json(), wantErr: `"n": not base64url`},
		{name: "RSA n with newline", data: rsaJWK.with("n", "AQAB\nAQAB").json(), wantErr: `"n": not base64url`},
		{name: "RSA e non-canonical trailing bits", data: rsaJWK.with("e", "AR").json(), wantErr: `"e": not base64url`},

		{name: "EC P-256", data: p256.json(), wantAlgs: []string{"ES256"}, signer: ksP256()},
		{name: "EC P-384", data: p384.json(), wantAlgs: []string{"ES384"}, signer: ksP384()},
		{name: "EC P-521", data: p521.json(), wantAlgs: []string{"ES512"}, signer: ksP521()},
		{name: "EC P-256 alg ES256", data: p256.with("alg", "ES256").json(), wantAlgs: []string{"ES256"}},
		{name: "EC P-256 alg ES384", data: p256.with("alg", "ES384").json(), wantErr: `"alg": "ES384" does not fit`},
		{name: "EC P-521 alg ES256", data: p521.with("alg", "ES256").json(), wantErr: `"alg": "ES256" does not fit`},
		{name: "EC P-256 alg RS256", data: p256.with("alg", "RS256").json(), wantErr: `"alg": "RS256" does not fit`},
		{name: "EC point not on curve", data: offCurve.json(), wantErr: "not a point on P-256"},
		{name: "EC short x", data: p256.with("x", ksB64(make([]byte, 31))).json(), wantErr: `"x": 31 bytes, P-256 needs 32`},
		{name: "EC P-384 coordinates on P-256", data: p384.with("crv", "P-256").json(), wantErr: `"x": 48 bytes, P-256 needs 32`},
		{name: "EC missing y", data: p256.with("y", nil).json(), wantErr: `"y": missing`},
		{name: "EC missing crv", data: p256.with("crv", nil).json(), wantErr: `"crv": missing`},
		{name: "EC secp256k1", data: p256.with("crv", "secp256k1").json(), wantErr: `"crv": "secp256k1" is not supported`},
		{name: "EC zero point", data: p256.with("x", ksB64(make([]byte, 32)), "y", ksB64(make([]byte, 32))).json(), wantErr: "not a point"},

		{name: "OKP Ed25519", data: ed.json(), wantAlgs: []string{"EdDSA"}, signer: ksEd()},
		{name: "OKP alg EdDSA", data: ed.with("alg", "EdDSA").json(), wantAlgs: []string{"EdDSA"}},
		{name: "OKP alg ES256", data: ed.with("alg", "ES256").json(), wantErr: `"alg": "ES256" does not fit`},
		{name: "OKP short x", data: ed.with("x", ksB64(make([]byte, 31))).json(), wantErr: `"x": 31 bytes, Ed25519 needs 32`},
		{name: "OKP X25519", data: ed.with("crv", "X25519").json(), wantErr: `"crv": "X25519" is not supported`},
		{name: "OKP Ed448", data: ed.with("crv", "Ed448").json(), wantErr: `"crv": "Ed448" is not supported`},

		{name: "oct", data: oct.json(), wantAlgs: []string{"HS256"}},
		{name: "oct alg HS384 48 bytes", data: ksOctJWK("h", make([]byte, 48)).with("alg", "HS384").json(), wantAlgs: []string{"HS384"}},
		{name: "oct alg HS512 64 bytes", data: ksOctJWK("h", make([]byte, 64)).with("alg", "HS512").json(), wantAlgs: []string{"HS512"}},
		{name: "oct 31 bytes", data: ksOctJWK("h", make([]byte, 31)).json(), wantErr: "31 bytes is too short"},
		{name: "oct alg HS512 32 bytes", data: oct.with("alg", "HS512").json(), wantErr: `"HS512" needs a secret of at least 64 bytes`},
		{name: "oct alg RS256", data: oct.with("alg", "RS256").json(), wantErr: `"alg": "RS256" does not fit`},
		{name: "oct missing k", data: oct.with("k", nil).json(), wantErr: `"k": missing`},
		{name: "oct empty k", data: oct.with("k", "").json(), wantErr: `"k": missing`},

		{name: "use enc", data: rsaJWK.with("use", "enc").json(), wantErr: `"use": "enc": not a signature key`},
		{name: "use other", data: p256.with("use", "tls").json(), wantErr: `"use": "tls"`},
		{name: "key_ops without verify", data: rsaJWK.with("key_ops", []string{"encrypt", "wrapKey"}).json(), wantErr: `"key_ops": no "verify"`},
		{name: "key_ops not an array", data: rsaJWK.with("key_ops", "verify").json(), wantErr: `"key_ops": not an array`},
		{name: "alg none", data: oct.with("alg", "none").json(), wantErr: `"alg": "none" is not a supported`},
		{name: "alg None", data: rsaJWK.with("alg", "None").json(), wantErr: `"alg": "None" is not a supported`},
		{name: "alg empty", data: rsaJWK.with("alg", "").json(), wantErr: `"alg": "" is not a supported`},
		{name: "alg not a string", data: rsaJWK.with("alg", []string{"RS256"}).json(), wantErr: `"alg": not a string`},
		{name: "unknown kty", data: rsaJWK.with("kty", "DSA").json(), wantErr: `"kty": "DSA" is not supported`},
		{name: "missing kty", data: rsaJWK.with("kty", nil).json(), wantErr: `"kty": missing`},
		{name: "kty in other case", data: rsaJWK.with("kty", nil, "KTY", "RSA").json(), wantErr: `"kty": missing`},
		{name: "kty null", data: []byte(`{"kty":null,"k":"AAAA"}`), wantErr: `"kty": not a string`},
		{name: "empty input", data: []byte{}, wantErr: "invalid JSON"},
		{name: "kid not a string", data: rsaJWK.with("kid", 7).json(), wantErr: `"kid": not a string`},
		{name: "not JSON", data: []byte(`{"kty":`), wantErr: "invalid JSON"},
		{name: "JSON array", data: []byte(`[1,2]`), wantErr: "not a JSON object"},
		{name: "JSON null", data: []byte(`null`), wantErr: "not a JSON object"},
		{name: "whitespace", data: []byte(" {\"kty\" : \"oct\" ,\n \"k\" : \"" + ksB64(secret) + "\" } "), wantAlgs: []string{"HS256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := auth.ParseJWK(tc.data)
			if tc.wantAlgs == nil {
				if err == nil {
					t.Fatalf("ParseJWK accepted %s as %T %v", tc.data, k.Key, k.Algorithms)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWK: %v", err)
			}
			if !slices.Equal(k.Algorithms, tc.wantAlgs) {
				t.Errorf("Algorithms = %v, want %v", k.Algorithms, tc.wantAlgs)
			}
			ksCheckKey(t, k)
			if tc.signer != nil {
				ksVerifies(t, k, tc.signer)
			}
		})
	}
}

func TestParseJWKKeyIDAndTypes(t *testing.T) {
	k, err := auth.ParseJWK(ksRSAJWK("rsa-1", &ksRSA().PublicKey).json())
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "rsa-1" {
		t.Errorf("ID = %q", k.ID)
	}
	if pub, ok := k.Key.(*rsa.PublicKey); !ok || !pub.Equal(&ksRSA().PublicKey) {
		t.Errorf("Key = %T, want the RSA public key", k.Key)
	}
	secret := []byte(strings.Repeat("k", 40))
	k, err = auth.ParseJWK(ksOctJWK("", secret).json())
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := k.Key.([]byte); !ok || string(b) != string(secret) || k.ID != "" {
		t.Errorf("oct key = %q %T", k.ID, k.Key)
	}
}

func TestParseJWKSet(t *testing.T) {
	set := ksSet(
		ksRSAJWK("good-rsa", &ksRSA().PublicKey),
		ksRSAJWK("weak", &ksRSAWeak().PublicKey),
		ksECJWK("good-ec", &ksP256().PublicKey),
		ksRSAJWK("enc", &ksRSA2().PublicKey).with("use", "enc"),
		ksJWK{"kty": "RSA", "kid": "broken"},
		ksEdJWK("good-ed", ksEd().Public().(ed25519.PublicKey)),
		ksOctJWK("hmac", make([]byte, 32)),
		ksRSAJWK("none", &ksRSA().PublicKey).with("alg", "none"),
	)
	keys, dropped, err := auth.ParseJWKSet(set)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ksCheckKey(t, k)
		ids = append(ids, k.ID)
	}
	if want := []string{"good-rsa", "good-ec", "good-ed", "hmac"}; !slices.Equal(ids, want) {
		t.Errorf("keys = %v, want %v", ids, want)
	}
	wantDropped := []string{
		`keys[1] (kid "weak") dropped: Key: RSA key of 1024 bits is too weak`,
		`keys[3] (kid "enc") dropped: "use": "enc"`,
		`keys[4] (kid "broken") dropped: "n": missing`,
		`keys[7] (kid "none") dropped: "alg": "none"`,
	}
	if len(dropped) != len(wantDropped) {
		t.Fatalf("dropped = %v, want %d", dropped, len(wantDropped))
	}
	for i, want := range wantDropped {
		if !strings.Contains(dropped[i].Error(), want) {
			t.Errorf("dropped[%d] = %q, want it to contain %q", i, dropped[i], want)
		}
	}

	for _, bad := range []string{`{"keys":`, `[]`, `{}`, `{"keys":null}`, `{"keys":{}}`, `{"keys":"x"}`} {
		if _, _, err := auth.ParseJWKSet([]byte(bad)); err == nil {
			t.Errorf("ParseJWKSet(%s): no error", bad)
		}
	}
	keys, dropped, err = auth.ParseJWKSet([]byte(`{"keys":[1,"x",null]}`))
	if err != nil || len(keys) != 0 || len(dropped) != 3 {
		t.Errorf("set of non-objects: keys %v, dropped %v, err %v", keys, dropped, err)
	}
}

func TestHMACKey(t *testing.T) {
	secret := []byte(strings.Repeat("x", 32))
	k, err := auth.HMACKey("h", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.Algorithms, []string{"HS256"}) || k.ID != "h" {
		t.Errorf("HMACKey = %q %v", k.ID, k.Algorithms)
	}
	secret[0] = 'y'
	if k.Key.([]byte)[0] != 'x' {
		t.Error("HMACKey did not copy the secret")
	}
	if k, err := auth.HMACKey("h", make([]byte, 64), "HS256", "HS512"); err != nil || len(k.Algorithms) != 2 {
		t.Errorf("HS256+HS512 with 64 bytes: %v %v", k.Algorithms, err)
	}

	tests := []struct {
		name    string
		secret  []byte
		algs    []string
		wantErr string
	}{
		{"short", make([]byte, 31), nil, `HMACKey "k": Key: HMAC secret of 31 bytes is too short`},
		{"empty", nil, nil, `HMACKey "k": Key: HMAC secret of 0 bytes`},
		{"RS256", make([]byte, 32), []string{"RS256"}, `HMACKey "k": Algorithms[0]: "RS256" does not fit an HMAC key`},
		{"none", make([]byte, 32), []string{"none"}, `Algorithms[0]: "none" is not a supported algorithm`},
		{"HS384 short", make([]byte, 32), []string{"HS256", "HS384"}, `Algorithms[1]: "HS384" needs a secret of at least 48 bytes`},
		{"hs256 lower case", make([]byte, 32), []string{"hs256"}, `Algorithms[0]: "hs256" is not a supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.HMACKey("k", tc.secret, tc.algs...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func ksPEM(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func ksPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ksPEM(t, "PUBLIC KEY", der)
}

func TestPEMKey(t *testing.T) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1, 0), // long expired: the validity is not checked
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ksRSA().PublicKey, ksRSA())
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalECPrivateKey(ksP256())
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		pem      []byte
		algs     []string
		wantAlgs []string
		wantErr  string
	}{
		{name: "RSA PKIX", pem: ksPKIX(t, &ksRSA().PublicKey), wantAlgs: []string{"RS256"}},
		{name: "RSA PKIX PS512 RS384", pem: ksPKIX(t, &ksRSA().PublicKey), algs: []string{"PS512", "RS384"}, wantAlgs: []string{"PS512", "RS384"}},
		{name: "RSA PKCS1", pem: ksPEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&ksRSA().PublicKey)), wantAlgs: []string{"RS256"}},
		{name: "certificate", pem: ksPEM(t, "CERTIFICATE", certDER), wantAlgs: []string{"RS256"}},
		{name: "EC P-256", pem: ksPKIX(t, &ksP256().PublicKey), wantAlgs: []string{"ES256"}},
		{name: "EC P-384", pem: ksPKIX(t, &ksP384().PublicKey), wantAlgs: []string{"ES384"}},
		{name: "EC P-521", pem: ksPKIX(t, &ksP521().PublicKey), wantAlgs: []string{"ES512"}},
		{name: "Ed25519", pem: ksPKIX(t, ksEd().Public()), wantAlgs: []string{"EdDSA"}},
		{name: "leading text", pem: append([]byte("comment\n"), ksPKIX(t, ksEd().Public())...), wantAlgs: []string{"EdDSA"}},

		{name: "RSA HS256", pem: ksPKIX(t, &ksRSA().PublicKey), algs: []string{"HS256"}, wantErr: `PEMKey "k": Algorithms[0]: "HS256" does not fit an RSA key`},
		{name: "RSA ES256", pem: ksPKIX(t, &ksRSA().PublicKey), algs: []string{"RS256", "ES256"}, wantErr: `Algorithms[1]: "ES256" does not fit an RSA key`},
		{name: "EC P-256 ES384", pem: ksPKIX(t, &ksP256().PublicKey), algs: []string{"ES384"}, wantErr: `Algorithms[0]: "ES384" needs curve P-384, the key is on P-256`},
		{name: "Ed25519 none", pem: ksPKIX(t, ksEd().Public()), algs: []string{"none"}, wantErr: `Algorithms[0]: "none" is not a supported`},
		{name: "RSA 1024", pem: ksPKIX(t, &ksRSAWeak().PublicKey), wantErr: `PEMKey "k": Key: RSA key of 1024 bits is too weak`},
		{name: "EC P-224", pem: ksPKIX(t, &p224.PublicKey), wantErr: `Key: ECDSA key is not on P-256, P-384 or P-521`},
		{name: "RSA private key", pem: ksPEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(ksRSA())), wantErr: `"RSA PRIVATE KEY" holds a private key`},
		{name: "EC private key", pem: ksPEM(t, "EC PRIVATE KEY", ecPriv), wantErr: `"EC PRIVATE KEY" holds a private key`},
		{name: "not PEM", pem: []byte("hello"), wantErr: `PEMKey "k": no PEM block`},
		{name: "garbage DER", pem: ksPEM(t, "PUBLIC KEY", []byte{1, 2, 3}), wantErr: `PEM block "PUBLIC KEY"`},
		{name: "other block", pem: ksPEM(t, "X509 CRL", []byte{1}), wantErr: `"X509 CRL" is not a public key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := auth.PEMKey("k", tc.pem, tc.algs...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != "k" || !slices.Equal(k.Algorithms, tc.wantAlgs) {
				t.Errorf("PEMKey = %q %v, want %v", k.ID, k.Algorithms, tc.wantAlgs)
			}
			ksCheckKey(t, k)
		})
	}
}

func TestStaticKeys(t *testing.T) {
	rsaKey := auth.Key{ID: "a", Algorithms: []string{"RS256"}, Key: &ksRSA().PublicKey}
	ecKey := auth.Key{ID: "b", Algorithms: []string{"ES256"}, Key: &ksP256().PublicKey}
	rotated := auth.Key{ID: "a", Algorithms: []string{"PS256"}, Key: &ksRSA2().PublicKey}
	noKID := auth.Key{Algorithms: []string{"EdDSA"}, Key: ksEd().Public()}
	secret := []byte(strings.Repeat("z", 32))
	hmacKey := auth.Key{ID: "h", Algorithms: []string{"HS256"}, Key: secret}

	src, err := auth.StaticKeys(rsaKey, ecKey, rotated, noKID, hmacKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ids := func(keys []auth.Key) (ids []string) {
		for _, k := range keys {
			ids = append(ids, k.ID+"/"+k.Algorithms[0])
		}
		return ids
	}
	for _, tc := range []struct {
		kid  string
		want []string
	}{
		{"a", []string{"a/RS256", "a/PS256"}},
		{"b", []string{"b/ES256"}},
		{"", []string{"a/RS256", "b/ES256", "a/PS256", "/EdDSA", "h/HS256"}},
	} {
		keys, err := src.Keys(ctx, tc.kid)
		if err != nil || !slices.Equal(ids(keys), tc.want) {
			t.Errorf("Keys(%q) = %v, %v; want %v", tc.kid, ids(keys), err, tc.want)
		}
	}
	if _, err := src.Keys(ctx, "nope"); !errors.Is(err, auth.ErrUnknownKey) {
		t.Errorf("Keys(unknown) error = %v, want ErrUnknownKey", err)
	}
	// The source holds copies: changing the caller's values changes nothing.
	secret[0] = 'q'
	hmacKey.Algorithms[0] = "HS512"
	keys, _ := src.Keys(ctx, "h")
	if keys[0].Key.([]byte)[0] != 'z' || keys[0].Algorithms[0] != "HS256" {
		t.Error("StaticKeys did not copy its keys")
	}
}

func TestStaticKeysConfigErrors(t *testing.T) {
	good := auth.Key{ID: "good", Algorithms: []string{"RS256"}, Key: &ksRSA().PublicKey}
	tests := []struct {
		name    string
		keys    []auth.Key
		wantErr string
	}{
		{"no keys", nil, "StaticKeys: no keys"},
		{"no algorithms", []auth.Key{good, {ID: "b", Key: &ksRSA().PublicKey}}, `keys[1] (ID "b"): Algorithms: empty`},
		{"HS256 with RSA key", []auth.Key{{ID: "a", Algorithms: []string{"HS256"}, Key: &ksRSA().PublicKey}}, `keys[0] (ID "a"): Algorithms[0]: "HS256" does not fit an RSA key`},
		{"RS256 with HMAC secret", []auth.Key{good, good, {ID: "c", Algorithms: []string{"HS256", "RS256"}, Key: make([]byte, 32)}}, `keys[2] (ID "c"): Algorithms[1]: "RS256" does not fit an HMAC key`},
		{"none", []auth.Key{{ID: "a", Algorithms: []string{"none"}, Key: make([]byte, 32)}}, `keys[0] (ID "a"): Algorithms[0]: "none" is not a supported`},
		{"ES384 on P-256", []auth.Key{{ID: "e", Algorithms: []string{"ES384"}, Key: &ksP256().PublicKey}}, `keys[0] (ID "e"): Algorithms[0]: "ES384" needs curve P-384`},
		{"weak RSA", []auth.Key{{ID: "w", Algorithms: []string{"RS256"}, Key: &ksRSAWeak().PublicKey}}, `keys[0] (ID "w"): Key: RSA key of 1024 bits is too weak`},
		{"short HMAC", []auth.Key{{ID: "s", Algorithms: []string{"HS256"}, Key: []byte("secret")}}, `keys[0] (ID "s"): Key: HMAC secret of 6 bytes is too short`},
		{"HS512 short", []auth.Key{{ID: "s", Algorithms: []string{"HS512"}, Key: make([]byte, 32)}}, `keys[0] (ID "s"): Algorithms[0]: "HS512" needs a secret of at least 64 bytes`},
		{"private RSA key", []auth.Key{{ID: "p", Algorithms: []string{"RS256"}, Key: ksRSA()}}, `keys[0] (ID "p"): Key: *rsa.PrivateKey is a private key`},
		{"private Ed25519 key", []auth.Key{{ID: "p", Algorithms: []string{"EdDSA"}, Key: ksEd()}}, `Key: ed25519.PrivateKey is a private key`},
		{"string secret", []auth.Key{{ID: "t", Algorithms: []string{"HS256"}, Key: strings.Repeat("x", 32)}}, `keys[0] (ID "t"): Key: string is not supported`},
		{"nil key", []auth.Key{{ID: "n", Algorithms: []string{"RS256"}}}, `keys[0] (ID "n"): Key: missing`},
		{"nil RSA pointer", []auth.Key{{ID: "n", Algorithms: []string{"RS256"}, Key: (*rsa.PublicKey)(nil)}}, `keys[0] (ID "n"): Key: missing`},
		{"short Ed25519", []auth.Key{{ID: "d", Algorithms: []string{"EdDSA"}, Key: ed25519.PublicKey(make([]byte, 31))}}, `keys[0] (ID "d"): Key: Ed25519 key of 31 bytes`},
		{"EC off curve", []auth.Key{{ID: "o", Algorithms: []string{"ES256"}, Key: &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}}}, `keys[0] (ID "o"): Key: ECDSA point is not on the curve`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.StaticKeys(tc.keys...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseJWK(f *testing.F) {
	f.Add(ksRSAJWK("r", &ksRSA().PublicKey).json())
	f.Add(ksRSAJWK("w", &ksRSAWeak().PublicKey).json())
	f.Add(ksECJWK("e", &ksP256().PublicKey).with("alg", "ES256").json())
	f.Add(ksECJWK("e", &ksP521().PublicKey).json())
	f.Add(ksEdJWK("d", ksEd().Public().(ed25519.PublicKey)).json())
	f.Add(ksOctJWK("h", make([]byte, 32)).with("alg", "HS384").json())
	f.Add([]byte(`{"kty":"oct","k":"AAAA","alg":"none"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := auth.ParseJWK(data)
		if err != nil {
			return
		}
		ksCheckKey(t, k)
		if _, err := auth.StaticKeys(k); err != nil {
			t.Fatalf("ParseJWK accepted a key StaticKeys refuses: %v", err)
		}
	})
}

func FuzzParseJWKSet(f *testing.F) {
	f.Add(ksSet(ksRSAJWK("r", &ksRSA().PublicKey), ksEdJWK("d", ksEd().Public().(ed25519.PublicKey))))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},null,{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, dropped, err := auth.ParseJWKSet(data)
		if err != nil {
			if keys != nil || dropped != nil {
				t.Fatal("keys or dropped returned with an error")
			}
			return
		}
		for _, k := range keys {
			ksCheckKey(t, k)
		}
	})
}

// The StaticKeys lookup allocates nothing.
func TestStaticKeysAllocs(t *testing.T) {
	src, err := auth.StaticKeys(auth.Key{ID: "a", Algorithms: []string{"RS256"}, Key: &ksRSA().PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { src.Keys(ctx, "a") }); n != 0 {
		t.Errorf("Keys allocates %v times per lookup, want 0", n)
	}
}
