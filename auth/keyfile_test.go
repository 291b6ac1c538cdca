package auth_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
)

// kfWrite replaces the file at path with content the way careful tools do,
// by renaming a finished file over it, so a poller never sees half of it.
func kfWrite(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func kfHex(key string) string {
	h := auth.HashAPIKey(key)
	return hex.EncodeToString(h[:])
}

// kfCheck authenticates a request carrying key against store and returns
// the principal, or the refusal's status.
func kfCheck(t *testing.T, store auth.APIKeyStore, key string, now time.Time) (*gateway.Principal, int) {
	t.Helper()
	a, err := auth.APIKeys(auth.APIKeyConfig{Store: store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-API-Key", key)
	p, err := a.Authenticate(context.Background(), gateway.NewRequest(r))
	if err != nil {
		e, ok := errors.AsType[*gateway.Error](err)
		if !ok {
			t.Fatalf("Authenticate: %v", err)
		}
		return nil, e.Status
	}
	return p, 200
}

func kfQuiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestOpenKeyFile(t *testing.T) {
	yamlFile := `
# keys for the tests
- id: billing
  sha256: ` + kfHex("billing-key") + `
  owner: billing-team
  plan: gold
  scopes: [invoices:read, invoices:write]
  metadata:
    team: payments
    cost_center: 42
- id: dev
  key: dev-key
  expires_at: 2030-01-01
- id: old
  key: old-key
  revoked: true
- id: timed
  key: timed-key
  expires_at: "2030-06-01T12:00:00+02:00"
`
	jsonFile := `[
  {"id": "billing", "sha256": "` + strings.ToUpper(kfHex("billing-key")) + `", "owner": "billing-team", "plan": "gold",
   "scopes": ["invoices:read", "invoices:write"], "metadata": {"team": "payments", "cost_center": "42"}},
  {"id": "dev", "key": "dev-key", "expires_at": "2030-01-01"},
  {"id": "old", "key": "old-key", "revoked": true},
  {"id": "timed", "key": "timed-key", "expires_at": "2030-06-01T10:00:00Z"}
]`
	early := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ name, file, content string }{
		{"YAML", "keys.yaml", yamlFile},
		{"JSON", "keys.json", jsonFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			kfWrite(t, path, tc.content)
			s, err := auth.OpenKeyFile(path, auth.KeyFileConfig{ReloadInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })

			p, status := kfCheck(t, s, "billing-key", early)
			if status != 200 {
				t.Fatalf("billing key: %d", status)
			}
			wantClaims := map[string]any{
				"key_id": "billing", "sub": "billing-team", "owner": "billing-team", "plan": "gold",
				"scope":    "invoices:read invoices:write",
				"metadata": map[string]any{"team": "payments", "cost_center": "42"},
			}
			if p.Subject != "billing-team" || !reflect.DeepEqual(p.Claims, wantClaims) || !p.HasScope("invoices:write") {
				t.Errorf("principal %q %v %v", p.Subject, p.Scopes, p.Claims)
			}

			k, err := s.LookupAPIKey(context.Background(), auth.HashAPIKey("timed-key"))
			if err != nil || !k.ExpiresAt.Equal(time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("timed key: %v, expires %v", err, k.ExpiresAt)
			}
			for _, c := range []struct {
				key  string
				now  time.Time
				want int
			}{
				{"dev-key", early, 200},
				{"dev-key", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 401},
				{"old-key", early, 401},
				{"nope", early, 401},
			} {
				if _, status := kfCheck(t, s, c.key, c.now); status != c.want {
					t.Errorf("%s at %v: %d, want %d", c.key, c.now, status, c.want)
				}
			}
		})
	}
}

func TestOpenKeyFileErrors(t *testing.T) {
	good := kfHex("k")
	tests := []struct {
		name, content string
		wantErr       string // besides the file's name
	}{
		{"empty", "\n  \n", "file is empty"},
		{"not a list", "id: a\nkey: k\n", "line 1: want a list of keys"},
		{"syntax", "- id: a\n  key: [k\n", "yaml:"},
		{"entry not a map", "- just-a-key\n", "key #0, line 1: want a map of fields"},
		{"no id", "- key: k\n", `key #0, line 1: field "id": required`},
		{"id of wrong type", "- id: [a]\n  key: k\n", `key #0, line 1: field "id":`},
		{"no key", "- id: a\n", `key #0 (id "a"), line 1: field "sha256" or "key": required`},
		{"key and hash", "- id: a\n  key: k\n  sha256: " + good + "\n", `key #0 (id "a"), line 3: fields "key" and "sha256": give one, not both`},
		{"empty key", "- id: a\n  key: ''\n", `field "key": empty`},
		{"short hash", "- id: a\n  sha256: abcd\n", `key #0 (id "a"), line 2: field "sha256": want 64 hexadecimal digits`},
		{"hash not hex", "- id: a\n  sha256: " + strings.Repeat("g", 64) + "\n", `field "sha256": want 64 hexadecimal digits`},
		{"unknown field", "- id: a\n  key: k\n- id: b\n  sha265: " + good + "\n", `key #1 (id "b"), line 4: field "sha265": unknown`},
		{"field twice", "- id: a\n  key: k\n  key: l\n", `field "key": given twice`},
		{"scopes not a list", "- id: a\n  key: k\n  scopes: read\n", `key #0 (id "a"), line 3: field "scopes": cannot unmarshal !!str`},
		{"scope with space", "- id: a\n  key: k\n  scopes: ['read write']\n", `field "scopes": scope #0`},
		{"revoked not a bool", "- id: b\n  key: l\n- id: a\n  key: k\n  revoked: maybe\n", `key #1 (id "a"), line 5: field "revoked": cannot unmarshal`},
		{"metadata not a map", "- id: a\n  key: k\n  metadata: [x]\n", `line 3: field "metadata": cannot unmarshal !!seq`},
		{"bad expiry", "- id: a\n  key: k\n  expires_at: next tuesday\n", `field "expires_at": "next tuesday" is not an RFC 3339 time`},
		{"duplicate id", "- id: a\n  key: k\n- id: b\n  key: l\n- id: a\n  key: m\n", `key #2 (id "a"): ID "a" is already used by key #0`},
		{"duplicate key", "- id: a\n  key: k\n- id: b\n  sha256: " + good + "\n", `key #1 (id "b"): same key as key #0 (id "a")`},
		{"JSON syntax", `[{"id": "a", "key": "k"}`, "yaml:"},
		{"JSON of wrong type", `[{"id": "a", "key": "k", "revoked": [true]}]`, `key #0 (id "a"), line 1: field "revoked"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.yaml")
			kfWrite(t, path, tc.content)
			s, err := auth.OpenKeyFile(path, auth.KeyFileConfig{ReloadInterval: -1})
			if err == nil {
				s.Close()
				t.Fatal("OpenKeyFile: no error")
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, tc.wantErr) {
				t.Fatalf("error %q, want it to name %s and say %q", msg, path, tc.wantErr)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := auth.OpenKeyFile(filepath.Join(t.TempDir(), "none.yaml"), auth.KeyFileConfig{})
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("error %v, want one wrapping os.ErrNotExist", err)
		}
	})
	t.Run("no key in the error", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys.yaml")
		kfWrite(t, path, "- id: a\n  key: s3cret-value\n  revoked: maybe\n")
		_, err := auth.OpenKeyFile(path, auth.KeyFileConfig{ReloadInterval: -1})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error %v: want one that does not hold the key", err)
		}
	})
}

func TestKeyFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	kfWrite(t, path, "- id: a\n  key: key-a\n")
	var reloads []error
	s, err := auth.OpenKeyFile(path, auth.KeyFileConfig{ReloadInterval: -1, OnReload: func(err error) { reloads = append(reloads, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	steps := []struct {
		name      string
		content   string // "" leaves the file as it is
		wantErr   bool
		wantCalls int // OnReload calls so far
		want      map[string]int
	}{
		{name: "loaded", wantCalls: 0, want: map[string]int{"key-a": 200, "key-b": 401}},
		{name: "unchanged", wantCalls: 0, want: map[string]int{"key-a": 200}},
		{name: "key added", content: "- id: a\n  key: key-a\n- id: b\n  key: key-b\n", wantCalls: 1, want: map[string]int{"key-a": 200, "key-b": 200}},
		{name: "key revoked", content: "- id: a\n  key: key-a\n  revoked: true\n- id: b\n  key: key-b\n", wantCalls: 2, want: map[string]int{"key-a": 401, "key-b": 200}},
		{name: "broken file keeps the last good keys", content: "- id: a\n  key: key-a\n- id: b\n  kye: key-b\n", wantErr: true, wantCalls: 3, want: map[string]int{"key-a": 401, "key-b": 200}},
		{name: "still broken", wantErr: true, wantCalls: 3, want: map[string]int{"key-b": 200}},
		{name: "truncated file keeps the last good keys", content: " ", wantErr: true, wantCalls: 4, want: map[string]int{"key-b": 200}},
		{name: "key removed", content: "[]", wantCalls: 5, want: map[string]int{"key-a": 401, "key-b": 401}},
	}
	for _, st := range steps {
		if st.content != "" {
			kfWrite(t, path, st.content)
		}
		err := s.Reload()
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: Reload() = %v, want error %v", st.name, err, st.wantErr)
		}
		if len(reloads) != st.wantCalls {
			t.Fatalf("%s: OnReload called %d times, want %d", st.name, len(reloads), st.wantCalls)
		}
		for key, want := range st.want {
			if _, got := kfCheck(t, s, key, now); got != want {
				t.Errorf("%s: %s answered %d, want %d", st.name, key, got, want)
			}
		}
	}

	// A file that disappears keeps the keys too.
	kfWrite(t, path, "- id: c\n  key: key-c\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := s.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Reload of a removed file: %v", err)
	}
	if _, got := kfCheck(t, s, "key-c", now); got != 200 {
		t.Fatalf("key-c after the file went: %d", got)
	}
}

// kfLog is a concurrency-safe log buffer.
type kfLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *kfLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *kfLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestKeyFilePoller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	kfWrite(t, path, "- id: a\n  key: key-a\n")
	var logs kfLog
	reloaded := make(chan error, 16)
	s, err := auth.OpenKeyFile(path, auth.KeyFileConfig{
		ReloadInterval: 5 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		OnReload:       func(err error) { reloaded <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	wait := func(what string) error {
		t.Helper()
		select {
		case err := <-reloaded:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("the poller did not notice %s", what)
			return nil
		}
	}

	kfWrite(t, path, "- id: a\n  key: key-a\n- id: b\n  key: key-b\n")
	if err := wait("a new key"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, got := kfCheck(t, s, "key-b", now); got != 200 {
		t.Fatalf("key-b after the reload: %d", got)
	}

	kfWrite(t, path, "- id: a\n  key: key-a\n- id: b\n  key: [key-b]\n")
	if err := wait("a broken file"); err == nil {
		t.Fatal("broken file: OnReload(nil)")
	}
	if _, got := kfCheck(t, s, "key-b", now); got != 200 {
		t.Fatalf("key-b after a broken file: %d", got)
	}

	kfWrite(t, path, "- id: a\n  key: key-a\n")
	if err := wait("a fixed file"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, got := kfCheck(t, s, "key-b", now); got != 401 {
		t.Fatalf("key-b after it was removed: %d", got)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close() // twice is fine
	out := logs.String()
	if strings.Count(out, "not loaded") != 1 || strings.Count(out, "reloaded") != 2 || !strings.Contains(out, path) {
		t.Errorf("log:\n%s\nwant one failure and two reloads, naming the file", out)
	}
	if strings.Contains(out, "key-") {
		t.Errorf("the log holds a key:\n%s", out)
	}
	select {
	case err := <-reloaded:
		t.Errorf("unexpected reload: %v", err)
	default:
	}
}

// API keys listed in a file, reloaded when it changes, in front of an
// upstream that reads the key's plan.
func ExampleOpenKeyFile() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.yaml")
	os.WriteFile(path, []byte(`
- id: billing
  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 # "test"
  owner: billing-team
  plan: gold
  scopes: [invoices:read]
`), 0o600)

	store, err := auth.OpenKeyFile(path, auth.KeyFileConfig{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	keys, err := auth.APIKeys(auth.APIKeyConfig{Store: store})
	if err != nil {
		panic(err)
	}
	hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		plan, _ := req.Principal.Claim("plan")
		return gateway.NewResponse(http.StatusOK, nil, []byte(req.Principal.Subject+" on "+plan.(string))), nil
	})
	p := gateway.NewPipeline(hello, gateway.Authenticate(keys))

	for _, key := range []string{"test", "guess"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	}
	// Output:
	// 200  billing-team on gold
	// 401 APIKey header="X-API-Key" {"detail":"the API key is not valid","status":401,"title":"Unauthorized","type":"about:blank"}
}
