// Package proxy holds gatekit's upstreams: the Handlers at the end of a
// pipeline that send a request on and bring the reply back, and what keeps
// them standing when backends fail.
//
// # Integration kinds
//
//   - HTTP: a reverse proxy to one or more instances of an HTTP backend
//     (HTTPUpstream), correct without configuration: hop-by-hop fields
//     removed, X-Forwarded-* and Forwarded unspoofable, bodies streamed
//     both ways with trailers and 1xx, upstream replies passed through
//     unchanged but for a Location that names the internal address (made
//     the client's), failures answered 502, 503, 504 or 413 as
//     problem+json, and a reply that fails mid-body cut off so that the
//     client sees it truncated. Its transport is net/http's unless
//     HTTPConfig.Transport says otherwise; for plain-http backends the
//     subpackage h1 offers a leaner one (proxy/h1: no goroutines per
//     connection; 1.60× httputil.ReverseProxy's throughput where net/http's
//     gave 1.34×, examples/loadtest/RESULTS.md), with the limits its
//     documentation lists.
//   - Function: an in-process Go function, with a per-call timeout and
//     panics and errors turned into 502s (Function), or a handler written
//     for AWS API Gateway's Lambda proxy integration, payload 2.0 or 1.0,
//     run unchanged on the event and response documents that format
//     defines (Lambda, LambdaV2Handler, LambdaV1Handler).
//   - Mock: static or templated replies chosen by matchers, with optional
//     latency, to build clients before the backend exists (Mock). Values
//     from the request are escaped for the body's content type.
//   - Private: a backend behind a unix domain socket or mutual TLS
//     (NewPrivateTransport, used as HTTPConfig.Transport). Destinations
//     come from configuration only, never from the request.
//   - Aggregate: several upstreams called at once and their JSON replies
//     merged, with per-backend timeouts and a partial-failure policy
//     (Aggregate); or called in turn, a later call using values of an
//     earlier reply (Sequence).
//   - Mirror: a share of a route's requests copied to a second upstream,
//     fire-and-forget, never affecting the client (Mirror).
//
// # Many targets and failing ones
//
// An HTTPUpstream spreads requests over its targets (HTTPConfig.Balance:
// RoundRobin, Weighted, LeastInFlight, or HashBy a header, a cookie or the
// client's address for sticky sessions), takes targets out on failed
// active health checks (HealthCheck) or consecutive failures (Passive), and
// opens a circuit breaker per target after a failure ratio (Breaker).
// When no target can take a request, the client gets 503 with Retry-After.
// RetryPolicy retries idempotent requests (others only when asked) on
// another target, with exponential backoff, full jitter and a budget that
// keeps retries a fraction of traffic; never once the reply has started,
// and a body only when it can be sent again. Targets can come from a
// static list, from DNS (A/AAAA or SRV) or from a function
// (HTTPConfig.Discovery), and change without a restart.
//
//	users, err := proxy.HTTP(proxy.HTTPConfig{
//		Targets:     []string{"http://10.0.0.5:8080", "http://10.0.0.6:8080"},
//		StripPrefix: "/users",
//		Balance:     proxy.LeastInFlight(),
//		Passive:     &proxy.PassiveHealth{Failures: 5, Cooldown: 30 * time.Second},
//		Retry:       &proxy.RetryPolicy{Attempts: 2},
//	})
//	if err != nil {
//		return err
//	}
//	defer users.Close()
//	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
//		{PathPrefix: "/users", Handler: gateway.NewPipeline(users, authenticate)},
//	}})
package proxy
