package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// lambdaUpstream builds a Lambda upstream or fails the test.
func lambdaUpstream(t testing.TB, h proxy.LambdaHandler, cfg proxy.LambdaConfig) *proxy.LambdaUpstream {
	t.Helper()
	u, err := proxy.Lambda(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// lambdaCapture is a function that keeps the events it receives, as JSON,
// and answers 204.
type lambdaCapture struct {
	mu     sync.Mutex
	events [][]byte
}

func (c *lambdaCapture) keep(ev []byte) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
}

func (c *lambdaCapture) last(t *testing.T) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) == 0 {
		t.Fatal("the function received no event")
	}
	return c.events[len(c.events)-1]
}

// handler returns the function as a LambdaHandler of the given shape: raw
// JSON, or typed for version v.
func (c *lambdaCapture) handler(typed bool, v proxy.LambdaVersion) proxy.LambdaHandler {
	switch {
	case !typed:
		return proxy.LambdaHandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
			c.keep(slices.Clone(payload))
			return []byte(`{"statusCode":204}`), nil
		})
	case v == proxy.LambdaV1:
		return proxy.LambdaV1Handler(func(ctx context.Context, ev proxy.APIGatewayProxyRequest) (proxy.APIGatewayProxyResponse, error) {
			b, err := json.Marshal(ev)
			c.keep(b)
			return proxy.APIGatewayProxyResponse{StatusCode: http.StatusNoContent}, err
		})
	default:
		return proxy.LambdaV2Handler(func(ctx context.Context, ev proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
			b, err := json.Marshal(ev)
			c.keep(b)
			return proxy.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent}, err
		})
	}
}

// lambdaAuthenticated is a stage that sets a Principal, as an
// authenticator would after checking a JWT.
func lambdaAuthenticated(next gateway.Handler) gateway.Handler {
	p := &gateway.Principal{
		Subject: "user-7",
		Issuer:  "https://id.example.com/",
		Scopes:  []string{"orders:read", "orders:write"},
		Claims: map[string]any{
			"sub":    "user-7",
			"iss":    "https://id.example.com/",
			"aud":    []any{"api", "web"},
			"exp":    float64(1767229200),
			"admin":  false,
			"name":   "Ada",
			"absent": nil,
		},
	}
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		req.Principal = p
		return next.Serve(ctx, req)
	})
}

// lambdaNormalize replaces the time of an event, after checking it, by a
// fixed one, so that events can be compared with the golden documents.
func lambdaNormalize(t *testing.T, ev []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(ev, &doc); err != nil {
		t.Fatalf("the event is not a JSON object: %v\n%s", err, ev)
	}
	rc, _ := doc["requestContext"].(map[string]any)
	if rc == nil {
		t.Fatalf("the event has no requestContext:\n%s", ev)
	}
	timeKey, epochKey := "time", "timeEpoch"
	if doc["version"] == nil { // format 1.0 has no version field
		timeKey, epochKey = "requestTime", "requestTimeEpoch"
	}
	ts, _ := rc[timeKey].(string)
	tm, err := time.Parse("02/Jan/2006:15:04:05 -0700", ts)
	if err != nil {
		t.Errorf("requestContext.%s %q: %v", timeKey, ts, err)
	}
	epoch, _ := rc[epochKey].(float64)
	if d := time.UnixMilli(int64(epoch)).Sub(tm); d < 0 || d >= time.Second || time.Since(tm) > time.Minute {
		t.Errorf("requestContext.%s %q and %s %v disagree or are not now", timeKey, ts, epochKey, epoch)
	}
	rc[timeKey] = "01/Jan/2026:00:00:00 +0000"
	rc[epochKey] = float64(1767225600000)
	return doc
}

// lambdaCompareGolden compares an event with the golden document in
// testdata/lambda/name. The documents are written by hand, in the order and
// shape of AWS's documented examples of each payload format, for the
// requests of TestLambdaEvent.
func lambdaCompareGolden(t *testing.T, name string, ev []byte) {
	t.Helper()
	got := lambdaNormalize(t, ev)
	file := filepath.Join("testdata", "lambda", name)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if !reflect.DeepEqual(got, want) {
		pretty, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("the event differs from %s; got:\n%s", file, pretty)
	}
}

