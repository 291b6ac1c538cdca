package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Targets, measured on the matching step (normalise and match) over the
// 1,000-route table of benchRoutes: under 500 ns and no allocation for a
// request that matches.

// benchRoutes returns 1,000 routes shaped like a real gateway's: 200
// services, each with a collection, an item with a parameter, a file tree
// under a prefix, some on a host, some selected by a header.
func benchRoutes(h Handler) []Route {
	routes := make([]Route, 0, 1000)
	for i := range 200 {
		svc := fmt.Sprintf("/svc%d", i)
		item := Route{Methods: []string{"GET", "PUT"}, Path: svc + "/items/{id}", Handler: h}
		if i%4 == 0 {
			item.Host = "*.example.com"
		}
		list := Route{Methods: []string{"GET"}, Path: svc + "/items", Handler: h}
		if i%5 == 0 {
			list.Headers = map[string]string{"X-Tenant": ""}
		}
		routes = append(routes,
			list,
			Route{Methods: []string{"POST"}, Path: svc + "/items", Handler: h},
			item,
			Route{Methods: []string{"DELETE"}, Host: "api.example.com", Path: svc + "/items/{id}", Handler: h},
			Route{PathPrefix: svc + "/files", Handler: h},
		)
	}
	return routes
}

var benchOK = []byte(`{"ok":true}`)

func benchRouter(tb testing.TB) *Router {
	tb.Helper()
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		return NewResponse(http.StatusOK, nil, benchOK), nil
	})
	rt, err := NewRouter(RouterConfig{Routes: benchRoutes(h)})
	if err != nil {
		tb.Fatal(err)
	}
	if n := len(rt.Routes()); n != 1000 {
		tb.Fatalf("%d routes", n)
	}
	return rt
}

type benchCase struct {
	name, method, target, host string
	header                     http.Header
	want                       string // the route's Path or PathPrefix
}

var benchCases = []benchCase{
	{name: "static", method: "GET", target: "/svc151/items", want: "/svc151/items"},
	{name: "static header", method: "GET", target: "/svc150/items", header: http.Header{"X-Tenant": {"a"}}, want: "/svc150/items"},
	{name: "param", method: "GET", target: "/svc150/items/42", want: "/svc150/items/{id}"},
	{name: "param host", method: "DELETE", target: "/svc150/items/42", host: "api.example.com", want: "/svc150/items/{id}"},
	{name: "param wildcard host", method: "GET", target: "/svc152/items/42", host: "shop.example.com", want: "/svc152/items/{id}"},
	{name: "prefix", method: "GET", target: "/svc150/files/a/b/c.txt", want: "/svc150/files"},
	{name: "unclean", method: "GET", target: "//svc150/./items/x/../42", want: "/svc150/items/{id}"},
}

func (bc benchCase) request() *http.Request {
	r := httptest.NewRequest(bc.method, bc.target, nil)
	if bc.host != "" {
		r.Host = bc.host
	}
	for k, v := range bc.header {
		r.Header[k] = v
	}
	return r
}

func BenchmarkRouterMatch(b *testing.B) {
	rt := benchRouter(b)
	cases := append(benchCases,
		benchCase{name: "not found", method: "GET", target: "/svc150/nothing/here"},
		benchCase{name: "method not allowed", method: "PATCH", target: "/svc150/items/42"},
	)
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			r := bc.request()
			var req Request
			b.ReportAllocs()
			for b.Loop() {
				cr, _ := rt.lookupRequest(&req, r)
				if (cr == nil) != (bc.want == "") {
					b.Fatalf("%s %s: matched %v", bc.method, bc.target, cr)
				}
			}
		})
	}
}

// nopWriter is a ResponseWriter that throws the reply away.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func BenchmarkRouterServeHTTP(b *testing.B) {
	rt := benchRouter(b)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			r := bc.request()
			w := &nopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				rt.ServeHTTP(w, r)
			}
			if ct := w.h.Get("Content-Type"); ct == ProblemContentType {
				b.Fatalf("%s %s: a problem", bc.method, bc.target)
			}
		})
	}
}

// TestRouterMatchAllocs guards the matching step: routing a request that
// matches allocates nothing, whatever kind of route it matches.
func TestRouterMatchAllocs(t *testing.T) {
	rt := benchRouter(t)
	for _, bc := range benchCases {
		if bc.name == "unclean" {
			continue // cleaning a path builds a new one
		}
		t.Run(bc.name, func(t *testing.T) {
			r := bc.request()
			var req Request
			cr, perr := rt.lookupRequest(&req, r)
			if perr != nil {
				t.Fatalf("%s %s: %v", bc.method, bc.target, perr)
			}
			if got := cr.Path + cr.PathPrefix; got != bc.want {
				t.Fatalf("%s %s matched %q, want %q", bc.method, bc.target, got, bc.want)
			}
			if n := testing.AllocsPerRun(200, func() { rt.lookupRequest(&req, r) }); n != 0 {
				t.Fatalf("%s %s: %v allocations per match, want 0", bc.method, bc.target, n)
			}
		})
	}
}
