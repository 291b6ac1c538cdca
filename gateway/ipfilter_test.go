package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

func TestIPFilter(t *testing.T) {
	tests := []struct {
		name    string
		cfg     gateway.IPFilterConfig
		trusted []string
		remote  string
		xff     string
		want    int
	}{
		{"allow v4 in cidr", gateway.IPFilterConfig{Allow: []string{"10.0.0.0/8"}}, nil, "10.1.2.3:5000", "", 200},
		{"allow v4 outside cidr", gateway.IPFilterConfig{Allow: []string{"10.0.0.0/8"}}, nil, "11.1.2.3:5000", "", 403},
		{"allow single v4", gateway.IPFilterConfig{Allow: []string{"192.0.2.7"}}, nil, "192.0.2.7:1", "", 200},
		{"allow single v4 other", gateway.IPFilterConfig{Allow: []string{"192.0.2.7"}}, nil, "192.0.2.8:1", "", 403},
		{"deny wins over allow", gateway.IPFilterConfig{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.9.0.0/16"}}, nil, "10.9.1.1:1", "", 403},
		{"deny only other passes", gateway.IPFilterConfig{Deny: []string{"10.9.0.0/16"}}, nil, "10.8.1.1:1", "", 200},
		{"deny only match", gateway.IPFilterConfig{Deny: []string{"10.9.0.0/16"}}, nil, "10.9.1.1:1", "", 403},
		{"allow v6 cidr", gateway.IPFilterConfig{Allow: []string{"2001:db8::/32"}}, nil, "[2001:db8:1::5]:443", "", 200},
		{"allow v6 outside", gateway.IPFilterConfig{Allow: []string{"2001:db8::/32"}}, nil, "[2001:db9::5]:443", "", 403},
		{"deny v6 single", gateway.IPFilterConfig{Deny: []string{"2001:db8::1"}}, nil, "[2001:db8::1]:443", "", 403},
		{"v4 list does not cover v6", gateway.IPFilterConfig{Allow: []string{"0.0.0.0/0"}}, nil, "[2001:db8::1]:1", "", 403},
		{"mapped client matches v4 entry", gateway.IPFilterConfig{Allow: []string{"192.0.2.0/24"}}, nil, "[::ffff:192.0.2.9]:1", "", 200},
		{"mapped entry matches v4 client", gateway.IPFilterConfig{Deny: []string{"::ffff:192.0.2.0/120"}}, nil, "192.0.2.9:1", "", 403},
		{"mapped single entry", gateway.IPFilterConfig{Allow: []string{"::ffff:192.0.2.9"}}, nil, "192.0.2.9:1", "", 200},
		{"host bits masked", gateway.IPFilterConfig{Allow: []string{"10.1.2.3/8"}}, nil, "10.200.0.1:1", "", 200},
		{"mixed lengths", gateway.IPFilterConfig{Allow: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.1.1", "2001:db8::/48", "fd00::1"}}, nil, "172.20.0.1:1", "", 200},
		{"trusted proxy xff allowed", gateway.IPFilterConfig{Allow: []string{"203.0.113.0/24"}}, []string{"10.0.0.0/8"}, "10.0.0.1:1", "203.0.113.5", 200},
		{"trusted proxy xff denied", gateway.IPFilterConfig{Deny: []string{"198.51.100.0/24"}}, []string{"10.0.0.0/8"}, "10.0.0.1:1", "198.51.100.7, 10.0.0.2", 403},
		{"untrusted peer xff ignored", gateway.IPFilterConfig{Allow: []string{"203.0.113.0/24"}}, []string{"10.0.0.0/8"}, "192.0.2.1:1", "203.0.113.5", 403},
		{"spoofed left xff ignored", gateway.IPFilterConfig{Allow: []string{"203.0.113.0/24"}}, []string{"10.0.0.0/8"}, "10.0.0.1:1", "203.0.113.5, 198.51.100.7", 403},
		{"unknown client refused", gateway.IPFilterConfig{Deny: []string{"10.0.0.0/8"}}, nil, "not-an-address", "", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := gateway.IPFilter(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int64
			p := gateway.NewPipeline(countingUpstream(&calls, nil), f)
			for _, s := range tc.trusted {
				p.Options.TrustedProxies = append(p.Options.TrustedProxies, mustPrefix(t, s))
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d", rec.Code, tc.want)
			}
			if want := int64(0); tc.want == 200 {
				want = 1
				if calls.Load() != want {
					t.Errorf("upstream calls = %d", calls.Load())
				}
			} else {
				if calls.Load() != want {
					t.Errorf("upstream reached on refusal")
				}
				body := rec.Body.String()
				for _, leak := range append(append(tc.cfg.Allow, tc.cfg.Deny...), strings.Split(tc.remote, ":")[0]) {
					if strings.Contains(body, leak) {
						t.Errorf("refusal reveals %q: %s", leak, body)
					}
				}
			}
		})
	}
}

func TestIPFilterConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  gateway.IPFilterConfig
		want string
	}{
		{"empty", gateway.IPFilterConfig{}, "both Allow and Deny are empty"},
		{"bad address", gateway.IPFilterConfig{Allow: []string{"10.0.0.1", "10.0.0.256"}}, `Allow[1] "10.0.0.256"`},
		{"bad prefix", gateway.IPFilterConfig{Deny: []string{"10.0.0.0/33"}}, `Deny[0] "10.0.0.0/33"`},
		{"hostname", gateway.IPFilterConfig{Allow: []string{"example.com"}}, `Allow[0] "example.com"`},
		{"zone", gateway.IPFilterConfig{Allow: []string{"fe80::1%eth0"}}, "zone"},
		{"empty entry", gateway.IPFilterConfig{Deny: []string{""}}, `Deny[0] ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.IPFilter(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestIPFilterLargeList(t *testing.T) {
	var allow []string
	for i := range 4096 {
		allow = append(allow, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
	}
	f, err := gateway.IPFilter(gateway.IPFilterConfig{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	h := gateway.Chain(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, nil
	}), f)
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{"10.15.255.9", true}, {"10.16.0.1", false}, {"10.0.0.1", true}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(tc.addr), 1).String()
		_, err := h.Serve(context.Background(), gateway.NewRequest(r))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

// Only the office network may use the route, except one machine in it;
// behind a trusted load balancer the forwarded address counts.
func ExampleIPFilter() {
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("welcome")), nil
	})
	filter, err := gateway.IPFilter(gateway.IPFilterConfig{
		Allow: []string{"203.0.113.0/24", "2001:db8::/32"},
		Deny:  []string{"203.0.113.66"},
	})
	if err != nil {
		panic(err)
	}
	p := gateway.NewPipeline(upstream, filter)
	p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

	for _, client := range []string{"203.0.113.5", "203.0.113.66", "198.51.100.1", "2001:db8::7"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:4711" // the load balancer
		r.Header.Set("X-Forwarded-For", client)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		fmt.Println(client, rec.Code)
	}
	// Output:
	// 203.0.113.5 200
	// 203.0.113.66 403
	// 198.51.100.1 403
	// 2001:db8::7 200
}