// TestLambdaEvent checks the events of both payload versions against
// documents in the format AWS documents for HTTP APIs, for the raw JSON
// handler and the typed one.
func TestLambdaEvent(t *testing.T) {
	tests := []struct {
		name   string
		route  *gateway.Route // nil: a Pipeline outside a Router
		stages []gateway.Stage
		method string
		target string
		header http.Header
		body   []byte
	}{
		{
			name:   "get",
			route:  &gateway.Route{Methods: []string{"GET"}, Path: "/users/{id}/orders"},
			stages: []gateway.Stage{lambdaAuthenticated},
			method: "GET",
			target: "/users/42/orders?fields=id,total&tag=a&tag=b&q=caf%C3%A9",
			header: http.Header{
				"Accept":       {"application/json"},
				"Cookie":       {"session=abc123; theme=dark", "lang=en"},
				"X-Multi":      {"one", "two"},
				"X-Request-Id": {"req-get-1"},
				"Connection":   {"X-Hop"},
				"X-Hop":        {"dropped: named by Connection"},
			},
		},
		{
			name:   "binary",
			route:  &gateway.Route{PathPrefix: "/files"},
			method: "PUT",
			target: "/files/a%20b.bin",
			header: http.Header{
				"Content-Type":    {"application/octet-stream"},
				"X-Request-Id":    {"req-binary-1"},
				"X-Forwarded-For": {"203.0.113.9"}, // spoofed: replaced
			},
			body: []byte{0xff, 0xd8, 0x00, 0x01, 'h', 'i'},
		},
		{
			name:   "default",
			method: "POST",
			target: "/echo",
			header: http.Header{
				"Content-Type": {"application/json"},
				"X-Request-Id": {"req-default-1"},
			},
			body: []byte(`{"greeting":"grüß dich"}`),
		},
	}
	for _, v := range []proxy.LambdaVersion{proxy.LambdaV2, proxy.LambdaV1} {
		for _, typed := range []bool{false, true} {
			for _, tc := range tests {
				shape := "json"
				if typed {
					shape = "typed"
				}
				t.Run(fmt.Sprintf("v%s/%s/%s", v, shape, tc.name), func(t *testing.T) {
					c := new(lambdaCapture)
					u := lambdaUpstream(t, c.handler(typed, v), proxy.LambdaConfig{
						Version:        v,
						StageVariables: map[string]string{"env": "test"},
					})
					var srv *httptest.Server
					if tc.route != nil {
						r := *tc.route
						r.Handler = gateway.NewPipeline(u, tc.stages...)
						srv = newGateway(t, gateway.Options{}, r)
					} else {
						srv = httptest.NewServer(gateway.NewPipeline(u, tc.stages...))
						t.Cleanup(srv.Close)
					}
					req, err := http.NewRequest(tc.method, srv.URL+tc.target, bytes.NewReader(tc.body))
					if err != nil {
						t.Fatal(err)
					}
					req.Host = "api.example.com"
					req.Header = tc.header.Clone()
					req.Header.Set("User-Agent", "gatekit-test/1.0")
					req.Header.Set("Accept-Encoding", "gzip")
					resp, body := do(t, srv.Client(), req)
					if resp.StatusCode != http.StatusNoContent {
						t.Fatalf("status = %d, want 204; body %s", resp.StatusCode, body)
					}
					lambdaCompareGolden(t, fmt.Sprintf("v%s-%s.json", v, tc.name), c.last(t))
				})
			}
		}
	}
}

// TestLambdaRequestID: without an X-Request-Id, every event has a new
// random request ID.
func TestLambdaRequestID(t *testing.T) {
	for _, v := range []proxy.LambdaVersion{proxy.LambdaV2, proxy.LambdaV1} {
		t.Run("v"+string(v), func(t *testing.T) {
			c := new(lambdaCapture)
			u := lambdaUpstream(t, c.handler(false, v), proxy.LambdaConfig{Version: v})
			ids := map[string]bool{}
			for range 3 {
				if _, err := u.Serve(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil))); err != nil {
					t.Fatal(err)
				}
				var ev struct {
					RequestContext struct {
						RequestID string `json:"requestId"`
					} `json:"requestContext"`
				}
				if err := json.Unmarshal(c.last(t), &ev); err != nil {
					t.Fatal(err)
				}
				if id := ev.RequestContext.RequestID; len(id) < 16 || ids[id] {
					t.Errorf("requestId %q: want a new random ID", id)
				}
				ids[ev.RequestContext.RequestID] = true
			}
		})
	}
}

