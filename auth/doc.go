// Package auth will hold gatekit's authenticators and authorizers: JWT
// validation (golang-jwt/jwt/v5) with keys from a static set, a JWKS URL or
// OIDC discovery; API keys; claims and scopes authorization; and forwarding
// of the authenticated identity to upstreams. Each is a
// gateway.Authenticator or gateway.Authorizer.
package auth
