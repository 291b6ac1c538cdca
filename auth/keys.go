package auth

import (
	"context"
	"errors"
	"slices"
)

// A Key is a key that verifies token signatures, pinned to the algorithms
// it may verify. The algorithm a token names is only ever checked against
// this list; it never chooses the key or how the key is used, which is what
// defeats "alg: none" and the HMAC-with-a-public-key confusion.
type Key struct {
	// ID is the key ID ("kid") tokens name to select it. A token without a
	// kid is tried against every key of the source that allows its
	// algorithm, so give keys IDs when a source holds more than a few.
	ID string
	// Algorithms are the JWS algorithms ("RS256", "ES384", "EdDSA",
	// "HS256", ...) this key verifies. Required.
	Algorithms []string
	// Key is the verification key: *rsa.PublicKey, *ecdsa.PublicKey,
	// ed25519.PublicKey, or []byte for an HMAC secret.
	Key any
}

// Allows reports whether k may verify a signature made with alg.
func (k *Key) Allows(alg string) bool { return slices.Contains(k.Algorithms, alg) }

// A KeySource finds verification keys: a static set, or the JWKS of an
// identity provider.
type KeySource interface {
	// Keys returns the keys with ID kid (all keys when kid is ""). It
	// returns ErrUnknownKey when there is none, and ErrKeysUnavailable
	// when no key set could ever be loaded. The slice may be shared: the
	// caller must not modify it.
	Keys(ctx context.Context, kid string) ([]Key, error)
}

var (
	// ErrUnknownKey means no key has the ID a token names.
	ErrUnknownKey = errors.New("auth: no key with that key ID")
	// ErrKeysUnavailable means the key source has never loaded a key set
	// (the identity provider has been unreachable since start-up); tokens
	// are then refused, never accepted unchecked.
	ErrKeysUnavailable = errors.New("auth: no key set is available")
)
