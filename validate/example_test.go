package validate_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing/fstest"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/validate"
)

// A route whose request bodies must match a JSON Schema: the client is told
// every violation, each with the JSON pointer to the value.
func Example() {
	v, err := validate.New(validate.Config{
		Route: "create-payment",
		Body: validate.Schema{JSON: `{
			"type": "object",
			"required": ["amount", "payee"],
			"properties": {
				"amount": {"type": "integer", "minimum": 1},
				"payee": {
					"type": "object",
					"required": ["email"],
					"properties": {"email": {"type": "string", "format": "email"}}
				}
			}
		}`},
	})
	if err != nil {
		panic(err)
	}
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusCreated, nil, nil), nil
	})
	payments := gateway.NewPipeline(upstream, gateway.Validate(v))

	for _, body := range []string{
		`{"amount": 100, "payee": {"email": "ada@example.com"}}`,
		`{"amount": 0, "payee": {"email": "ada.example.com"}}`,
		`{"amount": 100, "payee": {"email": }}`,
	} {
		r := httptest.NewRequest("POST", "/payments", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		payments.ServeHTTP(rec, r)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Body.String())))
	}
	// Output:
	// 201
	// 422 {"detail":"the request body does not match the schema: 2 errors","errors":[{"pointer":"/amount","message":"must be at least 1"},{"pointer":"/payee/email","message":"must be a valid email: missing @"}],"status":422,"title":"Unprocessable Entity","type":"about:blank"}
	// 400 {"detail":"the request body is not valid JSON: invalid character '}' looking for beginning of value at line 1, column 36 (byte offset 35)","errors":[{"message":"invalid character '}' looking for beginning of value","offset":35,"line":1,"column":36}],"status":400,"title":"Bad Request","type":"about:blank"}
}

// Rules for query parameters and headers, checked before the body.
func ExampleParam() {
	v, err := validate.New(validate.Config{
		Route: "list-orders",
		Query: []validate.Param{
			{Name: "limit", Type: validate.TypeInt, Min: new(1.0), Max: new(100.0)},
			{Name: "sort", Enum: []string{"asc", "desc"}},
			{Name: "status", Repeated: true, MaxCount: 3},
		},
		Header: []validate.Param{{Name: "X-Tenant", Required: true, Pattern: `^[a-z0-9-]{3,32}$`}},
	})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", "/orders?limit=500&sort=asc&limit=5", nil)
	err = v.Validate(context.Background(), gateway.NewRequest(r))
	rec := httptest.NewRecorder()
	err.(*gateway.Error).Write(rec)
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 400 {"detail":"the request has 3 invalid parameters","errors":[{"parameter":"limit","in":"query","message":"must be at most 100"},{"parameter":"limit","in":"query","message":"must not be repeated"},{"parameter":"X-Tenant","in":"header","message":"is required"}],"status":400,"title":"Bad Request","type":"about:blank"}
}

// Schemas in an fs.FS (an embed.FS in a real application) may refer to
// each other; a bad one fails New with its file and JSON pointer.
func Example_schemaFiles() {
	schemas := fstest.MapFS{
		"order.json": {Data: []byte(`{"type": "object", "properties": {"total": {"$ref": "money.json"}}}`)},
		"money.json": {Data: []byte(`{"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"}`)},
		"bad.json":   {Data: []byte(`{"properties": {"total": {"type": "money"}}}`)},
	}
	v, err := validate.New(validate.Config{Route: "orders", FS: schemas, Body: validate.Schema{File: "order.json"}})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("POST", "/orders", strings.NewReader(`{"total": "12.5"}`))
	r.Header.Set("Content-Type", "application/json")
	fmt.Println(v.Validate(context.Background(), gateway.NewRequest(r)))

	_, err = validate.New(validate.Config{Route: "orders", FS: schemas, Body: validate.Schema{File: "bad.json"}})
	fmt.Println(err)
	// Output:
	// 422 Unprocessable Entity: the request body does not match the schema: /total: must match the pattern ^[0-9]+\.[0-9]{2}$
	// route "orders": validate: request body schema: bad.json#/properties/total/type: not a valid schema: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'; got string, want array
}

// Replies can be held to a schema too: one that breaks it becomes a 502,
// and what was wrong goes to the gateway's log, not to the client.
func ExampleValidator_TransformResponse() {
	v, err := validate.New(validate.Config{
		Route:   "get-user",
		Replies: []validate.Reply{{Status: http.StatusOK, Schema: validate.Schema{JSON: `{"required": ["id"]}`}}},
	})
	if err != nil {
		panic(err)
	}
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		h := http.Header{"Content-Type": {"application/json"}}
		return gateway.NewResponse(http.StatusOK, h, []byte(`{"name": "Ada"}`)), nil
	})
	users := gateway.NewPipeline(upstream, gateway.TransformResponse(v))
	users.Options.Logger = discardLogger()
	rec := httptest.NewRecorder()
	users.ServeHTTP(rec, httptest.NewRequest("GET", "/users/1", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 502 {"detail":"the upstream reply is not what this route promises","status":502,"title":"Bad Gateway","type":"about:blank"}
}
