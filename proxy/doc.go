// Package proxy holds gatekit's upstreams: the Handlers at the end of a
// pipeline that send a request on and bring the reply back.
//
// HTTP builds a reverse proxy to one or more instances of an HTTP backend:
//
//	users, err := proxy.HTTP(proxy.HTTPConfig{
//		Targets:     []string{"http://10.0.0.5:8080", "http://10.0.0.6:8080"},
//		StripPrefix: "/users",
//	})
//	if err != nil {
//		return err
//	}
//	defer users.Close()
//	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
//		{PathPrefix: "/users", Handler: gateway.NewPipeline(users, authenticate)},
//	}})
//
// The proxy is correct without configuration: hop-by-hop fields are
// removed, X-Forwarded-* and Forwarded cannot be spoofed by clients,
// bodies stream both ways with trailers and 103 Early Hints, upstream
// replies pass through unchanged, and failures answer 502, 504 or 413 as
// problem+json. See HTTPUpstream for the details.
package proxy
