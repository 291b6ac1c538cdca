package proxy_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

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
