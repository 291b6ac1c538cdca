package h1_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gatekit/gatekit/proxy/h1"
)

// A Transport is an http.RoundTripper: here in an http.Client, and in
// proxy.HTTPConfig.Transport for an upstream whose targets are http://.
func ExampleNew() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	defer backend.Close()

	tr := h1.New(h1.Config{MaxIdlePerHost: 64})
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	resp, err := client.Get(backend.URL + "/users/42")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK hello from /users/42
}
