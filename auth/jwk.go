package auth

// JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037) and static keys.
//
// We parse JWKs ourselves on the standard library rather than use
// MicahParks/keyfunc or jwkset: they accept keys our rules drop (RSA under
// 2048 bits, HMAC secrets under 32 bytes, "use": "enc", private keys an
// identity provider published by mistake) and their refetch on an unknown
// kid does not follow our rate-limit rules (JWKS). The part we need is small.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// Key strength rules, applied to every key whatever its source.
const (
	minRSABits = 2048
	// maxRSABits bounds the work one signature check can cost.
	maxRSABits = 16384
	// minHMACBytes is the floor for any HMAC secret; each HS algorithm also
	// needs a secret at least as long as its hash (RFC 7518 §3.2).
	minHMACBytes = 32
)

// keyKind is the kind of key material an algorithm verifies with.
type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
	kindHMAC
)

func (k keyKind) String() string {
	switch k {
	case kindRSA:
		return "RSA"
	case kindEC:
		return "EC"
	case kindEd25519:
		return "Ed25519"
	case kindHMAC:
		return "HMAC"
	}
	return "unknown"
}

// algSpec returns what the JWS algorithm alg needs: the kind of key, the
// curve for ECDSA, and the least secret length for HMAC. kind is 0 for an
// algorithm we do not verify, which includes "none" in every spelling.
func algSpec(alg string) (kind keyKind, curve elliptic.Curve, minSecret int) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return kindRSA, nil, 0
	case "ES256":
		return kindEC, elliptic.P256(), 0
	case "ES384":
		return kindEC, elliptic.P384(), 0
	case "ES512":
		return kindEC, elliptic.P521(), 0
	case "EdDSA":
		return kindEd25519, nil, 0
	case "HS256":
		return kindHMAC, nil, 32
	case "HS384":
		return kindHMAC, nil, 48
	case "HS512":
		return kindHMAC, nil, 64
	}
	return 0, nil, 0
}

// defaultAlgorithms are the algorithms a key verifies when its source names
// none: the most common one for RSA (RS256, not the PS family), the one
// algorithm that matches an EC curve, EdDSA, HS256.
func defaultAlgorithms(kind keyKind, curve elliptic.Curve) []string {
	switch kind {
	case kindRSA:
		return []string{"RS256"}
	case kindEC:
		switch curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case kindEd25519:
		return []string{"EdDSA"}
	case kindHMAC:
		return []string{"HS256"}
	}
	return nil
}

// checkKey reports whether k is a key we verify with: supported public key
// material of sufficient strength, and a non-empty Algorithms list whose
// every entry fits the key. Errors name the field (Key or Algorithms[i]).
func checkKey(k *Key) error {
	kind, curve, secretLen, err := checkMaterial(k.Key)
	if err != nil {
		return err
	}
	if len(k.Algorithms) == 0 {
		return errors.New("Algorithms: empty; name the algorithms this key verifies")
	}
	for i, alg := range k.Algorithms {
		akind, acurve, minSecret := algSpec(alg)
		switch {
		case akind == 0:
			return fmt.Errorf("Algorithms[%d]: %q is not a supported algorithm", i, alg)
		case akind != kind:
			return fmt.Errorf("Algorithms[%d]: %q does not fit an %s key", i, alg, kind)
		case acurve != nil && acurve != curve:
			return fmt.Errorf("Algorithms[%d]: %q needs curve %s, the key is on %s", i, alg, acurve.Params().Name, curve.Params().Name)
		case secretLen < minSecret:
			return fmt.Errorf("Algorithms[%d]: %q needs a secret of at least %d bytes, this one has %d (RFC 7518 §3.2)", i, alg, minSecret, secretLen)
		}
	}
	return nil
}

