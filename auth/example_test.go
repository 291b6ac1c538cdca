package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
)

// An API-key route that requires a scope and tells its upstream who called,
// without passing the key on.
func ExampleRequire() {
	store, err := auth.NewMemoryKeyStore(auth.APIKey{
		ID: "k1", Hash: auth.HashAPIKey("s3cr3t-key"), Owner: "acme", Plan: "gold", Scopes: []string{"orders:read"},
	})
	if err != nil {
		panic(err)
	}
	keys, _ := auth.APIKeys(auth.APIKeyConfig{Store: store})
	canRead, _ := auth.Require(auth.Policy{Scopes: []string{"orders:read"}})
	canWrite, _ := auth.Require(auth.Policy{Scopes: []string{"orders:write"}})
	fwd, _ := auth.Forward(auth.ForwardConfig{
		Headers:      map[string]string{"X-Owner": "sub", "X-Plan": "plan"},
		StripHeaders: []string{"X-API-Key"},
	})
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		h := req.HTTP.Header
		body := fmt.Sprintf("owner=%s plan=%s key-forwarded=%v", h.Get("X-Owner"), h.Get("X-Plan"), h.Get("X-API-Key") != "")
		return gateway.NewResponse(http.StatusOK, nil, []byte(body)), nil
	})
	read := gateway.NewPipeline(upstream, gateway.Authenticate(keys), gateway.Authorize(canRead), gateway.TransformRequest(fwd))
	write := gateway.NewPipeline(upstream, gateway.Authenticate(keys), gateway.Authorize(canWrite))

	for _, p := range []*gateway.Pipeline{read, write} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("X-API-Key", "s3cr3t-key")
		r.Header.Set("X-Owner", "spoofed")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		fmt.Println(rec.Code, rec.Body.String())
	}
	rec := httptest.NewRecorder()
	read.ServeHTTP(rec, httptest.NewRequest("GET", "/orders", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 200 owner=acme plan=gold key-forwarded=false
	// 403 {"detail":"missing scope orders:write","error":"insufficient_scope","status":403,"title":"Forbidden","type":"about:blank"}
	// 401 APIKey header="X-API-Key"
}
