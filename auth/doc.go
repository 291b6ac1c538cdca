// Package auth holds gatekit's authenticators and authorizers: JWT bearer
// tokens checked against keys from a static set, a JWKS URL or OIDC
// discovery; API keys; OAuth2 token introspection (RFC 7662) for opaque
// tokens; policies on scopes, roles and claims; and forwarding of the
// caller's identity to upstreams.
//
// A route that accepts a JWT or an API key, requires a scope, and tells its
// upstream who called:
//
//	keys, _ := auth.DiscoverJWKS(ctx, "https://idp.example.com", auth.JWKSConfig{})
//	jwt, _ := auth.JWT(auth.JWTConfig{Keys: keys, Issuers: []string{"https://idp.example.com"}, Audiences: []string{"orders"}})
//	apiKeys, _ := auth.APIKeys(auth.APIKeyConfig{Store: store})
//	canRead, _ := auth.Require(auth.Policy{Scopes: []string{"orders:read"}})
//	fwd, _ := auth.Forward(auth.ForwardConfig{Headers: map[string]string{"X-User-Id": "sub"}, StripAuthorization: true})
//
//	orders := gateway.NewPipeline(upstream,
//		gateway.Authenticate(jwt, apiKeys), // the first that finds its credentials decides
//		gateway.Authorize(canRead),
//		gateway.TransformRequest(fwd),
//	)
//
// # Failures
//
// A bad or missing credential answers 401 with a WWW-Authenticate challenge
// (RFC 6750 for bearer tokens: error="invalid_token" and a description that
// never repeats the token); a caller without the required scope, role or
// claim answers 403 with error="insufficient_scope". Two credentials where
// one is expected (two Authorization fields, a token in the header and the
// query) answer 400. When keys cannot be had at all (the identity provider
// has been unreachable since start-up) or an introspection endpoint is down,
// requests are refused with 503: the gateway fails closed.
//
// # Several authenticators
//
// gateway.Authenticate(a, b) accepts the first authenticator that finds
// credentials of its kind; All(a, b) requires every one; Anonymous, listed
// last, opens a route to callers without credentials while still refusing
// bad ones.
package auth
