package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// countingUpstream answers 200 with the given header fields and counts calls.
func countingUpstream(n *atomic.Int64, header http.Header) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		n.Add(1)
		return gateway.NewResponse(http.StatusOK, header.Clone(), []byte("ok")), nil
	})
}

func mustCORS(t *testing.T, c gateway.CORSConfig) gateway.Stage {
	t.Helper()
	s, err := gateway.CORS(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCORS(t *testing.T) {
	base := gateway.CORSConfig{
		AllowOrigins:     []string{"https://app.example.com", "https://*.example.org", "http://localhost:8080"},
		AllowMethods:     []string{"GET", "PUT"},
		AllowHeaders:     []string{"Authorization", "X-Trace"},
		ExposeHeaders:    []string{"X-Total"},
		AllowCredentials: true,
		MaxAge:           10 * time.Minute,
	}
	tests := []struct {
		name       string
		cfg        gateway.CORSConfig
		method     string
		header     map[string]string
		upstreamH  http.Header
		wantStatus int
		wantCalls  int64
		want       map[string]string // "" means absent
		wantVary   string
	}{
		{
			name: "preflight allowed", cfg: base, method: "OPTIONS",
			header:     map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization, x-trace"},
			wantStatus: 204, wantCalls: 0,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, PUT",
				"Access-Control-Allow-Headers":     "authorization, x-trace",
				"Access-Control-Max-Age":           "600",
			},
			wantVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		},
		{
			name: "preflight origin denied", cfg: base, method: "OPTIONS",
			header:     map[string]string{"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
			wantStatus: 403, wantCalls: 0,
			want:     map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""},
			wantVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		},
		{
			name: "preflight method denied", cfg: base, method: "OPTIONS",
			header:     map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
			wantStatus: 403, wantCalls: 0,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		},
		{
			name: "preflight header denied", cfg: base, method: "OPTIONS",
			header:     map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-trace,x-secret"},
			wantStatus: 403, wantCalls: 0,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		},
		{
			name: "preflight wildcard reflects", method: "OPTIONS",
			cfg:        gateway.CORSConfig{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, MaxAge: -1},
			header:     map[string]string{"Origin": "https://any.test", "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "x-a"},
			wantStatus: 204, wantCalls: 0,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "*",
				"Access-Control-Allow-Credentials": "",
				"Access-Control-Allow-Methods":     "PATCH",
				"Access-Control-Allow-Headers":     "x-a",
				"Access-Control-Max-Age":           "0",
			},
			wantVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		},
		{
			name: "pattern one label", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://a.example.org"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": "https://a.example.org", "Access-Control-Expose-Headers": "X-Total"},
			wantVary: "Origin",
		},
		{
			name: "pattern several labels", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://a.b-c.example.org"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": "https://a.b-c.example.org"},
			wantVary: "Origin",
		},
		{
			name: "pattern not apex", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://example.org"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Origin",
		},
		{
			name: "pattern other port", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://a.example.org:8443"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Origin",
		},
		{
			name: "pattern other scheme", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "http://a.example.org"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Origin",
		},
		{
			name: "pattern suffix trick", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://a.example.org.evil.test"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Origin",
		},
		{
			name: "exact with port", cfg: base, method: "POST",
			header:     map[string]string{"Origin": "http://localhost:8080"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": "http://localhost:8080", "Access-Control-Allow-Credentials": "true"},
			wantVary: "Origin",
		},
		{
			name: "disallowed origin strips upstream fields", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://evil.test"},
			upstreamH:  http.Header{"Access-Control-Allow-Origin": {"*"}, "Vary": {"Accept"}},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": ""},
			wantVary: "Accept, Origin",
		},
		{
			name: "vary merged not duplicated", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://app.example.com"},
			upstreamH:  http.Header{"Vary": {"Accept-Encoding, origin"}},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": "https://app.example.com"},
			wantVary: "Accept-Encoding, origin",
		},
		{
			name: "vary star kept", cfg: base, method: "GET",
			header:     map[string]string{"Origin": "https://app.example.com"},
			upstreamH:  http.Header{"Vary": {"*"}},
			wantStatus: 200, wantCalls: 1,
			wantVary: "*",
		},
		{
			name: "no origin untouched", cfg: base, method: "GET",
			upstreamH:  http.Header{"X-Up": {"1"}},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": "", "X-Up": "1"},
			wantVary: "Origin",
		},
		{
			name: "options without request method is not preflight", cfg: base, method: "OPTIONS",
			header:     map[string]string{"Origin": "https://app.example.com"},
			wantStatus: 200, wantCalls: 1,
			want:     map[string]string{"Access-Control-Allow-Origin": "https://app.example.com"},
			wantVary: "Origin",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			p := gateway.NewPipeline(countingUpstream(&calls, tc.upstreamH), mustCORS(t, tc.cfg))
			r := httptest.NewRequest(tc.method, "/", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("upstream calls = %d, want %d", got, tc.wantCalls)
			}
			for k, want := range tc.want {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if got := strings.Join(rec.Header().Values("Vary"), ", "); got != tc.wantVary {
				t.Errorf("Vary = %q, want %q", got, tc.wantVary)
			}
			if tc.wantStatus == 403 && rec.Header().Get("Content-Type") != gateway.ProblemContentType {
				t.Errorf("403 is not a problem: %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestCORSOnErrorReply(t *testing.T) {
	sentinel := &gateway.Error{Status: http.StatusUnauthorized, Detail: "no", Header: http.Header{"Www-Authenticate": {"Bearer"}}}
	failing := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, sentinel
	})
	p := gateway.NewPipeline(failing, mustCORS(t, gateway.CORSConfig{AllowOrigins: []string{"https://app.example.com"}, AllowCredentials: true}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://app.example.com")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	if rec.Code != 401 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		rec.Header().Get("Vary") != "Origin" || rec.Header().Get("Www-Authenticate") != "Bearer" {
		t.Errorf("got %d %v", rec.Code, rec.Header())
	}
	if len(sentinel.Header) != 1 {
		t.Errorf("the shared *Error was changed: %v", sentinel.Header)
	}
}

func TestCORSConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  gateway.CORSConfig
		want string
	}{
		{"no origins", gateway.CORSConfig{}, "AllowOrigins is empty"},
		{"star origin with credentials", gateway.CORSConfig{AllowOrigins: []string{"*"}, AllowCredentials: true}, `"*" cannot be used`},
		{"star headers with credentials", gateway.CORSConfig{AllowOrigins: []string{"https://a.test"}, AllowHeaders: []string{"*"}, AllowCredentials: true}, "AllowHeaders"},
		{"star methods with credentials", gateway.CORSConfig{AllowOrigins: []string{"https://a.test"}, AllowMethods: []string{"*"}, AllowCredentials: true}, "AllowMethods"},
		{"path", gateway.CORSConfig{AllowOrigins: []string{"https://a.test/"}}, "AllowOrigins[0]"},
		{"no scheme", gateway.CORSConfig{AllowOrigins: []string{"https://ok.test", "a.test"}}, "AllowOrigins[1]"},
		{"null", gateway.CORSConfig{AllowOrigins: []string{"null"}}, "opaque"},
		{"inner star", gateway.CORSConfig{AllowOrigins: []string{"https://a.*.test"}}, "leftmost"},
		{"star tld", gateway.CORSConfig{AllowOrigins: []string{"https://*.com"}}, "two labels"},
		{"bad method", gateway.CORSConfig{AllowOrigins: []string{"https://a.test"}, AllowMethods: []string{"GE T"}}, "AllowMethods[0]"},
		{"bad header", gateway.CORSConfig{AllowOrigins: []string{"https://a.test"}, AllowHeaders: []string{"X:Y"}}, "AllowHeaders[0]"},
		{"bad expose", gateway.CORSConfig{AllowOrigins: []string{"https://a.test"}, ExposeHeaders: []string{""}}, "ExposeHeaders[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.CORS(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCORSDefaultPortNormalised(t *testing.T) {
	var calls atomic.Int64
	p := gateway.NewPipeline(countingUpstream(&calls, nil), mustCORS(t, gateway.CORSConfig{AllowOrigins: []string{"HTTPS://App.Example.com:443"}}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://app.example.com")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
}

// A browser's preflight is answered by the gateway; the actual request
// reaches the upstream and its reply names the origin.
func ExampleCORS() {
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("data")), nil
	})
	cors, err := gateway.CORS(gateway.CORSConfig{
		AllowOrigins: []string{"https://*.example.com"},
		AllowMethods: []string{"GET", "PUT"},
		AllowHeaders: []string{"Authorization"},
		MaxAge:       time.Hour,
	})
	if err != nil {
		panic(err)
	}
	p := gateway.NewPipeline(upstream, cors)

	r := httptest.NewRequest("OPTIONS", "/items/1", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "PUT")
	r.Header.Set("Access-Control-Request-Headers", "authorization")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	fmt.Println(rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), rec.Header().Get("Access-Control-Allow-Methods"), rec.Header().Get("Access-Control-Max-Age"))

	r = httptest.NewRequest("GET", "/items/1", nil)
	r.Header.Set("Origin", "https://app.example.com")
	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	fmt.Println(rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), rec.Header().Get("Vary"), rec.Body.String())
	// Output:
	// 204 https://app.example.com GET, PUT 3600
	// 200 https://app.example.com Origin data
}
