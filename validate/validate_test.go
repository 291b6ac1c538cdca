package validate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/validate"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echo is an upstream that answers 200 with the body it received.
var echo = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	b, err := io.ReadAll(req.HTTP.Body)
	if err != nil {
		return nil, err
	}
	return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"text/plain"}}, b), nil
})

func mustNew(t testing.TB, cfg validate.Config) *validate.Validator {
	t.Helper()
	v, err := validate.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// problem is a decoded problem+json reply.
type problem struct {
	Status int              `json:"status"`
	Detail string           `json:"detail"`
	Errors []map[string]any `json:"errors"`
}

// send serves one request through a pipeline that runs v, and returns the
// recorder and, for an error reply, the decoded problem.
func send(t testing.TB, h http.Handler, r *http.Request) (*httptest.ResponseRecorder, problem) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var p problem
	if rec.Header().Get("Content-Type") == gateway.ProblemContentType {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem: %v: %s", err, rec.Body)
		}
	}
	return rec, p
}

func jsonRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

const paymentSchema = `{
	"type": "object",
	"required": ["amount", "payee"],
	"properties": {
		"amount": {"type": "integer", "minimum": 1},
		"currency": {"enum": ["EUR", "USD"]},
		"payee": {
			"type": "object",
			"required": ["name", "email"],
			"properties": {
				"name": {"type": "string", "minLength": 1, "maxLength": 10},
				"email": {"type": "string", "format": "email"}
			},
			"additionalProperties": false
		},
		"lines": {
			"type": "array",
			"maxItems": 3,
			"items": {
				"type": "object",
				"required": ["sku"],
				"properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}, "qty": {"type": "integer", "exclusiveMinimum": 0}}
			}
		}
	}
}`

type violation struct{ pointer, message string }

func TestSchemaViolations(t *testing.T) {
	v := mustNew(t, validate.Config{Route: "payments", Body: validate.Schema{JSON: paymentSchema}})
	p := gateway.NewPipeline(echo, gateway.Validate(v))
	tests := []struct {
		name string
		body string
		want []violation // pointer and a fragment of the message
	}{
		{"valid", `{"amount": 5, "payee": {"name": "Ada", "email": "ada@example.com"}}`, nil},
		{"missing at root", `{}`, []violation{{"", "missing properties 'amount', 'payee'"}}},
		{"several at once", `{"amount": 0, "currency": "GBP", "payee": {"name": "", "email": "not-an-email", "iban": "x"}}`, []violation{
			{"/amount", "must be at least 1"},
			{"/currency", "value must be one of 'EUR', 'USD'"},
			{"/payee", "property 'iban' is not allowed"},
			{"/payee/email", "must be a valid email"},
			{"/payee/name", "must be at least 1 character long"},
		}},
		{"nested missing", `{"amount": 2, "payee": {"name": "Ada"}}`, []violation{{"/payee", "missing property 'email'"}}},
		{"types", `{"amount": "5", "payee": []}`, []violation{
			{"/amount", "must be integer, not string"},
			{"/payee", "must be object, not array"},
		}},
		{"arrays", `{"amount": 1, "payee": {"name": "A", "email": "a@b.c"}, "lines": [{"sku": "ABC-1"}, {"sku": "abc", "qty": 0}, {}, {"sku": "X"}]}`, []violation{
			{"/lines", "must have at most 3 items"},
			{"/lines/1/qty", "must be greater than 0"},
			{"/lines/1/sku", "must match the pattern ^[A-Z]{3}-[0-9]+$"},
			{"/lines/2", "missing property 'sku'"},
			{"/lines/3/sku", "must match the pattern"},
		}},
		{"escaped pointer tokens", `{"amount": 1, "payee": {"name": "A", "email": "a@b.c", "a/b~c": 1}}`, []violation{
			{"/payee", "property 'a/b~c' is not allowed"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, prob := send(t, p, jsonRequest("POST", "/payments", tc.body))
			if tc.want == nil {
				if rec.Code != http.StatusOK || rec.Body.String() != tc.body {
					t.Fatalf("got %d %s, want 200 and the body passed on", rec.Code, rec.Body)
				}
				return
			}
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", rec.Code, rec.Body)
			}
			if len(prob.Errors) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %s", len(prob.Errors), len(tc.want), rec.Body)
			}
			for i, w := range tc.want {
				got := prob.Errors[i]
				if got["pointer"] != w.pointer || !strings.Contains(got["message"].(string), w.message) {
					t.Errorf("error %d = %v, want pointer %q and message containing %q", i, got, w.pointer, w.message)
				}
			}
		})
	}
}

