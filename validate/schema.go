package validate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/tidwall/gjson"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// A Draft is a version of the JSON Schema specification. The zero value is
// Draft2020.
type Draft int

// The drafts a schema may be written in.
const (
	Draft2020 Draft = iota // draft 2020-12
	Draft2019              // draft 2019-09
	Draft7                 // draft-07
	Draft6                 // draft-06
	Draft4                 // draft-04
)

func (d Draft) lib() *jsonschema.Draft {
	switch d {
	case Draft2020:
		return jsonschema.Draft2020
	case Draft2019:
		return jsonschema.Draft2019
	case Draft7:
		return jsonschema.Draft7
	case Draft6:
		return jsonschema.Draft6
	case Draft4:
		return jsonschema.Draft4
	}
	return nil
}

// A Schema names a JSON Schema document: set JSON or File, not both.
type Schema struct {
	// JSON is the schema document itself. Relative references in it
	// resolve against the root of Config.FS.
	JSON string

	// File is the path of the schema document: a slash-separated path in
	// Config.FS when that is set, otherwise a path on disk. Relative
	// references resolve against the file's directory.
	File string
}

func (s Schema) isZero() bool { return s.JSON == "" && s.File == "" }

// ErrRemoteRef is the cause of the error New returns when a schema
// references a URL that Config.AllowRemote does not allow, or that cannot
// be fetched.
var ErrRemoteRef = errors.New("remote $ref not allowed")

// A SchemaError reports a schema that does not compile. New returns it
// wrapped in nothing, so errors.AsType finds it.
type SchemaError struct {
	// Route is Config.Route.
	Route string
	// Schema says which schema of the Config failed: "request body",
	// "reply 200", "reply 2xx".
	Schema string
	// File is the file (in Config.FS or on disk) where the fault is,
	// "(inline)" for Schema.JSON, or the URL of a remote document.
	File string
	// Pointer is the JSON pointer (RFC 6901) to the fault within File, ""
	// for the whole document or when unknown.
	Pointer string
	// Detail says what is wrong.
	Detail string
	// Err is the jsonschema library's error, or the loader's.
	Err error
}

// Error names the route, the schema, the file and the pointer.
func (e *SchemaError) Error() string {
	var b strings.Builder
	if e.Route != "" {
		b.WriteString("route " + quote(e.Route) + ": ")
	}
	b.WriteString("validate: " + e.Schema + " schema: " + e.File)
	if e.Pointer != "" {
		b.WriteString("#" + e.Pointer)
	}
	b.WriteString(": " + e.Detail)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *SchemaError) Unwrap() error { return e.Err }

func quote(s string) string { return fmt.Sprintf("%q", s) }

// inlineURL is where an inline schema lives: at the root of Config.FS, so
// that its relative references find the files there.
func inlineURL(what string) string {
	return "file:///.gatekit-inline-" + strings.ReplaceAll(what, " ", "-") + ".json"
}

// maxRemoteSchemaBytes bounds a schema document fetched from an allowed URL.
const maxRemoteSchemaBytes = 4 << 20

// A loader gives the jsonschema compiler the documents a schema
// references, and nothing else: files in Config.FS (or, without it, in
// the directories of the named files), documents in Config.FS known by
// their $id, and allowed remote URLs. Every other URL is refused, so a
// schema can make the gateway neither read arbitrary files nor call
// arbitrary hosts.
type loader struct {
	fsys  fs.FS
	dirs  []diskDir
	ids   map[string]string // absolute $id → path in fsys
	allow []*url.URL
	http  *http.Client
}

type diskDir struct {
	path string // absolute, slash-separated, no trailing slash
	root *os.Root
}

func (l *loader) close() {
	for _, d := range l.dirs {
		d.root.Close()
	}
}

// fileURL is the URL under which the file name (in fsys, or an absolute
// disk path) is known to the compiler.
func (l *loader) fileURL(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return (&url.URL{Scheme: "file", Path: name}).String()
}

// display returns the name of the document at u for error messages.
func (l *loader) display(u string) string {
	u, _, _ = strings.Cut(u, "#")
	if strings.HasPrefix(u, "file:///.gatekit-inline-") {
		return "(inline)"
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "file" {
		return u
	}
	if l.fsys != nil {
		return strings.TrimPrefix(pu.Path, "/")
	}
	return filepath.FromSlash(pu.Path)
}

// Load implements jsonschema.URLLoader.
func (l *loader) Load(u string) (any, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if pu.Scheme == "file" {
		if pu.Host != "" && pu.Host != "localhost" {
			return nil, errors.New("file URLs with a host are not read")
		}
		if l.fsys != nil {
			name := strings.TrimPrefix(pu.Path, "/")
			if !fs.ValidPath(name) {
				return nil, errors.New("not a path in Config.FS")
			}
			return readSchema(l.fsys, name)
		}
		for _, d := range l.dirs { // longest first
			if rel, ok := strings.CutPrefix(pu.Path, d.path+"/"); ok && fs.ValidPath(rel) {
				return readSchema(d.root.FS(), rel)
			}
		}
		return nil, errors.New("the file is outside the directories of the configured schema files; set Config.FS to reach it")
	}
	if name, ok := l.ids[u]; ok {
		return readSchema(l.fsys, name)
	}
	if !l.allowed(pu) {
		return nil, fmt.Errorf("%w: %s is not in Config.AllowRemote", ErrRemoteRef, u)
	}
	return l.fetch(u)
}

func readSchema(fsys fs.FS, name string) (any, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return doc, nil
}

// allowed reports whether u is under one of the AllowRemote prefixes.
func (l *loader) allowed(u *url.URL) bool {
	if u.User != nil || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		// "/schemas/../admin" would climb out of an allowed prefix at a
		// server that resolves dot segments.
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return false
		}
	}
	for _, a := range l.allow {
		if a.Scheme == u.Scheme && strings.EqualFold(a.Host, u.Host) && pathUnder(u.EscapedPath(), a.EscapedPath()) {
			return true
		}
	}
	return false
}

