// Package gateway is the core of gatekit: the request and reply types that
// travel through a pipeline, the stage interfaces, the router and a server
// with safe defaults.
//
// An application builds pipelines in its own main, puts them in a route
// table, and serves the table as an ordinary http.Handler:
//
//	users := gateway.NewPipeline(upstream,
//		gateway.Authenticate(jwtAuth),
//		gateway.Validate(schema),
//		gateway.Limit(perKey),
//	)
//	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
//		{Methods: []string{"GET"}, Path: "/users/{id}", Handler: users},
//	}})
//	srv := &gateway.Server{Addr: ":8080", Handler: router}
//	err = srv.ListenAndServe(ctx)
//
// # The shape of a stage
//
// A Handler is Serve(ctx, *Request) (*Response, error) and a Stage is
// func(Handler) Handler. We chose this value-returning shape over one that
// writes to an http.ResponseWriter because a reply that is a value is what
// reply transforms and aggregation need: a stage can inspect and reshape it,
// and an aggregate can merge several. It costs pass-through nothing, because
// a Response's body stays a stream (the upstream's own body) unless a stage
// asks for its bytes; the gateway copies it to the client as it arrives and
// flushes when its length is unknown, so event streams work. Stages return
// errors and the gateway writes each as a problem+json document (RFC 9457)
// in one place; a panic in a stage is logged and answered with 500.
//
// The request body is likewise read only when a stage calls Request.Body;
// otherwise it streams to the upstream, bounded by the body limit (413).
//
// # Paths
//
// Before routing, the path is normalised: "//" collapsed, "." and ".."
// resolved, percent-encoding made canonical. Encodings that servers decode
// differently (%2F, %5C, backslash, %00 and other control characters, '#',
// and "..;" dot segments with parameters) are refused with 400 unless
// Options.AllowAmbiguousPaths is set. Routes are matched on the normalised
// path, authentication sees it, and the upstream receives exactly it.
// Matching is case-sensitive and a trailing slash counts: "/Admin" and
// "/admin/" are not "/admin", so a catch-all route may serve them.
//
// # Headers
//
// Before any stage runs, the fields a client named in Connection are
// dropped (so it cannot have a field a stage set stripped on the way out),
// and so are fields whose name has an underscore (so "X_User_Id" cannot
// pass for "X-User-Id" at a backend that folds the two), unless
// Options.AllowUnderscoreHeaders is set.
//
// Request framing is net/http's: a request with both Content-Length and
// Transfer-Encoding is read by its chunked encoding (RFC 9112 §6.3), and an
// HTTP/1.0 request's Transfer-Encoding is ignored. Upstream requests are
// framed anew, so neither reaches a backend ambiguously; refusing them
// outright needs a connection-level check, which the hardening work adds.
//
// # Routing precedence
//
// See Router for the full order. In short: exact path over prefix, longer
// prefix over shorter, literal segment over parameter, exact host over
// wildcard host, named method over any method, more header matchers, more
// query matchers, then declaration order. A path with routes but none for
// the method answers 405 with Allow; no route answers 404.
package gateway
