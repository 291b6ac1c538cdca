package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
)

func TestForwardCannotBeSpoofed(t *testing.T) {
	fwd, err := auth.Forward(auth.ForwardConfig{
		Headers: map[string]string{
			"X-User-Id": "sub",
			"x-tenant":  "tenant.id",
			"X-Roles":   "realm_access.roles",
			"X-Scopes":  "scope",
		},
		StripAuthorization: true,
		StripHeaders:       []string{"X-Api-Key"},
		StripQuery:         []string{"access_token"},
		StripCookies:       []string{"session"},
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := &gateway.Principal{
		Subject:    "alice",
		Scopes:     []string{"a", "b"},
		ClaimsJSON: []byte(`{"sub":"alice","realm_access":{"roles":["admin","user"]}}`),
	}
	evil := &gateway.Principal{Subject: "mallory\r\nX-Injected: 1"}
	spoof := http.Header{
		"X-User-Id":     {"admin"},
		"X-Tenant":      {"other-tenant"},
		"X-Roles":       {"superuser"},
		"Authorization": {"Bearer secret-token"},
		"X-Api-Key":     {"k-123"},
		"X-Other":       {"kept"},
		"Cookie":        {"theme=dark; session=tok123; lang=en"},
		"X_user_id":     {"admin"},
	}
	tests := []struct {
		name      string
		principal *gateway.Principal
		want      http.Header // nil value: header must be absent
	}{
		{"authenticated", alice, http.Header{
			"X-User-Id": {"alice"}, "X-Tenant": nil, "X-Roles": {"admin, user"}, "X-Scopes": {"a b"},
			"Authorization": nil, "X-Api-Key": nil, "X-Other": {"kept"},
			"Cookie": {"theme=dark; lang=en"}, "X_user_id": nil,
		}},
		{"anonymous", nil, http.Header{
			"X-User-Id": nil, "X-Tenant": nil, "X-Roles": nil, "Authorization": nil, "X-Other": {"kept"},
		}},
		{"control characters not forwarded", evil, http.Header{
			"X-User-Id": nil, "X-Injected": nil,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			var gotQuery string
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				got = req.HTTP.Header.Clone()
				gotQuery = req.HTTP.URL.RawQuery
				return nil, nil
			})
			authn := gateway.Authenticate(fixedPrincipal(tc.principal), auth.Anonymous())
			p := gateway.NewPipeline(up, authn, gateway.TransformRequest(fwd))
			p.Options.AllowUnderscoreHeaders = true // the Forwarder must still drop X_User_Id
			r := httptest.NewRequest("GET", "/?z=1&sig=a%2Fb&x=1;y=2&access_token=secret&a=2", nil)
			for k, v := range spoof {
				r.Header[k] = v
			}
			p.ServeHTTP(httptest.NewRecorder(), r)
			if want := "z=1&sig=a%2Fb&x=1;y=2&a=2"; gotQuery != want {
				t.Errorf("upstream query = %q, want %q", gotQuery, want)
			}
			for k, want := range tc.want {
				if strings.Join(got[k], "|") != strings.Join(want, "|") || (want == nil && got[k] != nil) {
					t.Errorf("upstream %s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestForwardConfigErrors(t *testing.T) {
	for _, cfg := range []auth.ForwardConfig{
		{Headers: map[string]string{"X Bad": "sub"}},
		{Headers: map[string]string{"X-Ok": ""}},
		{Headers: map[string]string{"X-User": "sub", "x-user": "email"}},
		{Headers: map[string]string{"Host": "sub"}},
		{StripHeaders: []string{"bad:name"}},
		{StripQuery: []string{""}},
		{StripCookies: []string{"bad cookie"}},
	} {
		if _, err := auth.Forward(cfg); err == nil {
			t.Errorf("Forward(%+v) accepted a bad configuration", cfg)
		}
	}
}

func TestAllAndAnonymous(t *testing.T) {
	alice := fixedPrincipal(&gateway.Principal{Subject: "alice"})
	device := fixedPrincipal(&gateway.Principal{Subject: "device-7"})
	absent := fixedPrincipal(nil)
	tests := []struct {
		name    string
		authn   []gateway.Authenticator
		want    int
		subject string
	}{
		{"all present", []gateway.Authenticator{auth.All(alice, device)}, 200, "alice"},
		{"one missing", []gateway.Authenticator{auth.All(alice, absent)}, 401, ""},
		{"first success wins", []gateway.Authenticator{absent, device, alice}, 200, "device-7"},
		{"anonymous explicit", []gateway.Authenticator{absent, auth.Anonymous()}, 200, ""},
		{"no anonymous, no credentials", []gateway.Authenticator{absent}, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *gateway.Principal
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				got = req.Principal
				return nil, nil
			})
			rec := httptest.NewRecorder()
			gateway.NewPipeline(up, gateway.Authenticate(tc.authn...)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			want := tc.want
			if want == 200 {
				want = 204 // the upstream answers nil
			}
			if rec.Code != want {
				t.Fatalf("status = %d, want %d", rec.Code, want)
			}
			if tc.want == 200 && got.Subject != tc.subject {
				t.Errorf("subject = %q, want %q", got.Subject, tc.subject)
			}
		})
	}
}