// lambdaServeRaw serves a GET with a function that returns out.
func lambdaServeRaw(t *testing.T, v proxy.LambdaVersion, out string) (*gateway.Response, error) {
	t.Helper()
	u := lambdaUpstream(t, proxy.LambdaHandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		return []byte(out), nil
	}), proxy.LambdaConfig{Version: v, Name: "fn"})
	return u.Serve(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
}

type lambdaWant struct {
	status int
	header http.Header // fields that must have exactly these values
	absent []string    // fields that must not be there
	body   string
}

func lambdaCheckReply(t *testing.T, resp *gateway.Response, err error, want lambdaWant) {
	t.Helper()
	if want.status == http.StatusBadGateway {
		ge, ok := errors.AsType[*gateway.Error](err)
		if !ok || ge.Status != http.StatusBadGateway {
			t.Fatalf("Serve = %v, %v; want a 502 *gateway.Error", resp, err)
		}
		if ge.Detail != "the function returned an invalid response" && ge.Detail != "the function failed" {
			t.Errorf("detail = %q, want a generic one", ge.Detail)
		}
		return
	}
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if resp.Status != want.status {
		t.Errorf("status = %d, want %d", resp.Status, want.status)
	}
	for k, vs := range want.header {
		if got := resp.Header[k]; !slices.Equal(got, vs) {
			t.Errorf("%s = %q, want %q", k, got, vs)
		}
	}
	for _, k := range want.absent {
		if got, ok := resp.Header[k]; ok {
			t.Errorf("%s = %q, want none", k, got)
		}
	}
	body, err := resp.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != want.body {
		t.Errorf("body = %q, want %q", body, want.body)
	}
}