// pathUnder reports whether p is prefix or below it on a segment boundary.
func pathUnder(p, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || strings.HasSuffix(prefix, "/") || p[len(prefix)] == '/'
}

func parseAllow(list []string) ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(list))
	for _, s := range list {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("AllowRemote %q: %w", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("AllowRemote %q: want an http or https URL prefix with a host and no user, query or fragment", s)
		}
		out = append(out, u)
	}
	return out, nil
}

// fetch GETs an allowed schema document; redirects are followed only to
// allowed URLs.
func (l *loader) fetch(u string) (any, error) {
	resp, err := l.http.Get(u)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRemoteRef, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: status %d", ErrRemoteRef, u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteSchemaBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrRemoteRef, u, err)
	}
	if len(data) > maxRemoteSchemaBytes {
		return nil, fmt.Errorf("%w: GET %s: document larger than %d bytes", ErrRemoteRef, u, maxRemoteSchemaBytes)
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return doc, nil
}

// httpClient returns a copy of c (or of a client with a 10 s timeout)
// whose redirects stay within the allow-list.
func (l *loader) httpClient(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	} else {
		cp.Timeout = 10 * time.Second
	}
	next := cp.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !l.allowed(req.URL) {
			return fmt.Errorf("%w: redirect to %s", ErrRemoteRef, req.URL)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// indexIDs records the files of fsys whose top-level $id (or id, for
// draft-04) is an absolute URL, so that a reference to that URL is served
// from the file instead of the network.
func (l *loader) indexIDs(draft Draft) error {
	key := "$id"
	if draft == Draft4 {
		key = "id"
	}
	return fs.WalkDir(l.fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(name) != ".json" {
			return nil
		}
		data, err := fs.ReadFile(l.fsys, name)
		if err != nil {
			return err
		}
		id := gjson.GetBytes(data, gjsonKey(key))
		if id.Type != gjson.String {
			return nil
		}
		u, err := url.Parse(id.Str)
		if err != nil || !u.IsAbs() || u.Scheme == "file" {
			return nil
		}
		u.Fragment, u.RawFragment = "", ""
		s := u.String()
		if prev, ok := l.ids[s]; ok {
			return fmt.Errorf("%s and %s have the same $id %s", prev, name, s)
		}
		if l.ids == nil {
			l.ids = make(map[string]string)
		}
		l.ids[s] = name
		return nil
	})
}

