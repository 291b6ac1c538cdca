package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
)

// A route that admits 2 requests back to back per client, then one every
// 30 seconds, and tells clients where they stand.
func ExampleNew() {
	perClient, err := ratelimit.New(ratelimit.Config{
		Name:    "per-client",
		Rate:    2,
		Per:     time.Minute,
		Key:     ratelimit.ByClientIP(),
		Headers: true,
	})
	if err != nil {
		panic(err)
	}
	hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("hello")), nil
	})
	h := gateway.NewPipeline(hello, gateway.Limit(perClient))

	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", rec.Code, rec.Header().Get("RateLimit"), rec.Header().Get("Retry-After"))
	}
	// Output:
	// 200 RateLimit: "per-client";r=1;t=30 Retry-After: ""
	// 200 RateLimit: "per-client";r=0;t=60 Retry-After: ""
	// 429 RateLimit: "per-client";r=0;t=60 Retry-After: "30"
}

// A monthly quota whose size depends on the plan of the caller's API key
// (auth.APIKeys puts the key's metadata, such as "plan", in the claims).
func ExampleNewQuota() {
	monthly, err := ratelimit.NewQuota(ratelimit.QuotaConfig{
		Name:     "monthly",
		Limit:    1000, // keys without a known plan
		LimitFor: ratelimit.LimitByClaim("plan", map[string]int64{"free": 1000, "pro": 100_000}),
		Window:   ratelimit.Month,
		Key:      ratelimit.ByAPIKey(),
	})
	if err != nil {
		panic(err)
	}
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	req.Principal = &gateway.Principal{Subject: "acme", Issuer: ratelimit.APIKeyIssuer,
		Claims: map[string]any{ratelimit.APIKeyIDClaim: "key-42", "plan": "pro"}}
	if _, err := monthly.Limit(context.Background(), req); err == nil {
		fmt.Println("admitted")
	}
	// Output: admitted
}

// Combine keys to limit each tenant per route.
func ExampleCombine() {
	key := ratelimit.Combine(ratelimit.ByRoute(), ratelimit.ByClaim("tenant"))
	_, err := ratelimit.New(ratelimit.Config{Name: "tenant-route", Rate: 50, Key: key})
	fmt.Println(err)
	// Output: <nil>
}