func TestLambdaResponse(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff}
	b64 := base64.StdEncoding.EncodeToString(binary)
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	bad := lambdaWant{status: http.StatusBadGateway}
	tests := []struct {
		name string
		v    proxy.LambdaVersion
		out  string
		want lambdaWant
	}{
		{"v2 full", proxy.LambdaV2,
			`{"statusCode":201,"headers":{"content-type":"text/plain","x-list":"a,b","Location":"/things/1"},` +
				`"cookies":["session=abc; Path=/; HttpOnly","theme=dark"],"body":"made it"}`,
			lambdaWant{status: 201, body: "made it", header: http.Header{
				"Content-Type": {"text/plain"},
				"X-List":       {"a,b"},
				"Location":     {"/things/1"},
				"Set-Cookie":   {"session=abc; Path=/; HttpOnly", "theme=dark"},
			}}},
		{"v2 base64 body", proxy.LambdaV2,
			`{"statusCode":200,"headers":{"content-type":"image/png"},"body":"` + b64 + `","isBase64Encoded":true}`,
			lambdaWant{status: 200, body: string(binary), header: http.Header{"Content-Type": {"image/png"}}}},
		{"v2 multiValueHeaders ignored", proxy.LambdaV2,
			`{"statusCode":200,"multiValueHeaders":{"x-a":["1","2"]},"body":"x"}`,
			lambdaWant{status: 200, body: "x", absent: []string{"X-A"}}},
		{"v2 hop-by-hop fields and length dropped", proxy.LambdaV2,
			`{"statusCode":200,"headers":{"connection":"close, x-private","x-private":"1","transfer-encoding":"chunked","content-length":"99","keep-alive":"timeout=5"},"body":"ok"}`,
			lambdaWant{status: 200, body: "ok", absent: []string{"Connection", "X-Private", "Transfer-Encoding", "Content-Length", "Keep-Alive"}}},
		{"v2 empty body", proxy.LambdaV2, `{"statusCode":304,"headers":{"etag":"\"x\""}}`,
			lambdaWant{status: 304, header: http.Header{"Etag": {`"x"`}}}},
		{"v2 bare object", proxy.LambdaV2, `{"message":"hello","statusText":"fine"}`,
			lambdaWant{status: 200, header: jsonCT, body: `{"message":"hello","statusText":"fine"}`}},
		{"v2 bare object with fields of a response", proxy.LambdaV2, `{"headers":5,"body":["x"]}`,
			lambdaWant{status: 200, header: jsonCT, body: `{"headers":5,"body":["x"]}`}},
		{"v2 bare string", proxy.LambdaV2, `"Hello from Lambda!"`,
			lambdaWant{status: 200, header: jsonCT, body: "Hello from Lambda!"}},
		{"v2 bare array", proxy.LambdaV2, ` [1, 2, 3] `,
			lambdaWant{status: 200, header: jsonCT, body: "[1, 2, 3]"}},
		{"v2 bare number", proxy.LambdaV2, `42`,
			lambdaWant{status: 200, header: jsonCT, body: "42"}},
		{"v2 bare null", proxy.LambdaV2, `null`,
			lambdaWant{status: 200, header: jsonCT, body: "null"}},
		{"v2 not JSON", proxy.LambdaV2, `{"statusCode":200,`, bad},
		{"v2 empty output", proxy.LambdaV2, ``, bad},
		{"v2 text output", proxy.LambdaV2, `Hello`, bad},
		{"v2 statusCode not a number", proxy.LambdaV2, `{"statusCode":"200","body":"x"}`, bad},
		{"v2 statusCode zero", proxy.LambdaV2, `{"statusCode":0,"body":"x"}`, bad},
		{"v2 statusCode 1xx", proxy.LambdaV2, `{"statusCode":103}`, bad},
		{"v2 statusCode over 599", proxy.LambdaV2, `{"statusCode":600}`, bad},
		{"v2 bad base64", proxy.LambdaV2, `{"statusCode":200,"body":"%%%","isBase64Encoded":true}`, bad},
		{"v2 header value with newline", proxy.LambdaV2, `{"statusCode":200,"headers":{"x-a":"1\r\nSet-Cookie: evil=1"}}`, bad},
		{"v2 header name not a token", proxy.LambdaV2, `{"statusCode":200,"headers":{"x a":"1"}}`, bad},
		{"v2 cookie with newline", proxy.LambdaV2, `{"statusCode":200,"cookies":["a=1\nb"]}`, bad},

		{"v1 full", proxy.LambdaV1,
			`{"statusCode":202,"headers":{"content-type":"text/plain","x-both":"single","x-one":"1"},` +
				`"multiValueHeaders":{"Set-Cookie":["a=1","b=2"],"X-Both":["m1","m2"]},"body":"accepted"}`,
			lambdaWant{status: 202, body: "accepted", header: http.Header{
				"Content-Type": {"text/plain"},
				"X-One":        {"1"},
				"X-Both":       {"m1", "m2"},
				"Set-Cookie":   {"a=1", "b=2"},
			}}},
		{"v1 base64 body", proxy.LambdaV1,
			`{"statusCode":200,"body":"` + b64 + `","isBase64Encoded":true}`,
			lambdaWant{status: 200, body: string(binary)}},
		{"v1 null fields", proxy.LambdaV1,
			`{"statusCode":404,"headers":null,"multiValueHeaders":null,"body":null}`,
			lambdaWant{status: 404}},
		{"v1 no statusCode", proxy.LambdaV1, `{"body":"x"}`, bad},
		{"v1 bare string", proxy.LambdaV1, `"Hello"`, bad},
		{"v1 not JSON", proxy.LambdaV1, `nope`, bad},
		{"v1 multi-value header with newline", proxy.LambdaV1, `{"statusCode":200,"multiValueHeaders":{"x-a":["ok","bad\n"]}}`, bad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := lambdaServeRaw(t, tc.v, tc.out)
			lambdaCheckReply(t, resp, err, tc.want)
		})
	}
}