func TestSchemaErrorsDoNotEchoValues(t *testing.T) {
	v := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{
		"properties": {
			"email": {"format": "email"},
			"uri": {"format": "uri"},
			"ip": {"format": "ipv4"},
			"code": {"pattern": "^[0-9]+$"},
			"n": {"maximum": 1},
			"c": {"const": "x"}
		},
		"propertyNames": {"maxLength": 300}
	}`}})
	p := gateway.NewPipeline(echo, gateway.Validate(v))
	secret := "s3cr3t-" + strings.Repeat("z", 40)
	body := `{"email": "` + secret + `", "uri": "http://[` + secret + `", "ip": "` + secret + `", "code": "` + secret + `", "n": 123456789123, "c": "` + secret + `", "` + strings.Repeat("k", 400) + `": 1}`
	rec, prob := send(t, p, jsonRequest("POST", "/", body))
	if rec.Code != http.StatusUnprocessableEntity || len(prob.Errors) != 7 {
		t.Fatalf("got %d with %d errors, want 422 with 7: %s", rec.Code, len(prob.Errors), rec.Body)
	}
	for _, leak := range []string{"s3cr3t", "123456789123", strings.Repeat("k", 100)} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("problem echoes %q: %s", leak[:6], rec.Body)
		}
	}
}

func TestMaxErrors(t *testing.T) {
	v := mustNew(t, validate.Config{MaxErrors: 3, Body: validate.Schema{JSON: `{"items": {"type": "string"}}`}})
	_, prob := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), jsonRequest("POST", "/", `[1,2,3,4,5,6]`))
	if len(prob.Errors) != 3 {
		t.Fatalf("%d errors, want 3", len(prob.Errors))
	}
}

func TestMalformedJSON(t *testing.T) {
	v := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{}`}})
	p := gateway.NewPipeline(echo, gateway.Validate(v))
	tests := []struct {
		name               string
		body               string
		offset, line, col  float64
		message            string
		detailMentionsLine string
	}{
		{"bad value", `{"a":}`, 5, 1, 6, "invalid character '}' looking for beginning of value", "line 1, column 6"},
		{"second line", "{\n  \"a\" 1}", 8, 2, 7, "after object key", "line 2, column 7"},
		{"unicode column", "{\n\"ä\": tru}", 11, 2, 9, "in literal true", "line 2, column 9"},
		{"truncated", `{"a": [1, 2`, 11, 1, 12, "unexpected end of JSON input", "byte offset 11"},
		{"trailing data", "[1, 2]\n  x", 9, 2, 3, "unexpected data after the JSON value", "line 2, column 3"},
		{"two values", `{} {}`, 3, 1, 4, "unexpected data after the JSON value", "column 4"},
		{"only space", "   ", 3, 1, 4, "no JSON value", "column 4"},
		{"bad escape", `{"a": "\x"}`, 8, 1, 9, "invalid character 'x' in string escape code", "column 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, prob := send(t, p, jsonRequest("POST", "/", tc.body))
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			if len(prob.Errors) != 1 {
				t.Fatalf("errors = %v", prob.Errors)
			}
			e := prob.Errors[0]
			if e["offset"] != tc.offset || e["line"] != tc.line || e["column"] != tc.col || !strings.Contains(e["message"].(string), tc.message) {
				t.Errorf("error = %v, want offset %v line %v column %v message %q", e, tc.offset, tc.line, tc.col, tc.message)
			}
			if !strings.Contains(prob.Detail, tc.detailMentionsLine) {
				t.Errorf("detail %q does not say %q", prob.Detail, tc.detailMentionsLine)
			}
		})
	}
}

