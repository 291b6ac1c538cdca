package proxy_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// mockServe starts a gateway whose one route, pattern, is served by a mock
// built from cfg.
func mockServe(t testing.TB, pattern string, cfg proxy.MockConfig) *httptest.Server {
	t.Helper()
	m, err := proxy.Mock(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newGateway(t, gateway.Options{}, gateway.Route{Path: pattern, Handler: m})
}

func mockDo(t *testing.T, gw *httptest.Server, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, gw.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, gw.Client(), req)
}

func TestMockStatic(t *testing.T) {
	tests := []struct {
		name       string
		resp       proxy.MockResponse
		wantStatus int
		wantType   string // "" means no Content-Type field
		wantBody   string
		wantHeader http.Header
	}{
		{
			name:       "JSON body gets application/json",
			resp:       proxy.MockResponse{Body: `{"id": 1}`},
			wantStatus: 200, wantType: "application/json", wantBody: `{"id": 1}`,
		},
		{
			name:       "JSON array",
			resp:       proxy.MockResponse{Body: " [1, 2]\n"},
			wantStatus: 200, wantType: "application/json", wantBody: " [1, 2]\n",
		},
		{
			name:       "text body gets text/plain",
			resp:       proxy.MockResponse{Body: "[INFO] not JSON"},
			wantStatus: 200, wantType: "text/plain; charset=utf-8", wantBody: "[INFO] not JSON",
		},
		{
			name:       "status, header and content type",
			resp:       proxy.MockResponse{Status: 201, Header: http.Header{"Location": {"/users/7"}, "x-request-id": {"abc"}}, Body: "<ok/>", ContentType: "application/xml"},
			wantStatus: 201, wantType: "application/xml", wantBody: "<ok/>",
			wantHeader: http.Header{"Location": {"/users/7"}, "X-Request-Id": {"abc"}},
		},
		{
			name:       "Content-Type in Header",
			resp:       proxy.MockResponse{Header: http.Header{"Content-Type": {"text/csv"}}, Body: "a,b\n"},
			wantStatus: 200, wantType: "text/csv", wantBody: "a,b\n",
		},
		{
			name:       "no content",
			resp:       proxy.MockResponse{Status: 204},
			wantStatus: 204,
		},
		{
			name:       "error status passes as it is",
			resp:       proxy.MockResponse{Status: 503, Header: http.Header{"Retry-After": {"5"}}, Body: `{"error": "down"}`},
			wantStatus: 503, wantType: "application/json", wantBody: `{"error": "down"}`,
			wantHeader: http.Header{"Retry-After": {"5"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gw := mockServe(t, "/x", proxy.MockConfig{Default: &tc.resp})
			resp, body := get(t, gw, "/x")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if string(body) != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			if tc.wantBody != "" && resp.ContentLength != int64(len(tc.wantBody)) {
				t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(tc.wantBody))
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header[k]; !slices.Equal(got, v) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// The reply's header is the mock's own per request: a stage that changes
// it does not change the next reply.
func TestMockHeaderNotShared(t *testing.T) {
	m, err := proxy.Mock(proxy.MockConfig{Default: &proxy.MockResponse{Header: http.Header{"X-A": {"1"}}, Body: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
	r1, err := m.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r1.Header.Set("X-A", "changed")
	r2, err := m.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Header.Get("X-A"); got != "1" {
		t.Errorf("second reply's X-A = %q, want 1", got)
	}
}

func TestMockTemplate(t *testing.T) {
	gw := mockServe(t, "/users/{id}", proxy.MockConfig{Default: &proxy.MockResponse{
		Template: true,
		Body: `{"id": {{.Param "id"}}, "q": {{.Query "q"}}, "tags": {{.QueryAll "tag"}}, "none": {{.QueryAll "none"}},
 "tenant": {{.Header "X-Tenant"}}, "method": {{.Method}}, "path": {{.Path}},
 "greeting": {{printf "Hello, %s!" (.Query "q")}}, "n": {{len (.QueryAll "tag")}}, "json": {{json (.Query "q")}}}`,
	}})
	resp, body := mockDo(t, gw, "GET", "/users/42?q=caf%C3%A9&tag=a&tag=b", http.Header{"X-Tenant": {"acme"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length = %d, body has %d bytes", resp.ContentLength, len(body))
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := map[string]any{
		"id": "42", "q": "café", "tags": []any{"a", "b"}, "none": []any{}, "tenant": "acme",
		"method": "GET", "path": "/users/42", "greeting": "Hello, café!", "n": 2.0, "json": "café",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// Request values cannot break a templated reply, whatever they hold.
func TestMockTemplateEscaping(t *testing.T) {
	hostile := []string{
		`"`,
		"line\nbreak\r\t",
		`</script><script>alert(1)</script>`,
		`", "admin": true, "x": "`,
		`\`,
		"\u2028\u2029",
		"nul\x00",
		`{{.Method}}`,
		`<a href='x'>&amp;</a>`,
	}
	t.Run("JSON", func(t *testing.T) {
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{
			Template: true,
			Body:     `{"q": {{.Query "q"}}, "h": {{.Header "X-V"}}, "s": {{printf "<%s>" (.Query "q")}}, "j": {{json (.Query "q")}}}`,
		}})
		for _, v := range hostile {
			resp, body := mockDo(t, gw, "GET", "/x?q="+url.QueryEscape(v), http.Header{"X-V": {strings.NewReplacer("\n", "", "\r", "", "\x00", "").Replace(v)}})
			if resp.StatusCode != 200 {
				t.Fatalf("%q: status %d: %s", v, resp.StatusCode, body)
			}
			var got map[string]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%q: reply is not JSON: %v: %s", v, err, body)
			}
			if len(got) != 4 || got["q"] != v || got["s"] != "<"+v+">" || got["j"] != v {
				t.Errorf("%q: got %q", v, got)
			}
			if strings.Contains(string(body), "</script") || strings.Contains(string(body), "\n") {
				t.Errorf("%q: body holds a raw </script or newline: %s", v, body)
			}
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{Template: true, Body: `{"q": {{.Query "q"}}}`}})
		_, body := get(t, gw, "/x?q=a%FFb")
		if string(body) != `{"q": "a\ufffdb"}` {
			t.Errorf("body = %s", body)
		}
	})
	t.Run("HTML", func(t *testing.T) {
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{
			Template: true, ContentType: "text/html; charset=utf-8",
			Body: `<p title="{{.Query "q"}}">{{.Query "q"}}</p><script>var q = {{.Query "q"}};</script>`,
		}})
		for _, v := range hostile {
			_, body := get(t, gw, "/x?q="+url.QueryEscape(v))
			s := string(body)
			if strings.Count(s, "<script>") != 1 || strings.Count(s, "</script>") != 1 || strings.Count(s, "<p ") != 1 || strings.Contains(s, "<a ") {
				t.Errorf("%q: value escaped its context: %s", v, s)
			}
		}
	})
	t.Run("XML", func(t *testing.T) {
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{
			Template: true, ContentType: "application/xml",
			Body: `<r a="{{.Query "q"}}">{{.Query "q"}}</r>`,
		}})
		for _, v := range hostile {
			_, body := get(t, gw, "/x?q="+url.QueryEscape(v))
			var got struct {
				A    string `xml:"a,attr"`
				Text string `xml:",chardata"`
			}
			if err := xml.Unmarshal(body, &got); err != nil {
				t.Fatalf("%q: reply is not XML: %v: %s", v, err, body)
			}
			if !strings.Contains(v, "\x00") && !strings.Contains(v, "\r") && (got.A != v || got.Text != v) {
				t.Errorf("%q: got %q", v, got)
			}
		}
	})
	t.Run("text is as it is", func(t *testing.T) {
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{Template: true, Body: `you sent {{.Query "q"}}`}})
		resp, body := get(t, gw, "/x?q=%22%3C")
		if string(body) != `you sent "<` || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("body %q, Content-Type %q", body, resp.Header.Get("Content-Type"))
		}
	})
}

func TestMockMatchers(t *testing.T) {
	resp := func(body string) proxy.MockResponse { return proxy.MockResponse{Body: body} }
	cfg := proxy.MockConfig{
		Cases: []proxy.MockCase{
			{Methods: []string{"POST"}, Response: proxy.MockResponse{Status: 201, Body: "created"}},
			{Params: map[string]string{"id": "0"}, Response: proxy.MockResponse{Status: 404, Body: "no such user"}},
			{Query: map[string]string{"fail": ""}, Response: proxy.MockResponse{Status: 500, Body: "failed"}},
			{Query: map[string]string{"view": "full name"}, Response: resp("full")},
			{Headers: map[string]string{"x-tenant": "acme"}, Response: resp("acme")},
			{Headers: map[string]string{"X-Beta": ""}, Query: map[string]string{"v": "2"}, Response: resp("beta v2")},
			{Methods: []string{"GET", "DELETE"}, Params: map[string]string{"id": ""}, Response: resp("user")},
		},
	}
	gw := mockServe(t, "/users/{id}", cfg)
	noDefault := mockServe(t, "/users/{id}", proxy.MockConfig{Cases: cfg.Cases[:1]})
	tests := []struct {
		name       string
		gw         *httptest.Server
		method     string
		path       string
		header     http.Header
		wantStatus int
		wantBody   string
	}{
		{"method", gw, "POST", "/users/1", nil, 201, "created"},
		{"first case wins", gw, "POST", "/users/0?fail", nil, 201, "created"},
		{"param", gw, "GET", "/users/0", nil, 404, "no such user"},
		{"query present", gw, "GET", "/users/1?fail", nil, 500, "failed"},
		{"query present empty", gw, "GET", "/users/1?fail=", nil, 500, "failed"},
		{"query value decoded", gw, "GET", "/users/1?view=full+name", nil, 200, "full"},
		{"query any of its values", gw, "GET", "/users/1?view=x&view=full%20name", nil, 200, "full"},
		{"query value differs", gw, "GET", "/users/1?view=full", nil, 200, "user"},
		{"header", gw, "GET", "/users/1", http.Header{"X-Tenant": {"acme"}}, 200, "acme"},
		{"header value differs", gw, "GET", "/users/1", http.Header{"X-Tenant": {"Acme"}}, 200, "user"},
		{"all matchers of a case", gw, "GET", "/users/1?v=2", http.Header{"X-Beta": {"yes"}}, 200, "beta v2"},
		{"one matcher of a case missing", gw, "GET", "/users/1?v=2", nil, 200, "user"},
		{"HEAD matches GET", gw, "HEAD", "/users/1", nil, 200, ""},
		{"no case matches", gw, "PUT", "/users/1", nil, 404, ""},
		{"no case matches, no default", noDefault, "GET", "/users/1", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := mockDo(t, tc.gw, tc.method, tc.path, tc.header)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody == "" && tc.wantStatus == 404 {
				checkProblem(t, resp, body, 404)
				return
			}
			if string(body) != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
		})
	}
	// With a Default, an unmatched request gets it.
	cfg.Default = &proxy.MockResponse{Status: 418, Body: "default"}
	withDefault := mockServe(t, "/users/{id}", cfg)
	if resp, body := mockDo(t, withDefault, "PUT", "/users/1", nil); resp.StatusCode != 418 || string(body) != "default" {
		t.Errorf("default: %d %q", resp.StatusCode, body)
	}
}

func TestMockHEAD(t *testing.T) {
	for _, tmpl := range []bool{false, true} {
		t.Run("template="+strconv.FormatBool(tmpl), func(t *testing.T) {
			gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{Template: tmpl, Body: `{"hello": "world"}`}})
			getResp, getBody := get(t, gw, "/x")
			resp, body := mockDo(t, gw, "HEAD", "/x", nil)
			if resp.StatusCode != 200 || len(body) != 0 {
				t.Fatalf("HEAD: %d, %d body bytes", resp.StatusCode, len(body))
			}
			if resp.ContentLength != int64(len(getBody)) || getResp.ContentLength != int64(len(getBody)) {
				t.Errorf("Content-Length: HEAD %d, GET %d, GET body %d bytes", resp.ContentLength, getResp.ContentLength, len(getBody))
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("HEAD Content-Type = %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestMockLatency(t *testing.T) {
	t.Run("delays the reply", func(t *testing.T) {
		const latency = 30 * time.Millisecond
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{Body: "slow", Latency: latency, Jitter: 10 * time.Millisecond}})
		start := time.Now()
		resp, body := get(t, gw, "/x")
		if el := time.Since(start); el < latency {
			t.Errorf("reply after %v, want at least %v", el, latency)
		}
		if resp.StatusCode != 200 || string(body) != "slow" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("cancelled request returns at once", func(t *testing.T) {
		m, err := proxy.Mock(proxy.MockConfig{Default: &proxy.MockResponse{Body: "never", Latency: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			close(started)
			_, err := m.Serve(ctx, gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
			done <- err
		}()
		<-started
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context was cancelled")
		}
	})
	t.Run("deadline answers 504", func(t *testing.T) {
		m, err := proxy.Mock(proxy.MockConfig{Default: &proxy.MockResponse{Body: "never", Latency: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err = m.Serve(ctx, gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
		if p, _ := gateway.ProblemFor(err); p.Status != http.StatusGatewayTimeout {
			t.Errorf("err = %v, answers %d, want 504", err, p.Status)
		}
	})
	t.Run("client hangs up", func(t *testing.T) {
		gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{Body: "never", Latency: time.Hour}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", gw.URL+"/x", nil)
		resp, err := gw.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("the request succeeded")
		}
		// The server's handler ends too: goleak (TestMain) and
		// httptest.Server.Close, which waits for handlers, check it.
	})
}

func TestMockTemplateFailsAtRequest(t *testing.T) {
	gw := mockServe(t, "/x", proxy.MockConfig{Default: &proxy.MockResponse{
		Template: true,
		Body:     `{"first": {{index (.QueryAll "tag") 0}}, "maybe": {{if .Query "a"}}1{{end}}}`,
	}})
	if resp, body := get(t, gw, "/x?tag=t&a=1"); resp.StatusCode != 200 || string(body) != `{"first": "t", "maybe": 1}` {
		t.Errorf("good request: %d %s", resp.StatusCode, body)
	}
	// index out of range, and an empty value where JSON needs one.
	for _, q := range []string{"?a=1", "?tag=t"} {
		resp, body := get(t, gw, "/x"+q)
		doc := checkProblem(t, resp, body, 500)
		if d, _ := doc["detail"].(string); strings.Contains(d, "template") {
			t.Errorf("%s: the detail leaks the template: %q", q, d)
		}
	}
}

func TestMockConfigErrors(t *testing.T) {
	ok := proxy.MockResponse{Body: "ok"}
	tests := []struct {
		name string
		cfg  proxy.MockConfig
		want string // in the error
	}{
		{"empty", proxy.MockConfig{}, "no Cases and no Default"},
		{"bad template names the case", proxy.MockConfig{Cases: []proxy.MockCase{{Response: ok}, {Response: proxy.MockResponse{Template: true, Body: "{{.Query"}}}}, "Cases[1]"},
		{"unknown function", proxy.MockConfig{Default: &proxy.MockResponse{Template: true, Body: "{{nosuch 1}}"}}, "Default: template"},
		{"action inside quotes", proxy.MockConfig{Cases: []proxy.MockCase{{Response: proxy.MockResponse{Template: true, Body: `{"q": "{{.Query "q"}}"}`}}}}, "Cases[0]: Response: template: the output is not JSON"},
		{"status 1xx", proxy.MockConfig{Default: &proxy.MockResponse{Status: 101}}, "Status 101"},
		{"status 600", proxy.MockConfig{Default: &proxy.MockResponse{Status: 600}}, "Status 600"},
		{"body on 204", proxy.MockConfig{Default: &proxy.MockResponse{Status: 204, Body: "x"}}, "Status 204"},
		{"negative latency", proxy.MockConfig{Default: &proxy.MockResponse{Latency: -1}}, "Latency"},
		{"bad header name", proxy.MockConfig{Default: &proxy.MockResponse{Header: http.Header{"Bad Name": {"x"}}}}, "Bad Name"},
		{"header value with newline", proxy.MockConfig{Default: &proxy.MockResponse{Header: http.Header{"X-A": {"a\r\nSet-Cookie: x"}}}}, "X-A"},
		{"Content-Length", proxy.MockConfig{Default: &proxy.MockResponse{Header: http.Header{"Content-Length": {"3"}}}}, "Content-Length"},
		{"content types disagree", proxy.MockConfig{Default: &proxy.MockResponse{ContentType: "text/plain", Header: http.Header{"Content-Type": {"text/html"}}}}, "disagree"},
		{"bad content type", proxy.MockConfig{Default: &proxy.MockResponse{ContentType: "text/"}}, "ContentType"},
		{"bad method", proxy.MockConfig{Cases: []proxy.MockCase{{Methods: []string{"GE T"}, Response: ok}}}, "Cases[0]: Methods"},
		{"bad matcher header", proxy.MockConfig{Cases: []proxy.MockCase{{Headers: map[string]string{"a:b": ""}, Response: ok}}}, "Cases[0]: Headers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := proxy.Mock(tc.cfg)
			if err == nil {
				t.Fatalf("Mock = %v, want an error", m)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A mock answers for a backend that does not exist yet: a route that
// returns a user built from the path and the query.
func ExampleMock() {
	users, err := proxy.Mock(proxy.MockConfig{
		Cases: []proxy.MockCase{{
			Params:   map[string]string{"id": "0"},
			Response: proxy.MockResponse{Status: http.StatusNotFound, Body: `{"error": "no such user"}`},
		}},
		Default: &proxy.MockResponse{
			Template: true,
			// Each action writes one JSON value: a quote in the query
			// cannot end the string early.
			Body: `{"id": {{.Param "id"}}, "name": {{.Query "name"}}}`,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Methods: []string{"GET"}, Path: "/users/{id}", Handler: users},
	}})
	if err != nil {
		log.Fatal(err)
	}
	gw := httptest.NewServer(router)
	defer gw.Close()

	for _, path := range []string{"/users/42?name=Ada+%22The+Countess%22", "/users/0"} {
		resp, err := gw.Client().Get(gw.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), string(body))
	}
	// Output:
	// 200 application/json {"id": "42", "name": "Ada \"The Countess\""}
	// 404 application/json {"error": "no such user"}
}

func BenchmarkMockStatic(b *testing.B) {
	m, err := proxy.Mock(proxy.MockConfig{
		Cases:   []proxy.MockCase{{Methods: []string{"POST"}, Response: proxy.MockResponse{Status: 201}}},
		Default: &proxy.MockResponse{Header: http.Header{"Cache-Control": {"no-store"}}, Body: `{"id": 42, "name": "Ada"}`},
	})
	if err != nil {
		b.Fatal(err)
	}
	req := gateway.NewRequest(httptest.NewRequest("GET", "/users/42?view=full", nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Serve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMockTemplate(b *testing.B) {
	m, err := proxy.Mock(proxy.MockConfig{
		Default: &proxy.MockResponse{
			Template: true,
			Body:     `{"path": {{.Path}}, "view": {{.Query "view"}}, "tenant": {{.Header "X-Tenant"}}, "tags": {{.QueryAll "tag"}}}`,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/users/42?view=full&tag=a&tag=b", nil)
	r.Header.Set("X-Tenant", "acme")
	req := gateway.NewRequest(r)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Serve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
