package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

func TestSecurityHeaders(t *testing.T) {
	full := gateway.SecurityHeadersConfig{
		HSTS: 365 * 24 * time.Hour, HSTSIncludeSubDomains: true, HSTSPreload: true,
		FrameOptions: "deny", ContentTypeOptions: true, ReferrerPolicy: "no-referrer, strict-origin-when-cross-origin",
		RemoveHeaders: []string{"server", "X-Powered-By"},
	}
	const hsts = "max-age=31536000; includeSubDomains; preload"
	upstreamErr := &gateway.Error{Status: http.StatusNotFound, Detail: "gone", Header: http.Header{"Server": {"leaky/1.0"}}}
	tests := []struct {
		name      string
		cfg       gateway.SecurityHeadersConfig
		target    string
		trusted   bool
		xfp       string
		upstreamH http.Header
		fail      error
		want      map[string]string // "" means absent
		wantCode  int
	}{
		{
			name: "set and remove over tls", cfg: full, target: "https://gw.test/",
			upstreamH: http.Header{"Server": {"nginx/1.25"}, "X-Powered-By": {"PHP"}, "X-Keep": {"1"}},
			wantCode:  200,
			want: map[string]string{
				"Strict-Transport-Security": hsts, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer, strict-origin-when-cross-origin", "Server": "", "X-Powered-By": "", "X-Keep": "1",
			},
		},
		{
			name: "no hsts over plain http", cfg: full, target: "http://gw.test/", wantCode: 200,
			want: map[string]string{"Strict-Transport-Security": "", "X-Frame-Options": "DENY"},
		},
		{
			name: "hsts via trusted proxy proto", cfg: full, target: "http://gw.test/", trusted: true, xfp: "https", wantCode: 200,
			want: map[string]string{"Strict-Transport-Security": hsts},
		},
		{
			name: "no hsts when untrusted peer claims https", cfg: full, target: "http://gw.test/", xfp: "https", wantCode: 200,
			want: map[string]string{"Strict-Transport-Security": ""},
		},
		{
			name: "upstream value kept by default", cfg: full, target: "https://gw.test/",
			upstreamH: http.Header{"X-Frame-Options": {"SAMEORIGIN"}, "Referrer-Policy": {"origin"}},
			wantCode:  200,
			want:      map[string]string{"X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "origin"},
		},
		{
			name: "override replaces upstream value",
			cfg:  gateway.SecurityHeadersConfig{FrameOptions: "SAMEORIGIN", Override: true}, target: "https://gw.test/",
			upstreamH: http.Header{"X-Frame-Options": {"ALLOW-FROM https://x.test"}},
			wantCode:  200,
			want:      map[string]string{"X-Frame-Options": "SAMEORIGIN"},
		},
		{
			name: "error reply too", cfg: full, target: "https://gw.test/", fail: upstreamErr, wantCode: 404,
			want: map[string]string{
				"Strict-Transport-Security": hsts, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer, strict-origin-when-cross-origin",
				"Server": "", "Content-Type": gateway.ProblemContentType,
			},
		},
		{
			name: "internal error untouched", cfg: full, target: "https://gw.test/", fail: fmt.Errorf("boom"), wantCode: 500,
			want: map[string]string{"Strict-Transport-Security": "", "X-Content-Type-Options": "nosniff"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := gateway.SecurityHeaders(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int64
			up := countingUpstream(&calls, tc.upstreamH)
			if tc.fail != nil {
				up = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) { return nil, tc.fail })
			}
			p := gateway.NewPipeline(up, s)
			p.Options.Logger = slog.New(slog.DiscardHandler)
			r := httptest.NewRequest("GET", tc.target, nil)
			if tc.trusted {
				p.Options.TrustedProxies = []netip.Prefix{mustPrefix(t, "192.0.2.0/24")} // httptest's RemoteAddr
			}
			if tc.xfp != "" {
				r.Header.Set("X-Forwarded-Proto", tc.xfp)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantCode)
			}
			for k, want := range tc.want {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
	if len(upstreamErr.Header) != 1 || upstreamErr.Header.Get("Server") == "" {
		t.Errorf("the upstream's *Error was changed: %v", upstreamErr.Header)
	}
}

func TestSecurityHeadersConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  gateway.SecurityHeadersConfig
		want string
	}{
		{"nothing", gateway.SecurityHeadersConfig{}, "no header field"},
		{"negative hsts", gateway.SecurityHeadersConfig{HSTS: -time.Second}, "negative"},
		{"sub-second hsts", gateway.SecurityHeadersConfig{HSTS: time.Millisecond}, "less than a second"},
		{"flags without hsts", gateway.SecurityHeadersConfig{HSTSIncludeSubDomains: true}, "HSTS is 0"},
		{"preload short", gateway.SecurityHeadersConfig{HSTS: time.Hour, HSTSIncludeSubDomains: true, HSTSPreload: true}, "at least a year"},
		{"preload without subdomains", gateway.SecurityHeadersConfig{HSTS: 2 * 365 * 24 * time.Hour, HSTSPreload: true}, "HSTSIncludeSubDomains"},
		{"frame allow-from", gateway.SecurityHeadersConfig{FrameOptions: "ALLOW-FROM https://a.test"}, "FrameOptions"},
		{"referrer unknown", gateway.SecurityHeadersConfig{ReferrerPolicy: "origin, nope"}, `unknown policy "nope"`},
		{"remove bad name", gateway.SecurityHeadersConfig{RemoveHeaders: []string{"Server", "X Bad"}}, "RemoveHeaders[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.SecurityHeaders(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Security fields are added to the upstream's reply, and the field that
// names the upstream's software is removed.
func ExampleSecurityHeaders() {
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, http.Header{"Server": {"Apache/2.4.1"}}, []byte("hi")), nil
	})
	sec, err := gateway.SecurityHeaders(gateway.SecurityHeadersConfig{
		HSTS:               180 * 24 * time.Hour,
		FrameOptions:       "DENY",
		ContentTypeOptions: true,
		ReferrerPolicy:     "strict-origin-when-cross-origin",
		RemoveHeaders:      []string{"Server"},
	})
	if err != nil {
		panic(err)
	}
	p := gateway.NewPipeline(upstream, sec)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "https://api.example.com/", nil))
	for _, k := range []string{"Strict-Transport-Security", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Server"} {
		fmt.Printf("%s: %q\n", k, rec.Header().Get(k))
	}
	// Output:
	// Strict-Transport-Security: "max-age=15552000"
	// X-Frame-Options: "DENY"
	// X-Content-Type-Options: "nosniff"
	// Referrer-Policy: "strict-origin-when-cross-origin"
	// Server: ""
}
