// Package metrics exports a gateway's request, upstream, rate-limit,
// circuit-breaker and JWKS metrics with the Prometheus client. A *Metrics is
// a gateway.Observer; its Handler serves the scrape, usually on an admin
// port apart from the API:
//
//	m, err := metrics.New(metrics.Config{})
//	if err != nil { ... }
//	router, err := gateway.NewRouter(gateway.RouterConfig{
//		Options: gateway.Options{Observers: []gateway.Observer{m}},
//		Routes:  routes,
//	})
//	go http.ListenAndServe("127.0.0.1:9090", m.Handler())
//
// Components that cannot import this package report through plain
// functions the application wires up: BreakerStateChanged for a proxy's
// circuit breakers and JWKSRefreshed for auth's key sets.
//
// # Metrics
//
// Names are shown with the default namespace "gatekit" (Config.Namespace).
//
//	name                                 type       labels
//	gatekit_requests_total               counter    route, method, status
//	gatekit_request_duration_seconds     histogram  route, method
//	gatekit_requests_in_flight           gauge      -
//	gatekit_request_body_bytes_total     counter    route
//	gatekit_response_body_bytes_total    counter    route
//	gatekit_upstream_duration_seconds    histogram  upstream, target
//	gatekit_upstream_errors_total        counter    upstream, target
//	gatekit_ratelimit_decisions_total    counter    policy, decision
//	gatekit_breaker_state                gauge      target
//	gatekit_breaker_transitions_total    counter    target, to
//	gatekit_jwks_refreshes_total         counter    source, result
//
// # Labels
//
// Every label value comes from configuration, never from the raw request,
// so the number of series stays that of the routes, targets and policies:
//
//   - route is the matched route's name (gateway.Route.Name; a Router names
//     an unnamed route from its methods, host and pattern, such as
//     "GET /users/{id}"), else its Path, else its PathPrefix. A request that
//     matched no route, or that a Pipeline served on its own, has
//     route="unmatched". /users/1 and /users/2 are one series.
//   - method is GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT or
//     TRACE; any other method is "OTHER".
//   - status is the status code written to the client ("404"); when nothing
//     was written it is the status of the problem answered, or "0" if the
//     client went away first.
//   - upstream and target are gateway.UpstreamCall.Upstream and .Target
//     ("http", "10.0.0.7:8080"). An upstream call counts as an error when
//     its Err is set; an upstream's 5xx reply is not an error here (it is
//     in requests_total's status).
//   - policy and decision come from each gateway.Note with Key "ratelimit"
//     whose Value is "<policy> <decision>", as the ratelimit package
//     writes it ("per-client refused"; decisions are admitted, refused,
//     failed-open and error). The policy is everything before the last
//     space.
//   - breaker_state is 0 closed, 1 half-open, 2 open.
//   - result is "ok" or "error".
//
// As a guard against a component that names targets or routes per
// request, each of route, target and rate-limit note takes at most
// MaxLabelValues distinct values; later ones are counted under "other".
package metrics
