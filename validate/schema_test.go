package validate_test

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/validate"
)

// schemaServer is an HTTP server of schema documents that counts the
// requests that reach it.
type schemaServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newSchemaServer(t *testing.T, docs map[string]string) *schemaServer {
	s := &schemaServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if to, ok := strings.CutPrefix(docs[r.URL.Path], "redirect:"); ok {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/schema+json")
		w.Write([]byte(doc))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRemoteRefs(t *testing.T) {
	srv := newSchemaServer(t, map[string]string{
		"/schemas/money.json":   `{"type": "object", "required": ["currency"]}`,
		"/schemas/hop.json":     "redirect:/elsewhere/money.json",
		"/elsewhere/money.json": `{"type": "object"}`,
		"/meta/schema.json":     `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$vocabulary": {"https://json-schema.org/draft/2020-12/vocab/core": true}}`,
	})
	refTo := func(path string) string { return `{"properties": {"amount": {"$ref": "` + srv.URL + path + `"}}}` }
	tests := []struct {
		name    string
		schema  string
		allow   []string
		wantErr string // "" means it compiles
		hits    int64  // requests that must reach the server during New
	}{
		{"refused by default", refTo("/schemas/money.json"), nil, "not in Config.AllowRemote", 0},
		{"remote $schema refused", `{"$schema": "` + srv.URL + `/meta/schema.json"}`, nil, "not in Config.AllowRemote", 0},
		{"other prefix refused", refTo("/schemas/money.json"), []string{srv.URL + "/other/"}, "not in Config.AllowRemote", 0},
		{"prefix on a segment boundary", refTo("/schemas/money.json"), []string{srv.URL + "/schema"}, "not in Config.AllowRemote", 0},
		{"dot segments refused", refTo("/schemas/%2e%2e/elsewhere/money.json"), []string{srv.URL + "/schemas/"}, "not in Config.AllowRemote", 0},
		{"other host refused", `{"$ref": "http://attacker.invalid/x.json"}`, []string{srv.URL + "/"}, "not in Config.AllowRemote", 0},
		{"file URL refused", `{"$ref": "file:///etc/passwd"}`, nil, "cannot load", 0},
		{"allowed", refTo("/schemas/money.json"), []string{srv.URL + "/schemas/"}, "", 1},
		{"allowed without trailing slash", refTo("/schemas/money.json"), []string{srv.URL + "/schemas"}, "", 1},
		{"redirect out of the allow-list", refTo("/schemas/hop.json"), []string{srv.URL + "/schemas/"}, "redirect to", 1},
		{"not found", refTo("/schemas/nope.json"), []string{srv.URL + "/schemas/"}, "status 404", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.hits.Load()
			v, err := validate.New(validate.Config{Route: "pay", Body: validate.Schema{JSON: tc.schema}, AllowRemote: tc.allow})
			if hits := srv.hits.Load() - before; hits != tc.hits {
				t.Errorf("%d requests reached the schema server during New, want %d", hits, tc.hits)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if tc.wantErr != "cannot load" && !errors.Is(err, validate.ErrRemoteRef) {
					t.Errorf("err = %v, not ErrRemoteRef", err)
				}
				if se, ok := errors.AsType[*validate.SchemaError](err); !ok || se.Route != "pay" || se.Schema != "request body" {
					t.Errorf("err = %#v, want a *SchemaError for the request body of route pay", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Validation never loads anything.
			before = srv.hits.Load()
			p := gateway.NewPipeline(echo, gateway.Validate(v))
			for _, body := range []string{`{"amount": {"currency": "EUR"}}`, `{"amount": {}}`, `{"amount": 1}`} {
				send(t, p, jsonRequest("POST", "/", body))
			}
			rec, _ := send(t, p, jsonRequest("POST", "/", `{"amount": 1}`))
			if rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422: the remote schema was not applied", rec.Code)
			}
			if hits := srv.hits.Load() - before; hits != 0 {
				t.Errorf("%d requests reached the schema server during validation", hits)
			}
		})
	}
}

func TestRemoteRefNeverTouchesDisk(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.json")
	if err := os.WriteFile(secret, []byte(`{"type": "string"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "schemas")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(sub, "link.json")); err != nil {
		t.Fatal(err)
	}
	for name, schema := range map[string]string{
		"absolute file URL":  `{"$ref": "file://` + filepath.ToSlash(secret) + `"}`,
		"relative from disk": `{"$ref": "../secret.json"}`,
		"symlink out":        `{"$ref": "link.json"}`,
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(sub, "root.json")
			if err := os.WriteFile(file, []byte(schema), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := validate.New(validate.Config{Body: validate.Schema{File: file}})
			if err == nil {
				t.Fatal("New read a file outside the schema directory")
			}
			t.Log(err)
		})
	}
	// An inline schema with no FS reaches no file at all.
	_, err := validate.New(validate.Config{Body: validate.Schema{JSON: `{"$ref": "secret.json"}`}})
	if err == nil {
		t.Fatal("an inline schema read a file")
	}
}

//go:embed testdata/schemas
var embedded embed.FS

func TestSchemasFromFS(t *testing.T) {
	schemas, err := fs.Sub(embedded, "testdata/schemas")
	if err != nil {
		t.Fatal(err)
	}
	mapFS := fstest.MapFS{
		"order.json":          {Data: []byte(`{"type": "object", "properties": {"lines": {"type": "array", "items": {"$ref": "defs/line.json#/$defs/line"}}}}`)},
		"defs/line.json":      {Data: []byte(`{"$defs": {"line": {"type": "object", "required": ["sku"], "properties": {"sku": {"$ref": "../scalars/sku.json"}}}}}`)},
		"scalars/sku.json":    {Data: []byte(`{"type": "string", "pattern": "^[A-Z]+$"}`)},
		"inline-target.json":  {Data: []byte(`{"type": "integer"}`)},
		"README.md":           {Data: []byte("not a schema")},
		"broken/invalid.json": {Data: []byte(`{"type": `)},
	}
	tests := []struct {
		name   string
		fsys   fs.FS
		schema validate.Schema
		body   string
		want   int
		ptr    string
	}{
		{"embed: valid", schemas, validate.Schema{File: "payment.json"}, `{"amount": {"currency": "EUR", "value": "1.50"}, "payee": {"name": "Ada", "email": "ada@example.com"}}`, 200, ""},
		{"embed: relative $ref", schemas, validate.Schema{File: "payment.json"}, `{"amount": {"currency": "eur", "value": "1.50"}, "payee": {"name": "Ada", "email": "ada@example.com"}}`, 422, "/amount/currency"},
		{"embed: $ref by $id", schemas, validate.Schema{File: "payment.json"}, `{"amount": {"currency": "EUR", "value": "1"}, "payee": {"name": "Ada", "email": "ada.example.com"}}`, 422, "/payee/email"},
		{"map: nested directories", mapFS, validate.Schema{File: "order.json"}, `{"lines": [{"sku": "ABC"}, {"sku": "abc"}]}`, 422, "/lines/1/sku"},
		{"map: valid", mapFS, validate.Schema{File: "order.json"}, `{"lines": [{"sku": "ABC"}]}`, 200, ""},
		{"map: inline schema refers to FS files", mapFS, validate.Schema{JSON: `{"$ref": "inline-target.json"}`}, `"x"`, 422, ""},
		{"map: subdirectory file", mapFS, validate.Schema{File: "scalars/sku.json"}, `"ABC"`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, validate.Config{Body: tc.schema, FS: tc.fsys})
			rec, prob := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), jsonRequest("POST", "/", tc.body))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 422 && (len(prob.Errors) != 1 || prob.Errors[0]["pointer"] != tc.ptr) {
				t.Errorf("errors = %v, want one at %q", prob.Errors, tc.ptr)
			}
		})
	}
}

func TestSchemaFromDisk(t *testing.T) {
	// On disk, relative references work but a $ref by $id does not: that
	// needs an FS, whose files are indexed by their $id.
	file := filepath.Join("testdata", "schemas", "payment.json")
	_, err := validate.New(validate.Config{Body: validate.Schema{File: file}})
	if !errors.Is(err, validate.ErrRemoteRef) || !strings.Contains(err.Error(), "party.json") {
		t.Fatalf("err = %v, want ErrRemoteRef for the $id of party.json", err)
	}
	v := mustNew(t, validate.Config{Body: validate.Schema{File: "payment.json"}, FS: os.DirFS(filepath.Join("testdata", "schemas"))})
	rec, prob := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), jsonRequest("POST", "/", `{"amount": {"currency": "EUR", "value": "x"}, "payee": {"name": "Ada", "email": "a@b.c"}, "extra": 1}`))
	if rec.Code != 422 || len(prob.Errors) != 2 || prob.Errors[0]["pointer"] != "" || prob.Errors[1]["pointer"] != "/amount/value" {
		t.Fatalf("got %d %v", rec.Code, prob.Errors)
	}
}

func TestBadSchemas(t *testing.T) {
	fsys := fstest.MapFS{
		"ok.json":         {Data: []byte(`{"properties": {"a": {"$ref": "bad.json#/$defs/x"}}}`)},
		"bad.json":        {Data: []byte(`{"$defs": {"x": {"type": "strin"}}}`)},
		"syntax.json":     {Data: []byte("{\n  \"type\": \"object\",\n  \"properties\": {,}\n}")},
		"dangling.json":   {Data: []byte(`{"properties": {"a": {"$ref": "#/$defs/missing"}}}`)},
		"badregex.json":   {Data: []byte(`{"properties": {"code": {"pattern": "(["}}}`)},
		"missingref.json": {Data: []byte(`{"$ref": "nowhere.json"}`)},
	}
	tests := []struct {
		name    string
		cfg     validate.Config
		file    string
		pointer string
		detail  string
	}{
		{"inline metaschema violation", validate.Config{Body: validate.Schema{JSON: `{"properties": {"amount": {"minimum": "ten"}}}`}}, "(inline)", "/properties/amount/minimum", "got string, want number"},
		{"inline syntax", validate.Config{Body: validate.Schema{JSON: "{\n \"type\": }"}}, "(inline)", "", "line 2, column 10"},
		{"referenced file", validate.Config{FS: fsys, Body: validate.Schema{File: "ok.json"}}, "bad.json", "/$defs/x/type", "value must be one of"},
		{"file syntax", validate.Config{FS: fsys, Body: validate.Schema{File: "syntax.json"}}, "syntax.json", "", "line 3, column 18"},
		{"dangling pointer", validate.Config{FS: fsys, Body: validate.Schema{File: "dangling.json"}}, "dangling.json", "/$defs/missing", "nothing"},
		{"bad regex", validate.Config{FS: fsys, Body: validate.Schema{File: "badregex.json"}}, "badregex.json", "/properties/code/pattern", "is not valid regex"},
		{"missing file", validate.Config{FS: fsys, Body: validate.Schema{File: "missingref.json"}}, "nowhere.json", "", "file does not exist"},
		{"missing root", validate.Config{FS: fsys, Body: validate.Schema{File: "absent.json"}}, "absent.json", "", "file does not exist"},
		{"reply schema", validate.Config{Replies: []validate.Reply{{Status: 200, Schema: validate.Schema{JSON: `{"type": 5}`}}}}, "(inline)", "/type", ""},
		{"draft-04 keyword shape under 2020-12", validate.Config{Body: validate.Schema{JSON: `{"maximum": 5, "exclusiveMaximum": true}`}}, "(inline)", "/exclusiveMaximum", "got boolean, want number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Route = "payments"
			_, err := validate.New(tc.cfg)
			se, ok := errors.AsType[*validate.SchemaError](err)
			if !ok {
				t.Fatalf("err = %v, want a *SchemaError", err)
			}
			if se.File != tc.file || se.Pointer != tc.pointer || !strings.Contains(se.Detail, tc.detail) {
				t.Errorf("got file %q pointer %q detail %q; want %q %q %q", se.File, se.Pointer, se.Detail, tc.file, tc.pointer, tc.detail)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, `route "payments": validate: `) || !strings.Contains(msg, tc.file) || !strings.Contains(msg, tc.pointer) {
				t.Errorf("message %q does not name the route, file and pointer", msg)
			}
		})
	}
}

func TestDrafts(t *testing.T) {
	tests := []struct {
		name   string
		draft  validate.Draft
		schema string
		body   string
		want   int
	}{
		// draft-04: exclusiveMaximum is a boolean modifier of maximum.
		{"draft-04 boolean exclusiveMaximum", validate.Draft4, `{"maximum": 5, "exclusiveMaximum": true}`, `5`, 422},
		{"draft-04 boolean exclusiveMaximum ok", validate.Draft4, `{"maximum": 5, "exclusiveMaximum": true}`, `4`, 200},
		{"draft-06 numeric exclusiveMaximum", validate.Draft6, `{"exclusiveMaximum": 5}`, `5`, 422},
		// draft-07 and 2019-09: items as an array is a tuple; in 2020-12
		// it is prefixItems, and items must be a schema.
		{"draft-07 tuple items", validate.Draft7, `{"items": [{"type": "string"}], "additionalItems": false}`, `["a", 1]`, 422},
		{"2019-09 tuple items", validate.Draft2019, `{"items": [{"type": "string"}]}`, `[1]`, 422},
		{"2020-12 prefixItems", validate.Draft2020, `{"prefixItems": [{"type": "string"}], "items": false}`, `["a", 1]`, 422},
		{"draft-07 dependencies", validate.Draft7, `{"dependencies": {"a": ["b"]}}`, `{"a": 1}`, 422},
		{"$schema overrides Draft", validate.Draft2020, `{"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"a": ["b"]}}`, `{"a": 1}`, 422},
		{"2019-09 dependentRequired", validate.Draft2019, `{"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, 422},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, validate.Config{Draft: tc.draft, Body: validate.Schema{JSON: tc.schema}})
			rec, _ := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), jsonRequest("POST", "/", tc.body))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
	if _, err := validate.New(validate.Config{Draft: validate.Draft2020, Body: validate.Schema{JSON: `{"items": [{"type": "string"}]}`}}); err == nil {
		t.Error("2020-12 accepted an array for items")
	}
	if _, err := validate.New(validate.Config{Draft: 42, Body: validate.Schema{JSON: `{}`}}); err == nil {
		t.Error("New accepted an unknown draft")
	}
	if _, err := validate.New(validate.Config{Body: validate.Schema{JSON: `{"$schema": "http://json-schema.org/draft-03/schema#"}`}}); err == nil {
		t.Error("New accepted draft-03")
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		format, value string
		valid         bool
	}{
		{"email", "ada@example.com", true},
		{"email", "ada.example.com", false},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", true},
		{"uuid", "123e4567-e89b-12d3-a456-42661417400", false},
		{"date-time", "2024-02-29T12:30:00Z", true},
		{"date-time", "2023-02-29T12:30:00Z", false},
		{"date-time", "2024-02-29 12:30:00", false},
		{"date", "2024-12-31", true},
		{"date", "2024-13-01", false},
		{"ipv4", "192.0.2.1", true},
		{"ipv4", "192.0.2.256", false},
		{"ipv6", "2001:db8::1", true},
		{"ipv6", "2001:db8:::1", false},
		{"uri", "https://example.com/a?b=c", true},
		{"uri", "/relative/path", false},
		{"hostname", "api.example.com", true},
		{"hostname", "-bad-.example.com", false},
		{"unknown-format", "anything", true},
	}
	for _, draft := range []validate.Draft{validate.Draft2020, validate.Draft2019, validate.Draft7} {
		for _, tc := range tests {
			t.Run(tc.format+"/"+tc.value, func(t *testing.T) {
				v := mustNew(t, validate.Config{Draft: draft, Body: validate.Schema{JSON: `{"format": "` + tc.format + `"}`}})
				r := jsonRequest("POST", "/", `"`+tc.value+`"`)
				err := v.Validate(context.Background(), gateway.NewRequest(r))
				if (err == nil) != tc.valid {
					t.Fatalf("draft %d: valid = %v, want %v (%v)", draft, err == nil, tc.valid, err)
				}
			})
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  validate.Config
		want string
	}{
		{"bad pattern", validate.Config{Query: []validate.Param{{Name: "q", Pattern: "(["}}}, `route "r": validate: query parameter "q": pattern: error parsing regexp`},
		{"unknown type", validate.Config{Header: []validate.Param{{Name: "X-A", Type: "date"}}}, `header parameter "X-A": unknown type "date"`},
		{"no name", validate.Config{Query: []validate.Param{{}}}, "query parameter 0: no name"},
		{"duplicate", validate.Config{Header: []validate.Param{{Name: "x-a"}, {Name: "X-A"}}}, `header parameter "X-A" has two rules`},
		{"enum without values", validate.Config{Query: []validate.Param{{Name: "s", Type: validate.TypeEnum}}}, "type enum needs Enum values"},
		{"enum with int", validate.Config{Query: []validate.Param{{Name: "s", Type: validate.TypeInt, Enum: []string{"1"}}}}, "Enum is for type enum"},
		{"min on a string", validate.Config{Query: []validate.Param{{Name: "s", Min: new(1.0)}}}, "Min and Max are for types int and number"},
		{"min above max", validate.Config{Query: []validate.Param{{Name: "n", Type: validate.TypeInt, Min: new(5.0), Max: new(1.0)}}}, "Min 5 is above Max 1"},
		{"count without repeated", validate.Config{Query: []validate.Param{{Name: "t", MaxCount: 2}}}, "MinCount and MaxCount are for Repeated"},
		{"repeated path", validate.Config{Path: []validate.Param{{Name: "id", Repeated: true}}}, "a path parameter cannot be Repeated"},
		{"bad media type", validate.Config{MediaTypes: []string{"json"}}, `MediaTypes: media type "json" is not of the form type/subtype`},
		{"media type parameters", validate.Config{MediaTypes: []string{"text/plain; charset=utf-8"}}, "parameters are not matched"},
		{"non-JSON type with a schema", validate.Config{MediaTypes: []string{"text/plain"}, Body: validate.Schema{JSON: `{}`}}, "text/plain is not a JSON media type"},
		{"wildcard with a schema", validate.Config{MediaTypes: []string{"application/*"}, Body: validate.Schema{JSON: `{}`}}, "application/* is not a JSON media type"},
		{"RequireMediaType alone", validate.Config{RequireMediaType: true}, "RequireMediaType needs MediaTypes or Body"},
		{"BodyOptional alone", validate.Config{BodyOptional: true}, "BodyOptional needs Body"},
		{"negative MaxBytes", validate.Config{MaxBytes: -1}, "MaxBytes must not be negative"},
		{"JSON and File", validate.Config{Body: validate.Schema{JSON: `{}`, File: "x.json"}}, "set JSON or File, not both"},
		{"reply status", validate.Config{Replies: []validate.Reply{{Status: 101, Schema: validate.Schema{JSON: `{}`}}}}, "status 101 is not a final status"},
		{"reply without schema", validate.Config{Replies: []validate.Reply{{Status: 200}}}, "reply 200 has no schema"},
		{"two reply schemas", validate.Config{Replies: []validate.Reply{{Schema: validate.Schema{JSON: `{}`}}, {Schema: validate.Schema{JSON: `{}`}}}}, "two schemas for reply 2xx"},
		{"allow-list entry", validate.Config{Body: validate.Schema{JSON: `{}`}, AllowRemote: []string{"ftp://x/"}}, "want an http or https URL prefix"},
		{"FS path", validate.Config{Body: validate.Schema{File: "/abs.json"}, FS: fstest.MapFS{}}, "not a valid io/fs path"},
		{"duplicate $id in FS", validate.Config{Body: validate.Schema{JSON: `{}`}, FS: fstest.MapFS{
			"a.json": {Data: []byte(`{"$id": "https://x.example/s.json"}`)},
			"b.json": {Data: []byte(`{"$id": "https://x.example/s.json"}`)},
		}}, "a.json and b.json have the same $id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Route = "r"
			_, err := validate.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `route "r": validate: `) {
				t.Fatalf("err = %v, want one starting with the route and containing %q", err, tc.want)
			}
		})
	}
}