func TestBodyPresence(t *testing.T) {
	required := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{"type": "object"}`}})
	optional := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{"type": "object"}`}, BodyOptional: true})
	tests := []struct {
		name string
		v    *validate.Validator
		r    *http.Request
		want int
	}{
		{"required, none", required, httptest.NewRequest("POST", "/", nil), http.StatusBadRequest},
		{"required, empty", required, jsonRequest("POST", "/", ""), http.StatusBadRequest},
		{"required, unknown length but empty", required, chunked("POST", "", "application/json"), http.StatusBadRequest},
		{"optional, none", optional, httptest.NewRequest("POST", "/", nil), http.StatusOK},
		{"optional, given and valid", optional, jsonRequest("POST", "/", `{}`), http.StatusOK},
		{"optional, given and invalid", optional, jsonRequest("POST", "/", `[]`), http.StatusUnprocessableEntity},
		{"unknown length, wrong type", required, chunked("POST", `{}`, "text/plain"), http.StatusUnsupportedMediaType},
		{"unknown length, valid", required, chunked("POST", `{}`, "application/json"), http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := send(t, gateway.NewPipeline(echo, gateway.Validate(tc.v)), tc.r)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

// chunked returns a request whose body has no known length, as a chunked
// upload has.
func chunked(method, body, contentType string) *http.Request {
	r := httptest.NewRequest(method, "/", io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestMediaType(t *testing.T) {
	jsonBody := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{}`}})
	listed := mustNew(t, validate.Config{MediaTypes: []string{"application/json", "text/*", "application/*+xml"}})
	strict := mustNew(t, validate.Config{MediaTypes: []string{"application/json"}, RequireMediaType: true})
	tests := []struct {
		name        string
		v           *validate.Validator
		method, ct  string
		body        string
		want        int
		acceptField string // Accept-Post or Accept-Patch
		accept      string
	}{
		{"json", jsonBody, "POST", "application/json", `{}`, 200, "", ""},
		{"json with charset", jsonBody, "POST", "application/json; charset=utf-8", `{}`, 200, "", ""},
		{"json in upper case", jsonBody, "PUT", "Application/JSON", `{}`, 200, "", ""},
		{"structured +json", jsonBody, "POST", "application/merge-patch+json", `{}`, 200, "", ""},
		{"text to json route, POST", jsonBody, "POST", "text/plain", `{}`, 415, "Accept-Post", "application/json, application/*+json"},
		{"xml to json route, PATCH", jsonBody, "PATCH", "application/xml", `{}`, 415, "Accept-Patch", "application/json, application/*+json"},
		{"PUT gets no Accept field", jsonBody, "PUT", "text/plain", `{}`, 415, "", ""},
		{"no Content-Type", jsonBody, "POST", "", `{}`, 415, "Accept-Post", "application/json, application/*+json"},
		{"malformed Content-Type", jsonBody, "POST", "json", `{}`, 415, "Accept-Post", "application/json, application/*+json"},
		{"suffix without subtype", jsonBody, "POST", "application/+json", `{}`, 415, "Accept-Post", "application/json, application/*+json"},
		{"listed: wildcard subtype", listed, "POST", "text/csv", `a,b`, 200, "", ""},
		{"listed: suffix", listed, "POST", "application/atom+xml", `<a/>`, 200, "", ""},
		{"listed: refused", listed, "POST", "image/png", `x`, 415, "Accept-Post", "application/json, text/*, application/*+xml"},
		{"no body is not checked", listed, "GET", "", ``, 200, "", ""},
		{"no body is checked when required", strict, "POST", "", ``, 415, "Accept-Post", "application/json"},
		{"required and given", strict, "DELETE", "application/json", ``, 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *http.Request
			if tc.body == "" {
				r = httptest.NewRequest(tc.method, "/", nil)
			} else {
				r = httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
			}
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			rec, _ := send(t, gateway.NewPipeline(echo, gateway.Validate(tc.v)), r)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			for _, f := range []string{"Accept-Post", "Accept-Patch"} {
				want := ""
				if f == tc.acceptField {
					want = tc.accept
				}
				if got := rec.Header().Get(f); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestContentEncodingRefused(t *testing.T) {
	v := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{}`}})
	r := jsonRequest("POST", "/", "\x1f\x8b...")
	r.Header.Set("Content-Encoding", "gzip")
	rec, _ := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), r)
	if rec.Code != http.StatusUnsupportedMediaType || rec.Header().Get("Accept-Encoding") != "identity" {
		t.Fatalf("got %d, Accept-Encoding %q; want 415 and identity", rec.Code, rec.Header().Get("Accept-Encoding"))
	}
}

