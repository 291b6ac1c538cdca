package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatekit/gatekit/auth"
)

// ksOIDC serves a discovery document at issuerPath and a JWK Set at /jwks.
// doc builds the document from the server's URL.
func ksOIDC(t *testing.T, tls bool, issuerPath string, doc func(base string) any) (srv *httptest.Server, jwksFetches *atomic.Int64) {
	t.Helper()
	jwksFetches = new(atomic.Int64)
	set := ksSet(ksRSAJWK("k1", &ksRSA().PublicKey))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+issuerPath+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		body, err := json.Marshal(doc(srv.URL))
		if err != nil {
			t.Error(err)
		}
		if s, ok := doc(srv.URL).(string); ok {
			body = []byte(s)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		jwksFetches.Add(1)
		w.Write(set)
	})
	if tls {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	t.Cleanup(srv.Close)
	return srv, jwksFetches
}

func TestDiscoverJWKS(t *testing.T) {
	for _, tc := range []struct {
		name, path, suffix string
		tls                bool
	}{
		{name: "root issuer", path: ""},
		{name: "issuer with path", path: "/realms/gatekit"},
		{name: "issuer with trailing slash", path: "/tenant", suffix: "/"},
		{name: "https", path: "", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, fetches := ksOIDC(t, tc.tls, tc.path, func(base string) any {
				return map[string]any{
					"issuer":                 base + tc.path + tc.suffix,
					"jwks_uri":               base + "/jwks",
					"authorization_endpoint": base + "/authorize",
				}
			})
			issuer := srv.URL + tc.path + tc.suffix
			j, err := auth.DiscoverJWKS(t.Context(), issuer, auth.JWKSConfig{Client: srv.Client(), Logger: ksQuiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			keys, err := j.Keys(t.Context(), "k1")
			if err != nil || len(keys) != 1 {
				t.Fatalf("Keys = %v, %v", keys, err)
			}
			if n := fetches.Load(); n != 1 {
				t.Errorf("JWKS fetched %d times, want 1", n)
			}
		})
	}
}

func TestDiscoverJWKSErrors(t *testing.T) {
	tests := []struct {
		name    string
		tls     bool
		doc     func(base string) any
		wantErr string
	}{
		{
			name: "issuer mismatch",
			doc: func(base string) any {
				return map[string]any{"issuer": "https://evil.example", "jwks_uri": base + "/jwks"}
			},
			wantErr: `"issuer": "https://evil.example" is not the configured issuer`,
		},
		{
			name:    "issuer with extra slash",
			doc:     func(base string) any { return map[string]any{"issuer": base + "/", "jwks_uri": base + "/jwks"} },
			wantErr: "is not the configured issuer",
		},
		{
			name:    "issuer missing",
			doc:     func(base string) any { return map[string]any{"jwks_uri": base + "/jwks"} },
			wantErr: `"issuer": missing`,
		},
		{
			name:    "jwks_uri missing",
			doc:     func(base string) any { return map[string]any{"issuer": base} },
			wantErr: `"jwks_uri": missing`,
		},
		{
			name:    "jwks_uri not a string",
			doc:     func(base string) any { return map[string]any{"issuer": base, "jwks_uri": 7} },
			wantErr: `"jwks_uri": not a string`,
		},
		{
			name:    "jwks_uri relative",
			doc:     func(base string) any { return map[string]any{"issuer": base, "jwks_uri": "/jwks"} },
			wantErr: `"jwks_uri": "/jwks": want an absolute https URL`,
		},
		{
			name:    "jwks_uri http behind https issuer",
			tls:     true,
			doc:     func(base string) any { return map[string]any{"issuer": base, "jwks_uri": "http://idp.example/jwks"} },
			wantErr: `"jwks_uri": "http://idp.example/jwks": want an absolute https URL`,
		},
		{
			name:    "not JSON",
			doc:     func(base string) any { return "<html>" },
			wantErr: "invalid JSON",
		},
		{
			name:    "JSON array",
			doc:     func(base string) any { return []string{base} },
			wantErr: "not a JSON object",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, fetches := ksOIDC(t, tc.tls, "", tc.doc)
			j, err := auth.DiscoverJWKS(t.Context(), srv.URL, auth.JWKSConfig{Client: srv.Client(), Logger: ksQuiet()})
			if err == nil {
				j.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if n := fetches.Load(); n != 0 {
				t.Errorf("the JWKS was fetched %d times", n)
			}
		})
	}
}

func TestDiscoverJWKSConfigErrors(t *testing.T) {
	srv, _ := ksOIDC(t, false, "/realm", func(base string) any { return map[string]any{} })
	tests := []struct {
		name, issuer string
		cfg          auth.JWKSConfig
		wantErr      string
	}{
		{"URL set", srv.URL, auth.JWKSConfig{URL: srv.URL + "/jwks"}, "JWKSConfig.URL must be empty"},
		{"issuer not absolute", "idp.example", auth.JWKSConfig{}, "want an https URL"},
		{"issuer with query", srv.URL + "?tenant=1", auth.JWKSConfig{}, "want an https URL"},
		{"issuer with fragment", srv.URL + "#x", auth.JWKSConfig{}, "want an https URL"},
		{"negative interval", srv.URL, auth.JWKSConfig{MinRefetchInterval: -1}, "MinRefetchInterval"},
		{"no document", srv.URL + "/other", auth.JWKSConfig{}, "status 404"},
		{"too large", srv.URL + "/realm", auth.JWKSConfig{MaxBytes: 1}, "larger than 1 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := auth.DiscoverJWKS(t.Context(), tc.issuer, tc.cfg)
			if err == nil {
				j.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		if _, err := auth.DiscoverJWKS(t.Context(), down.URL, auth.JWKSConfig{}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := auth.DiscoverJWKS(ctx, srv.URL+"/realm", auth.JWKSConfig{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
}
