package transform_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	. "github.com/gatekit/gatekit/transform"
)

func TestBodyOps(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		in   string
		want string
		err  error
	}{
		// Set
		{"set constant", []Op{Set("a", JSON(`1`))}, `{"b":2}`, `{"b":2,"a":1}`, nil},
		{"set replaces", []Op{Set("a", JSON(`{"x":[1]}`))}, `{"a":0,"b":2}`, `{"a":{"x":[1]},"b":2}`, nil},
		{"set string", []Op{Set("a", String("say \"hi\"\n"))}, `{}`, `{"a":"say \"hi\"\n"}`, nil},
		{"set creates parents", []Op{Set("a.b.c", String("x"))}, `{}`, `{"a":{"b":{"c":"x"}}}`, nil},
		{"set nested existing", []Op{Set("a.b", JSON(`true`))}, `{"a":{"b":false,"c":1}}`, `{"a":{"b":true,"c":1}}`, nil},
		{"set from field", []Op{Set("copy", Field("orig.x"))}, `{"orig":{"x":[1,2]}}`, `{"orig":{"x":[1,2]},"copy":[1,2]}`, nil},
		{"set from array field", []Op{Set("prices", Field("items.#.p"))}, `{"items":[{"p":1},{"p":2}]}`, `{"items":[{"p":1},{"p":2}],"prices":[1,2]}`, nil},
		{"set missing value removes", []Op{Set("owner", Field("nope"))}, `{"owner":"client","a":1}`, `{"a":1}`, nil},
		{"set missing value, nothing to remove", []Op{Set("owner", Field("nope"))}, `{"a":1}`, `{"a":1}`, nil},
		{"set array index", []Op{Set("items.1.p", JSON(`5`))}, `{"items":[{},{}]}`, `{"items":[{},{"p":5}]}`, nil},
		{"set in every element", []Op{Set("items.#.cur", String("EUR"))}, `{"items":[{"p":1},{"p":2},3]}`, `{"items":[{"p":1,"cur":"EUR"},{"p":2,"cur":"EUR"},3]}`, nil},
		{"set in every element, relative field", []Op{Set("items.#.total", Field("items.#.p"))}, `{"items":[{"p":1},{"q":2},{"p":3}]}`, `{"items":[{"p":1,"total":1},{"q":2},{"p":3,"total":3}]}`, nil},
		{"set in every element, absolute field", []Op{Set("items.#.order", Field("id"))}, `{"id":7,"items":[{},{"a":1}]}`, `{"id":7,"items":[{"order":7},{"a":1,"order":7}]}`, nil},
		{"set in nested arrays", []Op{Set("o.#.i.#.x", JSON(`1`))}, `{"o":[{"i":[{},{}]},{"i":[]},{"i":[{"x":0}]}]}`, `{"o":[{"i":[{"x":1},{"x":1}]},{"i":[]},{"i":[{"x":1}]}]}`, nil},
		{"set in top-level array", []Op{Set("#.seen", JSON(`true`))}, `[{"a":1},{"b":2}]`, `[{"a":1,"seen":true},{"b":2,"seen":true}]`, nil},
		{"set in every element, array missing", []Op{Set("items.#.x", JSON(`1`))}, `{"a":1}`, `{"a":1}`, nil},
		{"set unicode keys", []Op{Set("prénom.名前", String("ü ✓"))}, `{"ä":1}`, `{"ä":1,"prénom":{"名前":"ü ✓"}}`, nil},
		{"set escaped dot", []Op{Set(`a\.b`, JSON(`1`))}, `{"a":{"b":0}}`, `{"a":{"b":0},"a.b":1}`, nil},
		{"set escaped wildcards", []Op{Set(`x\*.y\?`, JSON(`1`))}, `{}`, `{"x*":{"y?":1}}`, nil},
		{"set escaped hash and at", []Op{Set(`\#tag.\@id`, JSON(`1`))}, `{}`, `{"#tag":{"@id":1}}`, nil},
		{"set escaped backslash", []Op{Set(`back\\slash`, JSON(`1`))}, `{}`, `{"back\\slash":1}`, nil},
		{"set key -1 is a key", []Op{Set(`-1`, JSON(`1`))}, `{"-1":0}`, `{"-1":1}`, nil},
		{"set key with colon", []Op{Set(`ns:id`, JSON(`1`))}, `{}`, `{"ns:id":1}`, nil},
		{"set key with space and dash", []Op{Set(`a b-c`, JSON(`1`))}, `{}`, `{"a b-c":1}`, nil},
		{"set keeps layout elsewhere", []Op{Set("b", JSON(`3`))}, "{\n  \"a\": 1,\n  \"b\": 2\n}", "{\n  \"a\": 1,\n  \"b\": 3\n}", nil},
		{"set on an array body", []Op{Set("a", JSON(`1`))}, `[1,2]`, ``, ErrMismatch},
		{"set on a string body", []Op{Set("a", JSON(`1`))}, `"s"`, ``, ErrMismatch},
		{"set index on an array body", []Op{Set("0", JSON(`9`))}, `[1,2]`, `[9,2]`, nil},

		// Default
		{"default when missing", []Op{Default("cur", String("EUR"))}, `{"a":1}`, `{"a":1,"cur":"EUR"}`, nil},
		{"default when present", []Op{Default("cur", String("EUR"))}, `{"cur":"USD"}`, `{"cur":"USD"}`, nil},
		{"default keeps null", []Op{Default("cur", String("EUR"))}, `{"cur":null}`, `{"cur":null}`, nil},
		{"default nested", []Op{Default("a.b", JSON(`0`))}, `{"a":{}}`, `{"a":{"b":0}}`, nil},
		{"default with missing value", []Op{Default("a", Field("nope"))}, `{"b":1}`, `{"b":1}`, nil},
		{"default in every element", []Op{Default("items.#.qty", JSON(`1`))}, `{"items":[{"qty":3},{}]}`, `{"items":[{"qty":3},{"qty":1}]}`, nil},

		// Rename
		{"rename keeps the place", []Op{Rename("name", "fullName")}, `{"name":"Ada","x":1}`, `{"fullName":"Ada","x":1}`, nil},
		{"rename to nested", []Op{Rename("city", "address.city")}, `{"city":"Oslo","address":{"zip":"0150"}}`, `{"address":{"zip":"0150","city":"Oslo"}}`, nil},
		{"rename from nested", []Op{Rename("a.b.c", "c")}, `{"a":{"b":{"c":[1],"d":2}}}`, `{"a":{"b":{"d":2}},"c":[1]}`, nil},
		{"rename replaces target", []Op{Rename("a", "b")}, `{"a":1,"b":2}`, `{"b":1}`, nil},
		{"rename missing", []Op{Rename("a", "b")}, `{"c":1}`, `{"c":1}`, nil},
		{"rename in every element", []Op{Rename("items.#.price", "items.#.amount")}, `{"items":[{"price":1},{"x":0},{"price":{"v":2}}]}`, `{"items":[{"amount":1},{"x":0},{"amount":{"v":2}}]}`, nil},
		{"rename escaped and unicode", []Op{Rename(`a\.b`, `ключ`)}, `{"a.b":true}`, `{"ключ":true}`, nil},

		// Delete
		{"delete", []Op{Delete("b")}, `{"a":1,"b":2,"c":3}`, `{"a":1,"c":3}`, nil},
		{"delete several", []Op{Delete("a", "c.d", "nope")}, `{"a":1,"b":2,"c":{"d":1,"e":2}}`, `{"b":2,"c":{"e":2}}`, nil},
		{"delete last member", []Op{Delete("c")}, `{"a":1,"c":3}`, `{"a":1}`, nil},
		{"delete missing parent", []Op{Delete("x.y.z")}, `{"a":1}`, `{"a":1}`, nil},
		{"delete array element", []Op{Delete("items.1")}, `{"items":[1,2,3]}`, `{"items":[1,3]}`, nil},
		{"delete in every element", []Op{Delete("items.#.cost")}, `{"items":[{"sku":"a","cost":1},{"sku":"b"},{"cost":2}]}`, `{"items":[{"sku":"a"},{"sku":"b"},{}]}`, nil},
		{"delete escaped key", []Op{Delete(`a\.b`)}, `{"a.b":1,"a":{"b":2}}`, `{"a":{"b":2}}`, nil},
		{"delete from scalar body", []Op{Delete("a")}, `42`, `42`, nil},

		// Keep
		{"keep", []Op{Keep("id", "name")}, `{"id":1,"secret":"x","name":"n","extra":{}}`, `{"id":1,"name":"n"}`, nil},
		{"keep nested", []Op{Keep("a.b", "c")}, `{"a":{"b":1,"x":2},"c":[1],"d":4}`, `{"a":{"b":1},"c":[1]}`, nil},
		{"keep in every element", []Op{Keep("id", "items.#.sku", "items.#.qty")}, `{"id":1,"items":[{"sku":"a","qty":1,"cost":5},{"sku":"b"},7],"x":0}`, `{"id":1,"items":[{"sku":"a","qty":1},{"sku":"b"},null]}`, nil},
		{"keep missing paths", []Op{Keep("nope", "a")}, `{"a":1,"b":2}`, `{"a":1}`, nil},
		{"keep drops mismatched shape", []Op{Keep("a.b")}, `{"a":"str"}`, `{}`, nil},
		{"keep top-level array", []Op{Keep("#.id")}, `[{"id":1,"x":1},{"id":2}]`, `[{"id":1},{"id":2}]`, nil},
		{"keep on array body without #", []Op{Keep("a")}, `[1]`, `{}`, nil},
		{"keep unicode and escaped", []Op{Keep(`名前`, `a\.b`)}, `{"名前":1,"a":{"b":2},"a.b":3}`, `{"名前":1,"a.b":3}`, nil},
		{"keep whole and part", []Op{Keep("a", "a.b")}, `{"a":{"b":1,"c":2},"d":1}`, `{"a":{"b":1,"c":2}}`, nil},

		// Wrap and Unwrap
		{"wrap", []Op{Wrap("data")}, ` {"id":1} `, `{"data":{"id":1}}`, nil},
		{"wrap deep", []Op{Wrap("a.b")}, `[1]`, `{"a":{"b":[1]}}`, nil},
		{"wrap escaped", []Op{Wrap(`a\.b`)}, `1`, `{"a.b":1}`, nil},
		{"unwrap", []Op{Unwrap("data")}, `{"data":{"id":1},"meta":{}}`, `{"id":1}`, nil},
		{"unwrap nested", []Op{Unwrap("a.b")}, `{"a":{"b":[1,2]}}`, `[1,2]`, nil},
		{"unwrap array field", []Op{Unwrap("items.#.id")}, `{"items":[{"id":1},{"id":2}]}`, `[1,2]`, nil},
		{"unwrap missing", []Op{Unwrap("data")}, `{"x":1}`, ``, ErrMismatch},

		// Sequences
		{"ops in order", []Op{Rename("a", "b"), Set("c", Field("b")), Delete("b"), Wrap("w")}, `{"a":1}`, `{"w":{"c":1}}`, nil},

		// Not JSON
		{"truncated JSON", []Op{Set("a", JSON(`1`))}, `{"a":`, ``, ErrNotJSON},
		{"XML is not JSON", []Op{Delete("a")}, `<a/>`, ``, ErrNotJSON},
		{"empty is not JSON", []Op{Delete("a")}, ``, ``, ErrNotJSON},
		{"trailing garbage", []Op{Delete("a")}, `{} x`, ``, ErrNotJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustBody(t, tc.ops...)
			in := []byte(tc.in)
			orig := string(in)
			got, err := b.Apply(nil, in)
			if string(in) != orig {
				t.Fatalf("Apply changed its input to %s", in)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestBodyValuesFromRequest reads every kind of value into a body through a
// pipeline.
func TestBodyValuesFromRequest(t *testing.T) {
	var saw upstreamSaw
	tr := mustRequest(t,
		Set("param", Param("id")),
		Set("query", Query("q")),
		Set("header", Header("X-In")),
		Set("sub", Subject()),
		Set("plan", Claim("plan")),
		Set("nested", Claim("org.roles")),
		Set("ip", ClientIP()),
		Set("noParam", Param("nope")),
	)
	auth := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		return &gateway.Principal{Subject: "ada", ClaimsJSON: []byte(`{"plan":"pro","org":{"roles":["a","b"]}}`)}, nil
	})
	h := routed(t, "/accounts/{id}", pipe(echoUpstream(&saw, 200, nil, ""), gateway.Authenticate(auth), tr.Stage()))
	rec := do(h, "POST", "/accounts/%C3%A9?q=a%22b&q=2", `{"noParam":"client","sub":"mallory"}`,
		http.Header{"X-In": {"v1"}, "Content-Type": {"application/json"}})
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := `{"sub":"ada","param":"é","query":"a\"b","header":"v1","plan":"pro","nested":["a","b"],"ip":"192.0.2.1"}`
	if string(saw.body) != want {
		t.Errorf("upstream body\n got  %s\n want %s", saw.body, want)
	}
	if saw.contentLength != int64(len(want)) {
		t.Errorf("ContentLength = %d, want %d", saw.contentLength, len(want))
	}
}

// TestClaimsFromMap reads claims when the authenticator gave no JSON.
func TestClaimsFromMap(t *testing.T) {
	req := gateway.NewRequest(httptest.NewRequest("POST", "/", strings.NewReader(`{}`)))
	req.Principal = &gateway.Principal{Subject: "s", Claims: map[string]any{"tenant": map[string]any{"id": 42.0}, "name": "Zoë"}}
	b := mustBody(t, Set("t", Claim("tenant.id")), Set("n", Claim("name")), Set("x", Claim("missing.y")))
	got, err := b.Apply(req, []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"t":42,"n":"Zoë"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRequestBodyThroughPipeline(t *testing.T) {
	tests := []struct {
		name        string
		ops         []Op
		ctype, body string
		status      int
		wantBody    string
		detail      string
	}{
		{"json", []Op{Set("a", JSON(`1`))}, "application/json", `{"b":2}`, 200, `{"b":2,"a":1}`, ""},
		{"json with charset", []Op{Delete("b")}, "application/json; charset=utf-8", `{"b":2}`, 200, `{}`, ""},
		{"vendor json", []Op{Delete("b")}, "application/vnd.acme+json", `{"b":2}`, 200, `{}`, ""},
		{"no content type", []Op{Delete("b")}, "", `{"b":2}`, 200, `{}`, ""},
		{"empty body is skipped", []Op{Set("a", JSON(`1`))}, "application/json", ``, 200, ``, ""},
		{"text content type", []Op{Delete("b")}, "text/plain", `{"b":2}`, 400, "", "the request body is not JSON, which this route needs"},
		{"invalid json", []Op{Delete("b")}, "application/json", `{"b":`, 400, "", "the request body is not JSON, which this route needs"},
		{"form body", []Op{Delete("b")}, "", `b=2`, 400, "", "the request body is not JSON, which this route needs"},
		{"shape mismatch", []Op{Unwrap("data")}, "application/json", `{"b":2}`, 400, "", `the request body cannot be reshaped: the body has no "data" to unwrap`},
		{"set on array", []Op{Set("a", JSON("1"))}, "application/json", `[]`, 400, "", `the request body cannot be reshaped: cannot set "a": the body is not an object`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			p := pipe(echoUpstream(&saw, 200, nil, "ok"), mustRequest(t, tc.ops...).Stage())
			hdr := http.Header{}
			if tc.ctype != "" {
				hdr.Set("Content-Type", tc.ctype)
			}
			rec := do(p, "POST", "/", tc.body, hdr)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				if saw.called {
					t.Error("the upstream was called")
				}
				if pr := decodeProblem(t, rec); pr.Detail != tc.detail {
					t.Errorf("detail %q, want %q", pr.Detail, tc.detail)
				}
				if strings.Contains(rec.Body.String(), tc.body) {
					t.Errorf("the problem echoes the body: %s", rec.Body)
				}
				return
			}
			if string(saw.body) != tc.wantBody {
				t.Errorf("upstream got %q, want %q", saw.body, tc.wantBody)
			}
			if saw.contentLength != int64(len(tc.wantBody)) {
				t.Errorf("upstream ContentLength %d, want %d", saw.contentLength, len(tc.wantBody))
			}
			if got := saw.header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q (unchanged)", got, tc.ctype)
			}
		})
	}
}