// checkMaterial checks the key material of a Key and says what kind it is.
func checkMaterial(key any) (kind keyKind, curve elliptic.Curve, secretLen int, err error) {
	switch key := key.(type) {
	case *rsa.PublicKey:
		if key == nil {
			return 0, nil, 0, errors.New("Key: missing")
		}
		return kindRSA, nil, 0, checkRSA(key)
	case *ecdsa.PublicKey:
		if key == nil {
			return 0, nil, 0, errors.New("Key: missing")
		}
		if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() && key.Curve != elliptic.P521() {
			return 0, nil, 0, errors.New("Key: ECDSA key is not on P-256, P-384 or P-521")
		}
		if key.X == nil || key.Y == nil {
			return 0, nil, 0, errors.New("Key: ECDSA key has no point")
		}
		if _, err := key.ECDH(); err != nil { // on the curve, not the point at infinity
			return 0, nil, 0, errors.New("Key: ECDSA point is not on the curve")
		}
		return kindEC, key.Curve, 0, nil
	case ed25519.PublicKey:
		if len(key) != ed25519.PublicKeySize {
			return 0, nil, 0, fmt.Errorf("Key: Ed25519 key of %d bytes, want %d", len(key), ed25519.PublicKeySize)
		}
		return kindEd25519, nil, 0, nil
	case []byte:
		if len(key) < minHMACBytes {
			return 0, nil, 0, fmt.Errorf("Key: HMAC secret of %d bytes is too short (at least %d)", len(key), minHMACBytes)
		}
		return kindHMAC, nil, len(key), nil
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, *ed25519.PrivateKey:
		return 0, nil, 0, fmt.Errorf("Key: %T is a private key; give its public key", key)
	}
	if key == nil {
		return 0, nil, 0, errors.New("Key: missing")
	}
	return 0, nil, 0, fmt.Errorf("Key: %T is not supported; use *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte", key)
}

func checkRSA(k *rsa.PublicKey) error {
	if k.N == nil || k.N.Sign() <= 0 {
		return errors.New("Key: RSA key has no modulus")
	}
	bits := k.N.BitLen()
	switch {
	case bits < minRSABits:
		return fmt.Errorf("Key: RSA key of %d bits is too weak (at least %d)", bits, minRSABits)
	case bits > maxRSABits:
		return fmt.Errorf("Key: RSA key of %d bits is too large (at most %d)", bits, maxRSABits)
	case k.N.Bit(0) == 0:
		return errors.New("Key: RSA modulus is even")
	case k.E < 3 || k.E&1 == 0 || k.E > 1<<31-1:
		return fmt.Errorf("Key: RSA exponent %d is invalid", k.E)
	}
	return nil
}

// ParseJWK parses one JSON Web Key (RFC 7517) into a Key that verifies
// signatures.
//
// Supported: "kty" RSA ("n", "e"; at least 2048 bits), EC ("crv" P-256,
// P-384 or P-521 with "x" and "y" of the curve's exact length, the point on
// the curve), OKP ("crv" Ed25519, "x" of 32 bytes), and oct ("k", an HMAC
// secret of at least 32 bytes). Members are base64url without padding
// (RFC 7515 §2); padded or otherwise invalid encodings are rejected.
//
// A key with "use" other than "sig", or "key_ops" without "verify", is
// refused. When the JWK names an "alg" it must fit the key (RS*/PS* for
// RSA, ES256 with P-256, ES384 with P-384, ES512 with P-521, EdDSA with
// Ed25519, HS* for oct) and becomes the key's only algorithm; otherwise the
// key gets RS256, the ES algorithm of its curve, EdDSA or HS256. "none" is
// never an algorithm. Certificate members ("x5c", "x5t", "x5u") are
// ignored, and "x5u" is never fetched. Private members ("d", "p", "q", ...) are ignored: only
// the public part is used. (A JWKS fetched from an identity provider drops
// such keys instead; see JWKS.)
func ParseJWK(data []byte) (Key, error) {
	m, err := jwkMembers(data)
	if err != nil {
		return Key{}, fmt.Errorf("auth: JWK: %w", err)
	}
	k, err := jwkFromMembers(m, false)
	if err != nil {
		return Key{}, fmt.Errorf("auth: JWK%s: %w", kidNote(m), err)
	}
	return k, nil
}

