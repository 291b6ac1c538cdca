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
// Header fields only the gateway sets for upstreams are removed from every
// client request (Options.InternalHeaders), and, unless the peer is a
// trusted proxy (Options.TrustedProxies), so are X-Real-IP, Forwarded and
// every X-Forwarded-* field.
//
// # Request framing
//
// A Server refuses HTTP/1.x requests whose framing two parsers could read
// differently, the raw material of request smuggling: Content-Length and
// Transfer-Encoding together, Transfer-Encoding in an HTTP/1.0 request, a
// header line folded onto the previous one, a malformed chunked body. The
// request gets 400 and its connection is closed, so nothing that followed
// it on the connection is served (net/http alone would read the first by
// its chunked encoding and then serve the rest as the next request). The
// check reads along with the server's loop (net/http's, or the lean one
// below) on the connection, after TLS is decrypted; it cost 0.13–0.64 µs and no allocation for a 1.4 KB request
// (BenchmarkFramingScanner). Server.LenientFraming turns it off. It needs
// the connection, so it is a Server's: a Router served by a plain
// http.Server keeps net/http's framing. HTTP/2 has no such ambiguity.
//
// # Lean HTTP/1.x
//
// Server.LeanHTTP1 (opt-in) serves HTTP/1.x connections on a connection
// loop of the gateway's own instead of net/http's server; HTTP/2 stays with
// net/http. Requests are still parsed by net/http (http.ReadRequest) and
// checked as its server checks them, the framing check above still reads
// along, and the http.ResponseWriter follows net/http's: Content-Length
// for a reply that ends within 2 KiB, chunked (or closed, for HTTP/1.0)
// beyond, HEAD, 1xx, 204 and 304 without a body, Date, Content-Type
// sniffing, trailers, Expect: 100-continue, up to 256 KiB of an unread
// request body read to keep the connection, Flush, Hijack and
// http.ResponseController. The package's tests run on both loops
// (GATEKIT_TEST_SERVER=lean), and a differential test sends the same raw
// requests to both and compares what a client reads: statuses, header
// fields but Date, bodies, trailers, framing and whether the connection
// stays open (for refusals, only the status and the close: the lean loop
// answers in problem+json, net/http in plain text).
//
// What it saves: net/http reads in the background while a handler runs
// (a second goroutine, a read system call and two deadline changes per
// request), and holds a write buffer per connection and another per
// request. The lean loop has one goroutine per connection and takes its
// write buffer from a pool for each reply. A keep-alive round trip over
// loopback (BenchmarkServer, a 1 KiB reply with its Content-Length) took
// 22.0–24.7 µs against net/http's 31.7–35.5 µs, with 28 allocations
// against 30 (most of them net/http's parser, shared by both).
//
// What it gives up: without the background read, a client that goes away
// while its request is served is noticed when the reply is written, so the
// request's context is not cancelled early (upstream timeouts bound the
// wait). Two deliberate differences: an HTTP/1.1 request with an empty Host
// is refused (400; an http URI's authority cannot be empty, RFC 9110
// §4.2.1), and one in absolute form without Host is served, its target
// naming the host (RFC 9112 §3.2.2); net/http does the opposite in both.
// Over TLS, framing is checked even with LenientFraming.
//
// # Server defaults
//
// A Server's defaults are set for a gateway on the public edge. Each is a
// field to change; where a well-known edge proxy recommends or ships a
// value, it is named as the anchor.
//
//	Setting                         gatekit default    anchor
//	Server.ReadHeaderTimeout        10 s               nginx client_header_timeout 60 s (stricter here: slowloris)
//	Server.ReadTimeout (whole req.) 60 s               nginx client_body_timeout 60 s (between reads)
//	Server.WriteTimeout             none               streams and long downloads; upstream timeouts answer 504
//	Server.IdleTimeout              120 s              nginx keepalive_timeout 75 s; Envoy idle_timeout 1 h
//	Server.MaxHeaderBytes           64 KiB             Envoy max_request_headers_kb 60
//	Server.MaxHeaderCount           100 fields (431)   Envoy max_headers_count 100
//	Server.MaxURIBytes              8 KiB (414)        nginx large_client_header_buffers 8k (414 beyond)
//	Server.ShutdownTimeout          30 s               Kubernetes terminationGracePeriodSeconds 30 s
//	TLS minimum version             TLS 1.2            Mozilla "intermediate" configuration
//	HTTP/2 concurrent streams       100 per connection Envoy edge max_concurrent_streams 100
//	HTTP/2 receive window           64 KiB per stream, Envoy edge initial_stream_window_size 64 KiB,
//	                                1 MiB per conn.    initial_connection_window_size 1 MiB
//	Ambiguous framing               refused (400)      RFC 9112 §6.1, §6.3
//	Options.MaxBodyBytes            10 MiB (413)       nginx client_max_body_size 1 MiB (APIs carry more)
//	Header names with '_'           dropped            nginx underscores_in_headers off; Envoy edge REJECT_REQUEST
//	X-Forwarded-* from clients      dropped            Envoy edge use_remote_address true
//	Path normalisation              on, ambiguous encodings 400  Envoy edge normalize_path, merge_slashes
//	CONNECT, TRACE                  405                nginx refuses TRACE with 405
//
// Limits the Server enforces before the handler (414, 431, ambiguous
// framing) are answered as problem+json but are not seen by a Router's
// Observers, which start after them.
//
// # Routing precedence
//
// See Router for the full order. In short: exact path over prefix, longer
// prefix over shorter, literal segment over parameter, exact host over
// wildcard host, named method over any method, more header matchers, more
// query matchers, then declaration order. A path with routes but none for
// the method answers 405 with Allow; no route answers 404.
package gateway
