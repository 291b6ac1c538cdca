package transform_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"

	"github.com/gatekit/gatekit/gateway"
	. "github.com/gatekit/gatekit/transform"
)

func TestTemplate(t *testing.T) {
	const tmpl = `{"id": {{.Param "id"}}, "q": {{.Query "q"}}, "ua": {{.Header "User-Agent"}}, "user": {{.Subject}},` +
		` "name": {{.Body "name"}}, "skus": {{.Body "items.#.sku"}}, "n": {{.Body "n" | string}}, "missing": {{.Body "nope"}},` +
		` "plan": {{.Claim "plan"}}, "method": {{.Method}}, "path": {{.Path}}, "status": {{.Status}}{{if .Query "debug"}}, "debug": true{{end}}}`
	tr := mustRequest(t, Template(tmpl, nil))
	auth := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		return &gateway.Principal{Subject: "ada", Claims: map[string]any{"plan": "pro"}}, nil
	})
	var saw upstreamSaw
	h := routed(t, "/orders/{id}", pipe(echoUpstream(&saw, 200, nil, ""), gateway.Authenticate(auth), tr.Stage()))
	rec := do(h, "POST", "/orders/42?q=hi&debug=1", `{"name":"Zoë","n":7,"items":[{"sku":"a"},{"sku":"b"}]}`,
		http.Header{"User-Agent": {"t/1"}, "Content-Type": {"text/json-ish+json"}})
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := `{"id": "42", "q": "hi", "ua": "t/1", "user": "ada", "name": "Zoë", "skus": ["a","b"], "n": "7", "missing": null, "plan": "pro", "method": "POST", "path": "/orders/42", "status": 0, "debug": true}`
	if string(saw.body) != want {
		t.Errorf("body\n got  %s\n want %s", saw.body, want)
	}
	if ct := saw.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if saw.contentLength != int64(len(want)) {
		t.Errorf("Content-Length %d, want %d", saw.contentLength, len(want))
	}
}

// TestTemplateInjection sends values built to break out of a JSON string
// and checks that each stays one string, exactly as sent.
func TestTemplateInjection(t *testing.T) {
	attacks := []string{
		`", "admin": true, "x": "`,
		"line1\nline2\r\n\"quoted\"",
		`\", \"admin\": true}`,
		`</script><script>alert(1)</script>`,
		"\x00\x1f\u2028\u2029",
		`{{.Header "Authorization"}}`,
		"\xff\xfe invalid utf-8",
		`}]}`,
	}
	tr := mustRequest(t, Template(`{"q": {{.Query "q"}}, "h": {{.Header "X-Note"}}, "p": {{.Param "id"}}, "admin": false}`, nil))
	for _, a := range attacks {
		t.Run(a, func(t *testing.T) {
			var saw upstreamSaw
			h := routed(t, "/t/{id}", pipe(echoUpstream(&saw, 200, nil, ""), tr.Stage()))
			// The gateway refuses control characters, '/' and '\' in
			// paths, and net/http refuses control characters in headers.
			inPath := strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
					return -1
				}
				return r
			}, a)
			inHeader := strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, a)
			r := httptest.NewRequest("GET", "/t/"+url.PathEscape(inPath)+"?q="+url.QueryEscape(a), nil)
			r.Header.Set("X-Note", inHeader)
			r.Header.Set("Authorization", "Bearer secret")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(saw.body, &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, saw.body)
			}
			if len(got) != 4 || got["admin"] != false {
				t.Errorf("injected members: %s", saw.body)
			}
			want := strings.ToValidUTF8(a, "\ufffd")
			if got["q"] != want && !(strings.Contains(a, "\xff") && got["q"] == strings.ReplaceAll(a, "\xff\xfe", "\ufffd\ufffd")) {
				t.Errorf("q = %q, want %q", got["q"], want)
			}
			if got["h"] != strings.ToValidUTF8(inHeader, "\ufffd") && !strings.Contains(a, "\xff") {
				t.Errorf("h = %q, want %q", got["h"], inHeader)
			}
			if p, _ := got["p"].(string); p == "" && inPath != "" {
				t.Errorf("p = %q", got["p"])
			}
			if strings.Contains(string(saw.body), "secret") {
				t.Error("a template in a value was executed")
			}
		})
	}
}

func TestTemplateDoesNotReadUnusedBody(t *testing.T) {
	var allowed atomic.Bool
	var saw upstreamSaw
	tr := mustRequest(t, Template(`{"id": {{.Param "id"}}}`, nil))
	h := routed(t, "/t/{id}", pipe(echoUpstream(&saw, 200, nil, ""), tr.Stage()))
	r := httptest.NewRequest("POST", "/t/1", &guardedBody{t: t, allowed: &allowed, r: strings.NewReader("not read")})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 || string(saw.body) != `{"id": "1"}` {
		t.Errorf("status %d, body %s", rec.Code, saw.body)
	}
}

func TestTemplateFuncsAndErrors(t *testing.T) {
	funcs := template.FuncMap{"upper": strings.ToUpper, "list": func() []string { return []string{"a", "b<"} }}
	tests := []struct {
		name, tmpl string
		body       string
		status     int
		want       string
	}{
		{"user func output is escaped", `{"u": {{.Query "q" | upper}}}`, ``, 200, `{"u": "A\"B"}`},
		{"json func", `{"l": {{json list}}, "m": {{list}}}`, ``, 200, `{"l": ["a","b\u003c"], "m": ["a","b\u003c"]}`},
		{"variables and range", `{"n": [{{range $i, $v := list}}{{if $i}},{{end}}{{$v}}{{end}}]}`, ``, 200, `{"n": ["a","b\u003c"]}`},
		{"quoted action breaks the output", `{"u": "{{.Query "q"}}"}`, ``, 500, ``},
		{"body not JSON", `{"n": {{.Body "n"}}}`, `nope`, 400, ``},
		{"reply-only data is empty", `{"h": {{.ReplyHeader "Server"}}}`, ``, 200, `{"h": ""}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			tr := mustRequest(t, Template(tc.tmpl, funcs))
			rec := do(pipe(echoUpstream(&saw, 200, nil, ""), tr.Stage()), "POST", `/?q=a"b`, tc.body, nil)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 && string(saw.body) != tc.want {
				t.Errorf("got %s, want %s", saw.body, tc.want)
			}
			if tc.status != 200 && strings.Contains(rec.Body.String(), "a\"b") {
				t.Errorf("problem leaks request data: %s", rec.Body)
			}
		})
	}
}

// TestTemplateReply builds a reply body from the upstream's reply.
func TestTemplateReply(t *testing.T) {
	out := mustResponse(t, Config{Ops: []Op{
		StatusWhen("error", 502),
		Template(`{"ok": false, "status": {{.Status}}, "code": {{.Body "error.code"}}, "request": {{.RequestID}}}`, nil),
	}, AllStatuses: true})
	in := mustRequest(t, AssignRequestID(RequestIDConfig{Generate: func() string { return "r1" }}))
	var saw upstreamSaw
	up := echoUpstream(&saw, 200, http.Header{"Content-Type": {"application/json"}}, `{"error":{"code":"E7","trace":"at db.go:12"}}`)
	rec := do(pipe(up, in.Stage(), out.Stage()), "GET", "/", "", nil)
	if rec.Code != 502 {
		t.Fatalf("status %d", rec.Code)
	}
	want := `{"ok": false, "status": 502, "code": "E7", "request": "r1"}`
	if rec.Body.String() != want {
		t.Errorf("body %s, want %s", rec.Body, want)
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(want)) {
		t.Errorf("Content-Length %s, want %d", cl, len(want))
	}
}