// gjsonKey escapes the characters gjson treats as path syntax.
func gjsonKey(k string) string {
	var b strings.Builder
	for _, c := range k {
		if strings.ContainsRune(`.*?|#@!=<>%\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// A compiler compiles the schemas of one Config with one jsonschema
// compiler, so documents they share are loaded once.
type compiler struct {
	route   string
	c       *jsonschema.Compiler
	l       *loader
	printer *message.Printer
}

func newCompiler(cfg *Config) (*compiler, error) {
	draft := cfg.Draft.lib()
	if draft == nil {
		return nil, fmt.Errorf("unknown Draft %d", cfg.Draft)
	}
	l := &loader{fsys: cfg.FS}
	allow, err := parseAllow(cfg.AllowRemote)
	if err != nil {
		return nil, err
	}
	l.allow = allow
	l.http = l.httpClient(cfg.HTTPClient)
	if cfg.FS != nil {
		if err := l.indexIDs(cfg.Draft); err != nil {
			return nil, fmt.Errorf("FS: %w", err)
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(draft)
	c.AssertFormat()
	c.UseLoader(l)
	return &compiler{route: cfg.Route, c: c, l: l, printer: message.NewPrinter(language.English)}, nil
}

// addDir lets the loader read files on disk under the directory of file.
func (sc *compiler) addDir(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	dir := filepath.ToSlash(filepath.Dir(abs))
	for _, d := range sc.l.dirs {
		if d.path == dir {
			return filepath.ToSlash(abs), nil
		}
	}
	root, err := os.OpenRoot(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	sc.l.dirs = append(sc.l.dirs, diskDir{path: strings.TrimSuffix(dir, "/"), root: root})
	slices.SortFunc(sc.l.dirs, func(a, b diskDir) int { return len(b.path) - len(a.path) })
	return filepath.ToSlash(abs), nil
}

// compile compiles s; what names it in errors ("request body").
func (sc *compiler) compile(s Schema, what string) (*jsonschema.Schema, error) {
	fail := func(file, detail string, err error) error {
		return &SchemaError{Route: sc.route, Schema: what, File: file, Detail: detail, Err: err}
	}
	var loc string
	switch {
	case s.JSON != "" && s.File != "":
		return nil, fail("(inline)", "set JSON or File, not both", nil)
	case s.JSON != "":
		doc, err := decodeJSON([]byte(s.JSON))
		if err != nil {
			return nil, fail("(inline)", "invalid JSON: "+err.Error(), err)
		}
		loc = inlineURL(what)
		if err := sc.c.AddResource(loc, doc); err != nil {
			return nil, fail("(inline)", err.Error(), err)
		}
	case sc.l.fsys != nil:
		name := strings.TrimPrefix(s.File, "./")
		if !fs.ValidPath(name) {
			return nil, fail(s.File, "not a valid io/fs path (slash-separated, no leading slash or dot segments)", nil)
		}
		loc = sc.l.fileURL(name)
	default:
		abs, err := sc.addDir(s.File)
		if err != nil {
			return nil, fail(s.File, err.Error(), err)
		}
		loc = sc.l.fileURL(abs)
	}
	sch, err := sc.c.Compile(loc)
	if err != nil {
		return nil, sc.schemaError(what, loc, err)
	}
	return sch, nil
}

// schemaError turns a jsonschema compile error into a *SchemaError that
// names the file and the JSON pointer of the fault.
func (sc *compiler) schemaError(what, loc string, err error) *SchemaError {
	e := &SchemaError{Route: sc.route, Schema: what, File: sc.l.display(loc), Err: err}
	at := func(u string) {
		doc, frag, _ := strings.Cut(u, "#")
		e.File = sc.l.display(doc)
		if p, err := url.PathUnescape(frag); err == nil {
			e.Pointer = p
		}
	}
	switch le := err.(type) {
	case *jsonschema.SchemaValidationError:
		at(le.URL)
		if ve, ok := le.Err.(*jsonschema.ValidationError); ok {
			// The leaves' locations are relative to the (sub)schema the
			// URL's fragment names.
			base := e.Pointer
			ls := leaves(ve, nil, 20)
			for i, leaf := range ls {
				p := base + pointer(leaf.InstanceLocation)
				if i == 0 {
					e.Pointer = p
				}
			}
			var parts []string
			for _, leaf := range ls {
				msg := leaf.ErrorKind.LocalizedString(sc.printer)
				if p := base + pointer(leaf.InstanceLocation); p != e.Pointer {
					msg = p + ": " + msg
				}
				parts = append(parts, msg)
			}
			e.Detail = "not a valid schema: " + strings.Join(slices.Compact(parts), "; ")
		} else {
			e.Detail = "not a valid schema: " + le.Err.Error()
		}
	case *jsonschema.LoadURLError:
		at(le.URL)
		e.Detail = "cannot load it: " + le.Err.Error()
		e.Err = errors.Join(err, le.Err) // so errors.Is finds ErrRemoteRef
	case *jsonschema.InvalidRegexError:
		at(le.URL)
		e.Detail = "invalid regular expression " + quote(le.Regex) + ": " + le.Err.Error()
	case *jsonschema.JSONPointerNotFoundError:
		at(le.URL)
		e.Detail = "a $ref points here, but there is nothing"
	case *jsonschema.AnchorNotFoundError:
		at(le.URL)
		e.Detail = "anchor of $ref " + quote(le.Reference) + " not found"
	case *jsonschema.DuplicateIDError:
		at(le.URL)
		e.Pointer = le.Ptr2
		e.Detail = "$id " + quote(le.ID) + " already used at " + le.Ptr1
	case *jsonschema.ParseIDError:
		at(le.URL)
		e.Detail = "invalid $id"
	case *jsonschema.ParseAnchorError:
		at(le.URL)
		e.Detail = "invalid $anchor"
	case *jsonschema.InvalidJsonPointerError:
		at(le.URL)
		e.Detail = "invalid JSON pointer in $ref"
	default:
		msg := err.Error()
		if sc.l.fsys != nil {
			msg = strings.ReplaceAll(msg, "file:///", "")
		} else {
			msg = strings.ReplaceAll(msg, "file://", "")
		}
		e.Detail = msg
	}
	return e
}

// leaves appends the causes of e that have no causes of their own, up to
// max of them.
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError, max int) []*jsonschema.ValidationError {
	if len(out) >= max {
		return out
	}
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leaves(c, out, max)
	}
	return out
}

// pointer returns the RFC 6901 JSON pointer of the tokens.
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return ""
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		if strings.ContainsAny(t, "~/") {
			t = strings.ReplaceAll(t, "~", "~0")
			t = strings.ReplaceAll(t, "/", "~1")
		}
		b.WriteString(t)
	}
	return b.String()
}