// ParseJWKSet parses a JWK Set (RFC 7517 §5) with the rules of ParseJWK.
// Keys that break a rule are left out of keys; dropped explains each one,
// naming its position and kid, for logs. err is set only when data is not a
// JWK Set at all.
func ParseJWKSet(data []byte) (keys []Key, dropped []error, err error) {
	return parseJWKSet(data, false)
}

// parseJWKSet parses a JWK Set. published is set for a set fetched from an
// identity provider, which must publish public keys only: a key that comes
// with its private part, or a symmetric (oct) key, is known to everyone who
// can fetch the set and could sign any token, so it is dropped.
func parseJWKSet(data []byte, published bool) (keys []Key, dropped []error, err error) {
	set, err := jwkMembers(data)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: JWK Set: %w", err)
	}
	raw, ok := set["keys"]
	if !ok {
		return nil, nil, errors.New(`auth: JWK Set: no "keys" member`)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil || elems == nil {
		return nil, nil, errors.New(`auth: JWK Set: "keys" is not an array`)
	}
	for i, elem := range elems {
		m, err := jwkMembers(elem)
		if err == nil {
			var k Key
			if k, err = jwkFromMembers(m, published); err == nil {
				keys = append(keys, k)
				continue
			}
		}
		dropped = append(dropped, fmt.Errorf("auth: JWK Set: keys[%d]%s dropped: %w", i, kidNote(m), err))
	}
	return keys, dropped, nil
}

// jwkMembers decodes a JSON object into its members. A map (rather than a
// struct) keeps member names exact: encoding/json would match "ALG" or
// "Kty" to struct fields case-insensitively.
func jwkMembers(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("invalid JSON at offset %d", syn.Offset)
		}
		return nil, errors.New("not a JSON object")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// kidNote names the kid of a (possibly broken) JWK for error messages.
func kidNote(m map[string]json.RawMessage) string {
	if kid, ok, err := stringMember(m, "kid"); ok && err == nil {
		return fmt.Sprintf(" (kid %q)", kid)
	}
	return ""
}

func jwkFromMembers(m map[string]json.RawMessage, published bool) (Key, error) {
	kty, ok, err := stringMember(m, "kty")
	if err != nil {
		return Key{}, err
	}
	if !ok {
		return Key{}, errors.New(`"kty": missing`)
	}
	kid, _, err := stringMember(m, "kid")
	if err != nil {
		return Key{}, err
	}
	if use, ok, err := stringMember(m, "use"); err != nil {
		return Key{}, err
	} else if ok && use != "sig" {
		return Key{}, fmt.Errorf(`"use": %q: not a signature key`, use)
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil || ops == nil {
			return Key{}, errors.New(`"key_ops": not an array of strings`)
		}
		if !slices.Contains(ops, "verify") {
			return Key{}, errors.New(`"key_ops": no "verify"`)
		}
	}
	alg, hasAlg, err := stringMember(m, "alg")
	if err != nil {
		return Key{}, err
	}
	if published && kty != "oct" {
		// Members that carry private key material (RFC 7518 §6.2.2 and
		// §6.3.2, RFC 8037 §2).
		for _, name := range [...]string{"d", "p", "q", "dp", "dq", "qi", "oth"} {
			if _, ok := m[name]; ok {
				return Key{}, fmt.Errorf("%q: private key material in a published key set; the key is compromised", name)
			}
		}
	}

	var (
		key   any
		kind  keyKind
		curve elliptic.Curve
	)
	switch kty {
	case "RSA":
		kind = kindRSA
		key, err = rsaFromJWK(m)
	case "EC":
		kind = kindEC
		var pub *ecdsa.PublicKey
		if pub, err = ecFromJWK(m); err == nil {
			key, curve = pub, pub.Curve
		}
	case "OKP":
		kind = kindEd25519
		key, err = ed25519FromJWK(m)
	case "oct":
		if published {
			return Key{}, errors.New(`"kty": "oct": a symmetric key in a published key set is known to everyone who can fetch it`)
		}
		kind = kindHMAC
		key, err = bytesMember(m, "k")
	default:
		return Key{}, fmt.Errorf(`"kty": %q is not supported`, kty)
	}
	if err != nil {
		return Key{}, err
	}

	algs := defaultAlgorithms(kind, curve)
	if hasAlg {
		akind, acurve, _ := algSpec(alg)
		if akind == 0 {
			return Key{}, fmt.Errorf(`"alg": %q is not a supported algorithm`, alg)
		}
		if akind != kind {
			return Key{}, fmt.Errorf(`"alg": %q does not fit an %s key`, alg, kind)
		}
		if acurve != nil && acurve != curve {
			return Key{}, fmt.Errorf(`"alg": %q does not fit an EC key on %s`, alg, curve.Params().Name)
		}
		algs = []string{alg}
	}
	k := Key{ID: kid, Algorithms: algs, Key: key}
	if err := checkKey(&k); err != nil {
		return Key{}, err
	}
	return k, nil
}

