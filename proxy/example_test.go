package proxy_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// A gateway that serves /api from a backend whose API lives under /v1.
func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend got %s from %s\n", r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"))
	}))
	defer backend.Close()

	users, err := proxy.HTTP(proxy.HTTPConfig{
		Targets:     []string{backend.URL + "/v1"},
		StripPrefix: "/api",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()

	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{PathPrefix: "/api", Handler: users},
	}})
	if err != nil {
		log.Fatal(err)
	}
	gw := httptest.NewServer(router)
	defer gw.Close()

	resp, err := gw.Client().Get(gw.URL + "/api/users/42?fields=name")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Print(string(body))
	// Output:
	// 200 OK
	// backend got /v1/users/42?fields=name from 127.0.0.1
}

// Two instances with weights 3:1, one of which fails now and then: the
// proxy retries a GET that met a 503 on the other instance, so the client
// never sees the failure.
func ExampleHTTP_weightedWithRetries() {
	var calls [2]atomic.Int64
	instance := func(i int, flaky bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := calls[i].Add(1); flaky && n%2 == 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "ok")
		}))
	}
	a, b := instance(0, false), instance(1, true)
	defer a.Close()
	defer b.Close()

	up, err := proxy.HTTP(proxy.HTTPConfig{
		Discovery: proxy.StaticTargets(proxy.Target{URL: a.URL, Weight: 3}, proxy.Target{URL: b.URL, Weight: 1}),
		Balance:   proxy.Weighted(),
		Retry:     &proxy.RetryPolicy{Attempts: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	gw := httptest.NewServer(gateway.NewPipeline(up))
	defer gw.Close()

	failures := 0
	for range 40 {
		resp, err := gw.Client().Get(gw.URL + "/")
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failures++
		}
	}
	fmt.Println("failures seen by the client:", failures)
	fmt.Println("first instance served at least 30:", calls[0].Load() >= 30)
	// Output:
	// failures seen by the client: 0
	// first instance served at least 30: true
}