// TestLambdaTypedResponse: the typed handlers' responses, which skip JSON,
// make the same replies.
func TestLambdaTypedResponse(t *testing.T) {
	binary := []byte{0x00, 0xfe, 0xff}
	b64 := base64.StdEncoding.EncodeToString(binary)
	v2 := func(r proxy.APIGatewayV2HTTPResponse) proxy.LambdaHandler {
		return proxy.LambdaV2Handler(func(context.Context, proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
			return r, nil
		})
	}
	v1 := func(r proxy.APIGatewayProxyResponse) proxy.LambdaHandler {
		return proxy.LambdaV1Handler(func(context.Context, proxy.APIGatewayProxyRequest) (proxy.APIGatewayProxyResponse, error) {
			return r, nil
		})
	}
	tests := []struct {
		name string
		h    proxy.LambdaHandler
		want lambdaWant
	}{
		{"v2", v2(proxy.APIGatewayV2HTTPResponse{
			StatusCode:        200,
			Headers:           map[string]string{"content-type": "application/octet-stream"},
			MultiValueHeaders: map[string][]string{"x-ignored": {"1"}},
			Cookies:           []string{"a=1", "b=2; Secure"},
			Body:              b64,
			IsBase64Encoded:   true,
		}), lambdaWant{status: 200, body: string(binary), absent: []string{"X-Ignored"}, header: http.Header{
			"Content-Type": {"application/octet-stream"},
			"Set-Cookie":   {"a=1", "b=2; Secure"},
		}}},
		{"v2 zero status", v2(proxy.APIGatewayV2HTTPResponse{Body: "x"}), lambdaWant{status: http.StatusBadGateway}},
		{"v1", v1(proxy.APIGatewayProxyResponse{
			StatusCode:        418,
			Headers:           map[string]string{"X-A": "single", "x-b": "b"},
			MultiValueHeaders: map[string][]string{"x-a": {"1", "2"}},
			Body:              "short and stout",
		}), lambdaWant{status: 418, body: "short and stout", header: http.Header{
			"X-A": {"1", "2"},
			"X-B": {"b"},
		}}},
		{"v1 bad base64", v1(proxy.APIGatewayProxyResponse{StatusCode: 200, Body: "!", IsBase64Encoded: true}),
			lambdaWant{status: http.StatusBadGateway}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := lambdaUpstream(t, tc.h, proxy.LambdaConfig{})
			resp, err := u.Serve(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
			lambdaCheckReply(t, resp, err, tc.want)
			// The same handler through JSON, as an opaque LambdaHandler.
			u = lambdaUpstream(t, proxy.LambdaHandlerFunc(tc.h.Invoke), proxy.LambdaConfig{Version: lambdaVersionOf(tc.name)})
			resp, err = u.Serve(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
			lambdaCheckReply(t, resp, err, tc.want)
		})
	}
}

func lambdaVersionOf(name string) proxy.LambdaVersion {
	if strings.HasPrefix(name, "v1") {
		return proxy.LambdaV1
	}
	return proxy.LambdaV2
}

// TestLambdaFailures: errors and panics of the function answer 502 without
// internals; a *gateway.Error passes through; through a real gateway.
func TestLambdaFailures(t *testing.T) {
	const secret = "token=s3cr3t"
	tests := []struct {
		name   string
		h      proxy.LambdaHandler
		status int
	}{
		{"json error", proxy.LambdaHandlerFunc(func(context.Context, []byte) ([]byte, error) {
			return nil, errors.New(secret)
		}), http.StatusBadGateway},
		{"json panic", proxy.LambdaHandlerFunc(func(context.Context, []byte) ([]byte, error) {
			panic(secret)
		}), http.StatusBadGateway},
		{"typed v2 error", proxy.LambdaV2Handler(func(context.Context, proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
			return proxy.APIGatewayV2HTTPResponse{StatusCode: 200, Body: secret}, errors.New(secret)
		}), http.StatusBadGateway},
		{"typed v1 panic", proxy.LambdaV1Handler(func(context.Context, proxy.APIGatewayProxyRequest) (proxy.APIGatewayProxyResponse, error) {
			var m map[string]string
			m[secret] = secret // assignment to entry in nil map
			return proxy.APIGatewayProxyResponse{}, nil
		}), http.StatusBadGateway},
		{"invalid response", proxy.LambdaHandlerFunc(func(context.Context, []byte) ([]byte, error) {
			return []byte(`{"statusCode":200,"body":"` + secret + `","isBase64Encoded":true}`), nil
		}), http.StatusBadGateway},
		{"gateway error", proxy.LambdaHandlerFunc(func(context.Context, []byte) ([]byte, error) {
			return nil, gateway.Errorf(http.StatusForbidden, "not yours")
		}), http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := lambdaUpstream(t, tc.h, proxy.LambdaConfig{Name: "orders"})
			resp, body := fnServe(t, u, "/orders")
			checkProblem(t, resp, body, tc.status)
			if strings.Contains(string(body), "s3cr3t") {
				t.Errorf("the problem leaks the function's error: %s", body)
			}
		})
	}
}

