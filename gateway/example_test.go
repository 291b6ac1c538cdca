package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// A pipeline of stages in front of an in-process upstream, mounted as an
// ordinary http.Handler.
func ExamplePipeline() {
	hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("hello, "+req.Principal.Subject)), nil
	})
	byHeader := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		user := req.HTTP.Header.Get("X-User")
		if user == "" {
			return nil, gateway.ErrNotResponsible
		}
		return &gateway.Principal{Subject: user}, nil
	})
	p := gateway.NewPipeline(hello, gateway.Authenticate(byHeader))

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-User", "ada")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	fmt.Println(rec.Code, rec.Body.String())

	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// 200 hello, ada
	// 401 application/problem+json
}

// A route table: path parameters, methods, and the 404 and 405 replies.
func ExampleRouter() {
	user := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("user "+req.Param("id"))), nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "get-user", Methods: []string{"GET"}, Path: "/users/{id}", Handler: user},
	}})
	if err != nil {
		panic(err)
	}
	for _, target := range []string{"GET /users/42", "GET /users/a/../7", "DELETE /users/42", "GET /orders"} {
		method, path, _ := strings.Cut(target, " ")
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusOK {
			body = []byte("Allow: " + rec.Header().Get("Allow"))
		}
		fmt.Println(target, "->", rec.Code, string(body))
	}
	// Output:
	// GET /users/42 -> 200 user 42
	// GET /users/a/../7 -> 200 user 7
	// DELETE /users/42 -> 405 Allow: GET, HEAD
	// GET /orders -> 404 Allow:
}

// Errors carry their HTTP meaning; the pipeline writes them as RFC 9457
// problem documents.
func ExampleError() {
	err := (&gateway.Error{Status: http.StatusTooManyRequests, Detail: "slow down"}).WithHeader("Retry-After", "2")
	rec := httptest.NewRecorder()
	err.Write(rec)
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))
	fmt.Println(rec.Body.String())
	// Output:
	// 429 2 application/problem+json
	// {"detail":"slow down","status":429,"title":"Too Many Requests","type":"about:blank"}
}

// A Server with LeanHTTP1 serves HTTP/1.x on gatekit's own connection loop;
// handlers see no difference but for a client that leaves early (see the
// package documentation, "Lean HTTP/1.x").
func ExampleServer_leanHTTP1() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &gateway.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello over %s", r.Proto)
		}),
		LeanHTTP1: true,
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, resp.ContentLength, string(body))
	} else {
		fmt.Println(err)
	}

	stop() // a graceful shutdown
	fmt.Println("shutdown:", <-done)
	// Output:
	// 200 OK 19 hello over HTTP/1.1
	// shutdown: <nil>
}
