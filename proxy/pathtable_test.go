package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// pathTableGateway starts one backend, shared by every route as backends
// often are, and a gateway in front of it with three prefix routes:
// /public (no auth, path as is), /api (no auth, StripPrefix "/api" onto
// the target base path "/v1") and /admin (behind an authenticator that
// refuses everyone). It returns the gateway's address and a function that
// returns, and clears, the request-targets the backend received.
func pathTableGateway(t *testing.T, opts gateway.Options) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	backend := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.RequestURI)
		mu.Unlock()
	})
	refuse := gateway.AuthenticatorFunc(func(context.Context, *gateway.Request) (*gateway.Principal, error) {
		return nil, gateway.ErrNotResponsible
	})
	gw := newGateway(t, opts,
		gateway.Route{Name: "public", Path: "/public/{rest...}", Handler: newProxy(t, proxy.HTTPConfig{Targets: []string{backend.URL}})},
		gateway.Route{Name: "api", Path: "/api/{rest...}", Handler: newProxy(t, proxy.HTTPConfig{Targets: []string{backend.URL + "/v1"}, StripPrefix: "/api"})},
		gateway.Route{Name: "admin", Path: "/admin/{rest...}", Handler: gateway.Chain(newProxy(t, proxy.HTTPConfig{Targets: []string{backend.URL}}), gateway.Authenticate(refuse))},
	)
	return gw.Listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

