package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/gateway/metrics"
)

// Metrics observe a Router; their Handler serves the scrape, here from a
// recorder, in practice on an admin port. Both user IDs count under the
// route's pattern.
func Example() {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		panic(err)
	}
	user := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("user "+req.Param("id"))), nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Observers: []gateway.Observer{m}},
		Routes:  []gateway.Route{{Name: "get-user", Methods: []string{"GET"}, Path: "/users/{id}", Handler: user}},
	})
	if err != nil {
		panic(err)
	}
	for _, path := range []string{"/users/1", "/users/2", "/nowhere"} {
		router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "gatekit_requests_total") || strings.HasPrefix(line, "gatekit_requests_in_flight") {
			fmt.Println(line)
		}
	}
	// Output:
	// gatekit_requests_in_flight 0
	// gatekit_requests_total{method="GET",route="get-user",status="200"} 2
	// gatekit_requests_total{method="GET",route="unmatched",status="404"} 1
}