// TestBodyUntouchedOnError checks that a failed transform leaves the body
// exactly as the client sent it.
func TestBodyUntouchedOnError(t *testing.T) {
	tr := mustRequest(t, Set("a", JSON(`1`)), Unwrap("missing"))
	body := `{"b":2}`
	req := gateway.NewRequest(httptest.NewRequest("POST", "/", strings.NewReader(body)))
	err := tr.TransformRequest(context.Background(), req)
	if e, ok := errors.AsType[*gateway.Error](err); !ok || e.Status != 400 {
		t.Fatalf("err = %v, want a 400 *gateway.Error", err)
	}
	got, _ := req.Body()
	if string(got) != body {
		t.Errorf("body = %s, want %s", got, body)
	}

	tr = mustRequest(t, Delete("a"))
	req = gateway.NewRequest(httptest.NewRequest("POST", "/", strings.NewReader("not json")))
	if err := tr.TransformRequest(context.Background(), req); !errors.Is(err, ErrNotJSON) {
		t.Fatalf("err = %v, want ErrNotJSON", err)
	}
	got, _ = req.Body()
	if string(got) != "not json" {
		t.Errorf("body = %s", got)
	}
}

func TestResponseBody(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		method   string
		status   int
		header   http.Header
		body     string
		wantCode int
		wantBody string
	}{
		{"reshaped", Config{Ops: []Op{Keep("id"), Set("v", JSON(`2`))}}, "GET", 200, http.Header{"Content-Type": {"application/json"}}, `{"id":1,"secret":"x"}`, 200, `{"id":1,"v":2}`},
		{"201 reshaped", Config{Ops: []Op{Delete("secret")}}, "POST", 201, nil, `{"id":1,"secret":"x"}`, 201, `{"id":1}`},
		{"error reply passes", Config{Ops: []Op{Delete("secret")}}, "GET", 500, http.Header{"Content-Type": {"text/html"}}, `<h1>oops</h1>`, 500, `<h1>oops</h1>`},
		{"error reply with AllStatuses", Config{Ops: []Op{Delete("secret")}, AllStatuses: true}, "GET", 404, nil, `{"secret":1,"e":"x"}`, 404, `{"e":"x"}`},
		{"not json", Config{Ops: []Op{Delete("secret")}}, "GET", 200, http.Header{"Content-Type": {"text/plain"}}, `hello`, 502, ""},
		{"invalid json", Config{Ops: []Op{Delete("secret")}}, "GET", 200, nil, `{"a":`, 502, ""},
		{"compressed", Config{Ops: []Op{Delete("secret")}}, "GET", 200, http.Header{"Content-Encoding": {"gzip"}}, "\x1f\x8b", 502, ""},
		{"empty 200", Config{Ops: []Op{Delete("secret")}}, "GET", 200, nil, ``, 200, ``},
		{"head", Config{Ops: []Op{Delete("secret")}}, "HEAD", 200, nil, `{"secret":1}`, 200, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			p := pipe(echoUpstream(&saw, tc.status, tc.header, tc.body), mustResponse(t, tc.cfg).Stage())
			rec := do(p, tc.method, "/", "", nil)
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantCode == 502 {
				decodeProblem(t, rec)
				return
			}
			if rec.Body.String() != tc.wantBody {
				t.Errorf("body %q, want %q", rec.Body, tc.wantBody)
			}
			if tc.method != "HEAD" {
				if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(tc.wantBody)) && !(cl == "" && tc.wantBody == "") {
					t.Errorf("Content-Length %q, want %d", cl, len(tc.wantBody))
				}
			}
		})
	}
}