// TestLambdaTimeout: a function that overruns answers 504 at the deadline,
// whether it honours its context or not; one that does not is left to
// return on its own, before the test ends.
func TestLambdaTimeout(t *testing.T) {
	t.Run("ignores its context", func(t *testing.T) {
		release, returned := make(chan struct{}), make(chan struct{})
		t.Cleanup(func() { <-returned })
		u := lambdaUpstream(t, proxy.LambdaHandlerFunc(func(context.Context, []byte) ([]byte, error) {
			defer close(returned)
			<-release
			return []byte(`{"statusCode":200}`), nil
		}), proxy.LambdaConfig{Timeout: 20 * time.Millisecond})
		resp, body := fnServe(t, u, "/")
		close(release)
		checkProblem(t, resp, body, http.StatusGatewayTimeout)
	})
	t.Run("honours its context", func(t *testing.T) {
		u := lambdaUpstream(t, proxy.LambdaV2Handler(func(ctx context.Context, _ proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
			<-ctx.Done()
			return proxy.APIGatewayV2HTTPResponse{}, ctx.Err()
		}), proxy.LambdaConfig{Timeout: 20 * time.Millisecond})
		resp, body := fnServe(t, u, "/")
		checkProblem(t, resp, body, http.StatusGatewayTimeout)
	})
}

// TestLambdaContext: the function's context carries the deadline and ends
// when the client goes away.
func TestLambdaContext(t *testing.T) {
	started := make(chan struct{})
	seen := make(chan error, 1)
	var deadline time.Time
	u := lambdaUpstream(t, proxy.LambdaHandlerFunc(func(ctx context.Context, _ []byte) ([]byte, error) {
		deadline, _ = ctx.Deadline()
		close(started)
		<-ctx.Done()
		seen <- ctx.Err()
		return nil, ctx.Err()
	}), proxy.LambdaConfig{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	before := time.Now()
	resp, err := u.Serve(ctx, gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
	if resp != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, %v; want nil, context.Canceled", resp, err)
	}
	if err := <-seen; !errors.Is(err, context.Canceled) {
		t.Errorf("the function's context ended with %v, want context.Canceled", err)
	}
	if d := deadline.Sub(before); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("the function's deadline is %v away, want an hour", d)
	}
}

// TestLambdaBodyLimit: MaxBodyBytes holds whether the body streams in or a
// stage (a validator, say) has read it already under the route's limit.
func TestLambdaBodyLimit(t *testing.T) {
	c := new(lambdaCapture)
	u := lambdaUpstream(t, c.handler(false, proxy.LambdaV2), proxy.LambdaConfig{MaxBodyBytes: 8})
	readFirst := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if _, err := req.Body(); err != nil {
			return nil, err
		}
		return u.Serve(ctx, req)
	})
	gw := newGateway(t, gateway.Options{},
		gateway.Route{PathPrefix: "/streamed", Handler: u},
		gateway.Route{PathPrefix: "/read", Handler: readFirst})
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		status int
	}{
		{"streamed, at the limit", "/streamed", "12345678", http.StatusNoContent},
		{"streamed, over the limit", "/streamed", "123456789", http.StatusRequestEntityTooLarge},
		{"read by a stage, at the limit", "/read", "12345678", http.StatusNoContent},
		{"read by a stage, over the limit", "/read", strings.Repeat("x", 5000), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.mu.Lock()
			c.events = nil
			c.mu.Unlock()
			req, _ := http.NewRequest("POST", gw.URL+tc.path, strings.NewReader(tc.body))
			resp, body := do(t, gw.Client(), req)
			if resp.StatusCode != tc.status {
				t.Errorf("%d-byte body: status = %d, want %d; %s", len(tc.body), resp.StatusCode, tc.status, body)
			}
			c.mu.Lock()
			called := len(c.events) > 0
			c.mu.Unlock()
			if want := tc.status != http.StatusRequestEntityTooLarge; called != want {
				t.Errorf("the function was called: %v, want %v", called, want)
			}
		})
	}
}