func TestBodySize(t *testing.T) {
	schema := validate.Schema{JSON: `{"type": "string"}`}
	big := `"` + strings.Repeat("a", 100) + `"` // 102 bytes
	tests := []struct {
		name      string
		cfg       validate.Config
		routeMax  int64
		r         *http.Request
		want      int
		detailHas string
	}{
		{"under MaxBytes", validate.Config{Body: schema, MaxBytes: 200}, 0, jsonRequest("POST", "/", big), 200, ""},
		{"over MaxBytes, known length", validate.Config{Body: schema, MaxBytes: 101}, 0, jsonRequest("POST", "/", big), 413, "101 bytes"},
		{"over MaxBytes, unknown length", validate.Config{Body: schema, MaxBytes: 101}, 0, chunked("POST", big, "application/json"), 413, "101 bytes"},
		{"at MaxBytes, unknown length", validate.Config{Body: schema, MaxBytes: 102}, 0, chunked("POST", big, "application/json"), 200, ""},
		{"route limit tighter", validate.Config{Body: schema, MaxBytes: 1000}, 50, chunked("POST", big, "application/json"), 413, "50 bytes"},
		{"route limit alone", validate.Config{Body: schema}, 50, jsonRequest("POST", "/", big), 413, "50 bytes"},
		{"no schema, known length", validate.Config{MaxBytes: 101}, 0, jsonRequest("POST", "/", big), 413, "101 bytes"},
		{"no schema, unknown length, streamed", validate.Config{MaxBytes: 101}, 0, chunked("POST", big, "application/json"), 413, ""},
		{"no schema, unknown length, fits", validate.Config{MaxBytes: 102}, 0, chunked("POST", big, "application/json"), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := gateway.NewPipeline(echo, gateway.Validate(mustNew(t, tc.cfg)))
			p.Options.MaxBodyBytes = tc.routeMax
			rec, prob := send(t, p, tc.r)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if !strings.Contains(prob.Detail, tc.detailHas) {
				t.Errorf("detail %q does not mention %q", prob.Detail, tc.detailHas)
			}
			if tc.want == 200 && rec.Body.String() != big {
				t.Errorf("upstream got %q", rec.Body)
			}
		})
	}
}

// countingBody records whether anything read it.
type countingBody struct {
	io.Reader
	reads int
}

func (c *countingBody) Read(p []byte) (int, error) { c.reads++; return c.Reader.Read(p) }
func (c *countingBody) Close() error               { return nil }

func TestBodyStreamsWithoutSchema(t *testing.T) {
	v := mustNew(t, validate.Config{
		MediaTypes: []string{"application/json"},
		Query:      []validate.Param{{Name: "q"}},
		MaxBytes:   1 << 20,
	})
	body := &countingBody{Reader: strings.NewReader(`{"big": "upload"}`)}
	readsBefore := -1
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		readsBefore = body.reads
		return echo.Serve(ctx, req)
	})
	r := jsonRequest("POST", "/", "")
	r.Body, r.ContentLength = body, 17
	rec, _ := send(t, gateway.NewPipeline(up, gateway.Validate(v)), r)
	if rec.Code != 200 || readsBefore != 0 || rec.Body.String() != `{"big": "upload"}` {
		t.Fatalf("got %d %q with %d reads before the upstream; want 200, the body, and none", rec.Code, rec.Body, readsBefore)
	}
}

