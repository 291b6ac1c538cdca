package transform_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/transform"
)

// A request transform that vouches for the caller, moves the route to the
// backend's path and reshapes the body; the client's own X-User-Id is
// dropped.
func ExampleRequest() {
	in, err := transform.Request(transform.Config{Ops: []transform.Op{
		transform.SetHeader("X-User-Id", transform.Subject()),
		transform.RewritePath("/accounts/{id}", "/v2/customers/{id}/account"),
		transform.RenameQuery("q", "search"),
		transform.Rename("name", "fullName"),
		transform.Set("customer.id", transform.Param("id")),
		transform.Delete("internal"),
	}})
	if err != nil {
		log.Fatal(err)
	}
	backend := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body, _ := io.ReadAll(req.HTTP.Body)
		fmt.Println(req.HTTP.URL.Path, req.HTTP.URL.RawQuery, req.HTTP.Header.Values("X-User-Id"))
		fmt.Println(string(body))
		return gateway.NewResponse(http.StatusNoContent, nil, nil), nil
	})
	auth := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		return &gateway.Principal{Subject: "ada"}, nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{{
		Path:    "/accounts/{id}",
		Handler: gateway.NewPipeline(backend, gateway.Authenticate(auth), in.Stage()),
	}}})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("PUT", "/accounts/42?q=x", strings.NewReader(`{"name":"Ada","internal":true}`))
	r.Header.Set("X-User-Id", "admin")
	router.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// /v2/customers/42/account search=x [ada]
	// {"fullName":"Ada","customer":{"id":"42"}}
}

// A response transform: upstream 404s become 204s, other replies keep only
// what the client may see.
func ExampleResponse() {
	out, err := transform.Response(transform.Config{Ops: []transform.Op{
		transform.MapStatus(http.StatusNotFound, http.StatusNoContent),
		transform.Keep("id", "items.#.sku"),
		transform.DeleteHeader("Server"),
	}})
	if err != nil {
		log.Fatal(err)
	}
	backend := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if req.HTTP.URL.Path == "/missing" {
			return gateway.NewResponse(http.StatusNotFound, nil, []byte(`{"error":"no such order"}`)), nil
		}
		h := http.Header{"Server": {"legacy/1.0"}, "Content-Type": {"application/json"}}
		return gateway.NewResponse(http.StatusOK, h, []byte(`{"id":7,"cost":3,"items":[{"sku":"A","margin":1}]}`)), nil
	})
	p := gateway.NewPipeline(backend, out.Stage())
	for _, path := range []string{"/orders/7", "/missing"} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Printf("%d %q %s\n", rec.Code, rec.Header().Get("Server"), rec.Body)
	}
	// Output:
	// 200 "" {"id":7,"items":[{"sku":"A"}]}
	// 204 ""
}

// Field operations compiled once and applied to bytes.
func ExampleNewBody() {
	b, err := transform.NewBody(
		transform.Set("items.#.currency", transform.String("EUR")),
		transform.Rename("items.#.price", "items.#.amount"),
		transform.Default("note", transform.JSON(`null`)),
		transform.Set(`meta.x\.y`, transform.JSON(`1`)), // the key "x.y"
	)
	if err != nil {
		log.Fatal(err)
	}
	out, err := b.Apply(nil, []byte(`{"items":[{"price":5},{"price":7}]}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
	_, err = b.Apply(nil, []byte(`<xml/>`))
	fmt.Println(err)
	// Output:
	// {"items":[{"amount":5,"currency":"EUR"},{"amount":7,"currency":"EUR"}],"note":null,"meta":{"x.y":1}}
	// transform: the body is not JSON
}

// JSON to XML and back: hints make the round trip exact.
func ExampleXMLCodec() {
	c, err := transform.NewXMLCodec(transform.XMLConfig{Root: "order"})
	if err != nil {
		log.Fatal(err)
	}
	x, _ := c.JSONToXML(nil, []byte(`{"@id":"7","sku":"A-1","qty":2,"zip":"0150","tags":["new"],"gift":null}`))
	fmt.Println(string(x))
	j, _ := c.XMLToJSON(nil, x)
	fmt.Println(string(j))
	// Output:
	// <order xmlns:json="urn:gatekit:json" id="7" json:type="@id:string"><sku>A-1</sku><qty>2</qty><zip>0150</zip><tags json:type="array">new</tags><gift json:type="null"/></order>
	// {"@id":"7","sku":"A-1","qty":2,"zip":"0150","tags":["new"],"gift":null}
}

// A templated body: every action prints JSON, so request data cannot break
// out of its string.
func ExampleTemplate() {
	in, err := transform.Request(transform.Config{Ops: []transform.Op{
		transform.Template(`{"search": {{.Query "q"}}, "limit": {{.Query "n" | json}}, "first": {{.Body "items.0"}}}`, nil),
	}})
	if err != nil {
		log.Fatal(err)
	}
	backend := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body, _ := io.ReadAll(req.HTTP.Body)
		fmt.Println(req.HTTP.Header.Get("Content-Type"), string(body))
		return nil, nil
	})
	r := httptest.NewRequest("POST", `/?n=5&q=a"b","admin":true`, strings.NewReader(`{"items":[{"id":1}]}`))
	gateway.NewPipeline(backend, in.Stage()).ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// application/json {"search": "a\"b\",\"admin\":true", "limit": "5", "first": {"id":1}}
}