func TestLambdaConfigErrors(t *testing.T) {
	raw := proxy.LambdaHandlerFunc(func(context.Context, []byte) ([]byte, error) { return nil, nil })
	v2 := proxy.LambdaV2Handler(func(context.Context, proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
		return proxy.APIGatewayV2HTTPResponse{}, nil
	})
	v1 := proxy.LambdaV1Handler(func(context.Context, proxy.APIGatewayProxyRequest) (proxy.APIGatewayProxyResponse, error) {
		return proxy.APIGatewayProxyResponse{}, nil
	})
	tests := []struct {
		name string
		h    proxy.LambdaHandler
		cfg  proxy.LambdaConfig
		ok   bool
	}{
		{"raw, default version", raw, proxy.LambdaConfig{}, true},
		{"typed v1, version inferred", v1, proxy.LambdaConfig{}, true},
		{"typed v2, version given", v2, proxy.LambdaConfig{Version: proxy.LambdaV2}, true},
		{"nil handler", nil, proxy.LambdaConfig{}, false},
		{"nil func", proxy.LambdaHandlerFunc(nil), proxy.LambdaConfig{}, false},
		{"nil typed func", proxy.LambdaV2Handler(nil), proxy.LambdaConfig{}, false},
		{"unknown version", raw, proxy.LambdaConfig{Version: "3.0"}, false},
		{"typed v2 as version 1.0", v2, proxy.LambdaConfig{Version: proxy.LambdaV1}, false},
		{"typed v1 as version 2.0", v1, proxy.LambdaConfig{Version: proxy.LambdaV2}, false},
		{"negative body limit", raw, proxy.LambdaConfig{MaxBodyBytes: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.Lambda(tc.h, tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("Lambda: err = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

// BenchmarkLambdaV2Call measures a call of a format 2.0 function that
// answers a small JSON body, from request to reply: making the event, the
// call on its own goroutine with a timeout, and making the reply. "typed" is
// a LambdaV2Handler, called with the event directly; "json" a raw handler
// that decodes the event and encodes its response, as the typed handler
// does behind an opaque LambdaHandler. Target: typed under 15µs and at most
// 36 allocations (TestLambdaCallAllocs); json costs what encoding/json
// costs, both ways and twice.
func BenchmarkLambdaV2Call(b *testing.B) {
	typed := lambdaBenchHandler()
	r := lambdaBenchRequest()
	for _, bc := range []struct {
		name string
		h    proxy.LambdaHandler
	}{
		{"typed", typed},
		{"json", proxy.LambdaHandlerFunc(typed.Invoke)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			u := lambdaUpstream(b, bc.h, proxy.LambdaConfig{})
			req := gateway.NewRequest(r)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := u.Serve(ctx, req)
				if err != nil || resp.Status != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
}

func lambdaBenchHandler() proxy.LambdaHandler {
	return proxy.LambdaV2Handler(func(ctx context.Context, ev proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
		return proxy.APIGatewayV2HTTPResponse{
			StatusCode: 200,
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       `{"id":"` + ev.PathParameters["id"] + `"}`,
		}, nil
	})
}

func lambdaBenchRequest() *http.Request {
	r := httptest.NewRequest("GET", "http://api.example.com/users/42?fields=name", nil)
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("X-Request-Id", "bench-1")
	return r
}

// TestLambdaCallAllocs guards the overhead of a typed call; see
// BenchmarkLambdaV2Call.
func TestLambdaCallAllocs(t *testing.T) {
	u := lambdaUpstream(t, lambdaBenchHandler(), proxy.LambdaConfig{})
	req := gateway.NewRequest(lambdaBenchRequest())
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := u.Serve(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 36 {
		t.Errorf("a call allocates %.0f times, want at most 36", allocs)
	}
}

// A Lambda handler written for API Gateway's HTTP API, served by gatekit.
func ExampleLambda() {
	hello := func(ctx context.Context, ev proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
		name := ev.PathParameters["name"]
		return proxy.APIGatewayV2HTTPResponse{
			StatusCode: http.StatusOK,
			Headers:    map[string]string{"content-type": "text/plain; charset=utf-8"},
			Cookies:    []string{"seen=1; Path=/"},
			Body:       fmt.Sprintf("hello, %s (%s)\n", name, ev.RouteKey),
		}, nil
	}
	fn, err := proxy.Lambda(proxy.LambdaV2Handler(hello), proxy.LambdaConfig{Name: "hello", Timeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Methods: []string{"GET"}, Path: "/hello/{name}", Handler: fn},
	}})
	if err != nil {
		log.Fatal(err)
	}
	gw := httptest.NewServer(router)
	defer gw.Close()

	resp, err := gw.Client().Get(gw.URL + "/hello/world")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Set-Cookie"))
	fmt.Print(string(body))
	// Output:
	// 200 OK seen=1; Path=/
	// hello, world (GET /hello/{name})
}