func TestDeepNesting(t *testing.T) {
	v := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{}`}})
	deepV := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{}`}, MaxDepth: 3})
	tests := []struct {
		name string
		v    *validate.Validator
		body string
		want int
		col  float64
	}{
		{"10,000-deep arrays", v, strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, 65},
		{"10,000-deep objects", v, strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), 400, 321},
		{"100,000 unclosed", v, strings.Repeat("[", 100000), 400, 65},
		{"brackets in strings do not count", v, `["` + strings.Repeat("[{", 5000) + `"]`, 200, 0},
		{"escaped quotes do not end strings", v, `["\"` + strings.Repeat("[", 100) + `\\"]`, 200, 0},
		{"exactly at the limit", v, strings.Repeat("[", 64) + strings.Repeat("]", 64), 200, 0},
		{"one past the limit", v, strings.Repeat("[", 65) + strings.Repeat("]", 65), 400, 65},
		{"MaxDepth 3", deepV, `{"a": [{"b": 1}]}`, 200, 0},
		{"MaxDepth 3 exceeded", deepV, `{"a": [{"b": [1]}]}`, 400, 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, prob := send(t, gateway.NewPipeline(echo, gateway.Validate(tc.v)), jsonRequest("POST", "/", tc.body))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %.200s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 400 {
				if len(prob.Errors) != 1 || prob.Errors[0]["column"] != tc.col || !strings.Contains(prob.Detail, "deeper than") {
					t.Errorf("problem = %+v, want the depth error at column %v", prob, tc.col)
				}
			}
		})
	}
}

func TestReplies(t *testing.T) {
	v := mustNew(t, validate.Config{
		Route: "orders",
		Replies: []validate.Reply{
			{Status: 0, Schema: validate.Schema{JSON: `{"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}`}},
			{Status: 404, Schema: validate.Schema{JSON: `{"type": "object", "required": ["error"]}`}},
		},
	})
	tests := []struct {
		name   string
		method string
		status int
		ct     string
		body   string
		want   int
	}{
		{"valid 200", "GET", 200, "application/json", `{"id": 7}`, 200},
		{"valid 201 by the 2xx schema", "POST", 201, "application/json; charset=utf-8", `{"id": 7}`, 201},
		{"invalid 200", "GET", 200, "application/json", `{"id": "secret-internal-value"}`, 502},
		{"missing field", "GET", 200, "application/json", `{}`, 502},
		{"not JSON", "GET", 200, "application/json", `{"id": 7`, 502},
		{"wrong media type", "GET", 200, "text/html", `<p>hi</p>`, 502},
		{"no body", "GET", 200, "application/json", ``, 502},
		{"too deep", "GET", 200, "application/json", strings.Repeat("[", 10000), 502},
		{"404 by its own schema", "GET", 404, "application/problem+json", `{"error": "gone"}`, 404},
		{"404 invalid", "GET", 404, "application/json", `{"id": 1}`, 502},
		{"500 has no schema", "GET", 500, "text/plain", `oops`, 500},
		{"204 has no body", "DELETE", 204, "", ``, 204},
		{"HEAD has no body", "HEAD", 200, "application/json", ``, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				h := http.Header{}
				if tc.ct != "" {
					h.Set("Content-Type", tc.ct)
				}
				resp := gateway.NewResponse(tc.status, h, []byte(tc.body))
				if tc.method == "HEAD" {
					resp.Body, resp.ContentLength = nil, 9
				}
				return resp, nil
			})
			p := gateway.NewPipeline(up, gateway.Validate(v), gateway.TransformResponse(v))
			p.Options.Logger = discardLogger()
			rec, prob := send(t, p, httptest.NewRequest(tc.method, "/orders", nil))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 502 && (strings.Contains(rec.Body.String(), "secret") || len(prob.Errors) != 0) {
				t.Errorf("the 502 tells the client about the reply: %s", rec.Body)
			}
			if tc.want < 300 && tc.body != "" && rec.Body.String() != tc.body {
				t.Errorf("body %q, want %q", rec.Body, tc.body)
			}
		})
	}
}