// rawStatus sends "GET target HTTP/1.1" on a new connection, so that no
// client cleans the target first, and returns the reply's status.
func rawStatus(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// underAdmin reports whether a request-target, decoded and cleaned the way
// a backend would, names the guarded /admin tree.
func underAdmin(t *testing.T, target string) bool {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: b\r\n\r\n")))
	if err != nil {
		t.Fatalf("the backend was sent %q, which does not parse: %v", target, err)
	}
	p := path.Clean(strings.ReplaceAll(req.URL.Path, `\`, "/"))
	return p == "/admin" || strings.HasPrefix(p, "/admin/") || p == "/v1/admin" || strings.HasPrefix(p, "/v1/admin/")
}

type upstreamPathCase struct {
	name   string
	target string // sent verbatim in the request line
	status int
	want   string // for 200, the request-target the backend receives
}

// TestUpstreamPathTable checks, end to end through proxy.HTTP, that every
// path the gateway lets through reaches the backend as exactly the path
// it was routed on (less StripPrefix, plus the target's base path), and
// that no trick gets a request onto /admin without authentication.
func TestUpstreamPathTable(t *testing.T) {
	long := strings.Repeat("/seg", 2000)
	tests := []upstreamPathCase{
		{name: "public", target: "/public/a", status: 200, want: "/public/a"},
		{name: "public root", target: "/public", status: 200, want: "/public"},
		{name: "admin guarded", target: "/admin/a", status: 401},
		{name: "no route", target: "/other", status: 404},

		{name: "dotdot", target: "/public/../admin/a", status: 401},
		{name: "dotdot lower encoded", target: "/public/%2e%2e/admin/a", status: 401},
		{name: "dotdot upper encoded", target: "/public/%2E%2E/admin/a", status: 401},
		{name: "dotdot half encoded", target: "/public/.%2e/admin/a", status: 401},
		{name: "dot", target: "/./admin/a", status: 401},
		{name: "dotdot within public", target: "/public/a/../b", status: 200, want: "/public/b"},
		{name: "dotdot trailing", target: "/public/a/..", status: 200, want: "/public/"},
		{name: "double slash", target: "//admin/a", status: 401},
		{name: "triple slash", target: "///admin", status: 401},
		{name: "empty segments", target: "/public//a///b", status: 200, want: "/public/a/b"},
		{name: "trailing slash", target: "/public/a/", status: 200, want: "/public/a/"},

		{name: "dotdot semicolon", target: "/public/..;/admin/a", status: 400},
		{name: "encoded dotdot semicolon", target: "/public/%2e%2e;/admin/a", status: 400},
		{name: "dotdot encoded semicolon", target: "/public/..%3B/admin/a", status: 400},
		{name: "semicolon segment", target: "/admin;x/a", status: 404},
		{name: "semicolon then dotdot", target: "/public;x/../admin/a", status: 401},
		{name: "semicolon in public", target: "/public/a;b", status: 200, want: "/public/a;b"},

		{name: "encoded slash", target: "/public/..%2fadmin/a", status: 400},
		{name: "encoded slash upper", target: "/public/..%2Fadmin/a", status: 400},
		{name: "encoded backslash", target: "/public/..%5cadmin/a", status: 400},
		{name: "backslash", target: `/public/..\admin/a`, status: 400},
		{name: "encoded NUL", target: "/public/a%00/../../admin", status: 400},
		{name: "encoded LF", target: "/public/a%0a", status: 400},
		{name: "fragment", target: "/admin#/../public/a", status: 400},
		{name: "fragment in public", target: "/public/a#frag", status: 400},

		{name: "double encoded dotdot", target: "/public/%252e%252e/admin/a", status: 200, want: "/public/%252e%252e/admin/a"},
		{name: "double encoded slash", target: "/public/..%252fadmin", status: 200, want: "/public/..%252fadmin"},
		{name: "overlong 2-byte dots", target: "/public/%c0%ae%c0%ae/admin/a", status: 400},
		{name: "overlong 3-byte dots", target: "/public/%e0%80%ae%e0%80%ae/admin", status: 400},
		{name: "overlong slash", target: "/public/..%c0%afadmin", status: 400},
		{name: "unicode", target: "/public/caf%c3%a9", status: 200, want: "/public/caf%C3%A9"},
		{name: "unicode raw", target: "/public/caf\xc3\xa9", status: 200, want: "/public/caf%C3%A9"},
		{name: "needless escape", target: "/public/%61b", status: 200, want: "/public/ab"},
		{name: "encoded admin", target: "/%61dmin/a", status: 401},
		{name: "encoded hash", target: "/public/a%23b", status: 200, want: "/public/a%23b"},

		{name: "query dotdot", target: "/public/a?next=../admin&p=%2F", status: 200, want: "/public/a?next=../admin&p=%2F"},
		{name: "query after cleaning", target: "/public/../public/a?x=%2e%2e", status: 200, want: "/public/a?x=%2e%2e"},
		{name: "absolute form dotdot", target: "http://gw.test/public/../admin/a", status: 401},
		{name: "very long", target: "/public" + long + "/../../x", status: 200, want: "/public" + long[:len(long)-len("/seg/seg")] + "/x"},

		// StripPrefix "/api" onto base path "/v1": the prefix is stripped
		// from the normalised path, never from the raw one.
		{name: "strip", target: "/api/users", status: 200, want: "/v1/users"},
		{name: "strip root", target: "/api", status: 200, want: "/v1"},
		{name: "strip dotdot", target: "/api/../admin/a", status: 401},
		{name: "strip encoded dotdot", target: "/api/%2e%2e/admin", status: 401},
		{name: "strip dotdot within", target: "/api/a/%2e%2e/b", status: 200, want: "/v1/b"},
		{name: "strip dotdot to root", target: "/api/a/../..", status: 404},
		{name: "strip double slash", target: "//api//users", status: 200, want: "/v1/users"},
		{name: "strip double encoded", target: "/api/%252e%252e/admin", status: 200, want: "/v1/%252e%252e/admin"},
		{name: "strip not on boundary", target: "/apix/users", status: 404},
		{name: "strip semicolon", target: "/api/..;/admin", status: 400},
	}
	addr, backendSaw := pathTableGateway(t, gateway.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := rawStatus(t, addr, tc.target)
			got := backendSaw()
			for _, u := range got {
				if underAdmin(t, u) {
					t.Fatalf("BYPASS: GET %q reached the backend as %q without authentication", tc.target, u)
				}
			}
			if status != tc.status {
				t.Fatalf("GET %q: status %d, want %d (backend saw %q)", tc.target, status, tc.status, got)
			}
			if tc.status != http.StatusOK {
				if len(got) != 0 {
					t.Fatalf("GET %q: status %d, yet the backend saw %q", tc.target, status, got)
				}
				return
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("GET %q: backend saw %q, want [%q]", tc.target, got, tc.want)
			}
		})
	}
}