func rsaFromJWK(m map[string]json.RawMessage) (*rsa.PublicKey, error) {
	n, err := bytesMember(m, "n")
	if err != nil {
		return nil, err
	}
	e, err := bytesMember(m, "e")
	if err != nil {
		return nil, err
	}
	if len(e) > 4 {
		return nil, errors.New(`"e": exponent too large`)
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func ecFromJWK(m map[string]json.RawMessage) (*ecdsa.PublicKey, error) {
	crv, ok, err := stringMember(m, "crv")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New(`"crv": missing`)
	}
	var curve elliptic.Curve
	switch crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf(`"crv": %q is not supported for "EC"`, crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := bytesMember(m, "x")
	if err != nil {
		return nil, err
	}
	y, err := bytesMember(m, "y")
	if err != nil {
		return nil, err
	}
	// RFC 7518 §6.2.1.2: the coordinates are exactly the curve's size.
	if len(x) != size {
		return nil, fmt.Errorf(`"x": %d bytes, %s needs %d`, len(x), crv, size)
	}
	if len(y) != size {
		return nil, fmt.Errorf(`"y": %d bytes, %s needs %d`, len(y), crv, size)
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4) // uncompressed SEC 1 point
	point = append(point, x...)
	point = append(point, y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf(`"x", "y": not a point on %s`, crv)
	}
	return pub, nil
}

func ed25519FromJWK(m map[string]json.RawMessage) (ed25519.PublicKey, error) {
	crv, ok, err := stringMember(m, "crv")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New(`"crv": missing`)
	}
	if crv != "Ed25519" {
		return nil, fmt.Errorf(`"crv": %q is not supported for "OKP"`, crv)
	}
	x, err := bytesMember(m, "x")
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf(`"x": %d bytes, Ed25519 needs %d`, len(x), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// stringMember returns the string member name of m; ok reports whether it
// is present.
func stringMember(m map[string]json.RawMessage, name string) (s string, ok bool, err error) {
	raw, ok := m[name]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", true, fmt.Errorf("%q: not a string", name)
	}
	return s, true, nil
}

// bytesMember returns the required base64url member name of m, decoded.
func bytesMember(m map[string]json.RawMessage, name string) ([]byte, error) {
	s, ok, err := stringMember(m, name)
	if err != nil {
		return nil, err
	}
	if !ok || s == "" {
		return nil, fmt.Errorf("%q: missing", name)
	}
	b, err := decodeBase64URL(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", name, err)
	}
	return b, nil
}

// decodeBase64URL decodes unpadded base64url (RFC 7515 §2). The decoder
// alone would skip CR and LF; the alphabet check refuses them too.
func decodeBase64URL(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not base64url without padding")
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64url without padding")
	}
	return b, nil
}

// HMACKey returns a Key for an HMAC secret shared with the token issuer.
// The secret must have at least 32 bytes, and at least the hash size of
// each algorithm (48 for HS384, 64 for HS512; RFC 7518 §3.2). algs are
// HS256, HS384 or HS512; none means HS256. The secret is copied.
func HMACKey(id string, secret []byte, algs ...string) (Key, error) {
	if len(algs) == 0 {
		algs = defaultAlgorithms(kindHMAC, nil)
	}
	k := Key{ID: id, Algorithms: slices.Clone(algs), Key: slices.Clone(secret)}
	if err := checkKey(&k); err != nil {
		return Key{}, fmt.Errorf("auth: HMACKey %q: %w", id, err)
	}
	return k, nil
}

// PEMKey returns a Key for the public key in pemData: a "PUBLIC KEY"
// (PKIX), an "RSA PUBLIC KEY" (PKCS #1) or a "CERTIFICATE" block, of which
// only the first is read. From a certificate only the public key is used:
// its validity period and chain are not checked. RSA keys need at least
// 2048 bits; EC keys must be on P-256, P-384 or P-521. algs must fit the
// key; none means RS256 for RSA, the ES algorithm of the curve, or EdDSA.
// A private key is refused: the gateway only verifies.
func PEMKey(id string, pemData []byte, algs ...string) (Key, error) {
	fail := func(err error) (Key, error) { return Key{}, fmt.Errorf("auth: PEMKey %q: %w", id, err) }
	block, _ := pem.Decode(pemData)
	if block == nil {
		return fail(errors.New("no PEM block"))
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return fail(fmt.Errorf("PEM block %q holds a private key; give the public key", block.Type))
	default:
		return fail(fmt.Errorf("PEM block %q is not a public key or certificate", block.Type))
	}
	if err != nil {
		return fail(fmt.Errorf("PEM block %q: %w", block.Type, err))
	}
	kind, curve, _, err := checkMaterial(pub)
	if err != nil {
		return fail(err)
	}
	if len(algs) == 0 {
		algs = defaultAlgorithms(kind, curve)
	}
	k := Key{ID: id, Algorithms: slices.Clone(algs), Key: pub}
	if err := checkKey(&k); err != nil {
		return fail(err)
	}
	return k, nil
}

// StaticKeys returns a KeySource that serves keys, checked now: each must
// name its Algorithms, each algorithm must fit the key's type (and curve),
// and the key must meet the strength rules (RSA at least 2048 bits, HMAC
// secrets at least 32 bytes and the hash size). Errors name the key by
// position and ID, and the field at fault. Keys are copied.
//
// Keys(ctx, kid) returns the keys with ID kid, all keys for kid "", and
// ErrUnknownKey otherwise. The slices it returns are shared: callers must
// not modify them.
func StaticKeys(keys ...Key) (KeySource, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: StaticKeys: no keys")
	}
	all := make([]Key, len(keys))
	for i, k := range keys {
		if err := checkKey(&k); err != nil {
			return nil, fmt.Errorf("auth: StaticKeys: keys[%d] (ID %q): %w", i, k.ID, err)
		}
		k.Algorithms = slices.Clone(k.Algorithms)
		if b, ok := k.Key.([]byte); ok {
			k.Key = slices.Clone(b)
		}
		all[i] = k
	}
	return newKeySet(all), nil
}

// A keySet is an immutable set of keys indexed by ID, built once so that a
// lookup is one map access and no allocation.
type keySet struct {
	all  []Key
	byID map[string][]Key
}

var _ KeySource = (*keySet)(nil)

func newKeySet(keys []Key) *keySet {
	s := &keySet{all: slices.Clip(keys), byID: make(map[string][]Key, len(keys))}
	for _, k := range keys {
		if k.ID != "" {
			s.byID[k.ID] = append(s.byID[k.ID], k)
		}
	}
	for id, ks := range s.byID {
		s.byID[id] = slices.Clip(ks) // an append by a caller cannot reach the next key
	}
	return s
}

// lookup returns the keys with ID kid, or all keys for kid "".
func (s *keySet) lookup(kid string) ([]Key, bool) {
	if kid == "" {
		return s.all, true
	}
	ks, ok := s.byID[kid]
	return ks, ok
}

// Keys implements KeySource.
func (s *keySet) Keys(ctx context.Context, kid string) ([]Key, error) {
	if ks, ok := s.lookup(kid); ok {
		return ks, nil
	}
	return nil, ErrUnknownKey
}