func TestReplyErrorIsLogged(t *testing.T) {
	v := mustNew(t, validate.Config{Route: "orders", Replies: []validate.Reply{{Schema: validate.Schema{JSON: `{"required": ["id"]}`}}}})
	resp := gateway.NewResponse(200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"name": "x"}`))
	err := v.TransformResponse(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil)), resp)
	ge, ok := err.(*gateway.Error)
	if !ok || ge.Status != 502 || ge.Err == nil || !strings.Contains(ge.Err.Error(), `route "orders": validate: reply 200: does not match the schema: (root): missing property 'id'`) {
		t.Fatalf("err = %v", err)
	}
}

func TestViolationJSON(t *testing.T) {
	tests := []struct {
		v    validate.Violation
		want string
	}{
		{validate.Violation{Pointer: "", Message: "m"}, `{"pointer":"","message":"m"}`},
		{validate.Violation{Pointer: "/a/0", Message: "m"}, `{"pointer":"/a/0","message":"m"}`},
		{validate.Violation{Parameter: "limit", In: "query", Message: "m"}, `{"parameter":"limit","in":"query","message":"m"}`},
		{validate.Violation{Message: "m", Offset: 0, Line: 1, Column: 1}, `{"message":"m","offset":0,"line":1,"column":1}`},
	}
	for i, tc := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil || string(b) != tc.want {
				t.Fatalf("got %s, %v; want %s", b, err, tc.want)
			}
		})
	}
}

// TestConcurrentUse runs one Validator from many goroutines (under -race).
func TestConcurrentUse(t *testing.T) {
	v := mustNew(t, validate.Config{
		Body:  validate.Schema{JSON: paymentSchema},
		Query: []validate.Param{{Name: "n", Type: validate.TypeInt}},
	})
	p := gateway.NewPipeline(echo, gateway.Validate(v))
	bodies := []struct {
		body string
		want int
	}{
		{`{"amount": 5, "payee": {"name": "Ada", "email": "ada@example.com"}}`, 200},
		{`{"amount": 0, "payee": {"name": "", "email": "x"}}`, 422},
		{`{"amount": `, 400},
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				b := bodies[(g+i)%len(bodies)]
				rec := httptest.NewRecorder()
				p.ServeHTTP(rec, jsonRequest("POST", "/?n="+strconv.Itoa(i), b.body))
				if rec.Code != b.want {
					t.Errorf("status %d, want %d", rec.Code, b.want)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// TestHugeNumbers: numbers whose exact value would take the schema library
// milliseconds to build are refused before decoding, whether or not the
// schema takes the fast path; numbers within the bounds are judged as ever
// (FuzzHugeNumber checks that those stay small).
func TestHugeNumbers(t *testing.T) {
	schemas := map[string]string{
		"fast path": `{"type":"object","properties":{"n":{"type":"number"}}}`,
		"library":   `{"type":"object","properties":{"n":{"type":"number","format":"double"}}}`,
	}
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"n":1e1000}`, true},
		{`{"n":1e-1000}`, true},
		{`{"n":1E+0001000}`, true},
		{`{"n":1e1001}`, false},
		{`{"n":-2.5e-999999}`, false},
		{`{"n":1e999999}`, false},
		{`{"n":` + strings.Repeat("9", 1000) + `}`, true},
		{`{"n":` + strings.Repeat("9", 600) + "." + strings.Repeat("9", 401) + `}`, false},
		{`{"s":"1e999999","n":1}`, true},
	}
	for name, schema := range schemas {
		v, err := validate.New(validate.Config{Body: validate.Schema{JSON: schema}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			err := v.Validate(context.Background(), gateway.NewRequest(r))
			if (err == nil) != tc.ok {
				t.Errorf("%s: %.40s: err %v, want ok %v", name, tc.body, err, tc.ok)
			}
			if e, ok := err.(*gateway.Error); err != nil && (!ok || e.Status != 400 || !strings.Contains(e.Detail, "exponent")) {
				t.Errorf("%s: %.40s: err %v, want 400 naming the bounds", name, tc.body, err)
			}
		}
	}
}
