package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// MockConfig configures a mock upstream: canned replies for building and
// testing clients before the backend exists.
type MockConfig struct {
	// Cases are tried in order; the first whose matchers all hold answers
	// the request.
	Cases []MockCase
	// Default answers a request no case matches. Nil answers it with a
	// 404 problem. At least one case or a Default is required.
	Default *MockResponse
}

// A MockCase is a reply and the requests it answers. Every matcher that is
// set must hold; a case without matchers answers every request.
type MockCase struct {
	// Methods the case answers, such as "GET"; empty means any. A case
	// that answers GET also answers HEAD.
	Methods []string
	// Query parameters that must be present with the given value (any of
	// their values, as decoded); an empty value only requires the
	// parameter to be present.
	Query map[string]string
	// Headers are request header fields that must be present with the
	// given value (any of their field lines, compared exactly); an empty
	// value only requires the field to be present.
	Headers map[string]string
	// Params are path parameters of the route that must have the given
	// value; an empty value only requires the parameter to exist.
	Params map[string]string
	// Response is the reply.
	Response MockResponse
}

// A MockResponse is a canned reply.
//
// # Templates
//
// With Template set, Body is a text/template executed for every request,
// with a *MockData as dot: {{.Param "id"}}, {{.Query "q"}},
// {{.QueryAll "tag"}}, {{.Header "X-Tenant"}}, {{.Method}}, {{.Path}}.
// Request values cannot break the reply, because how an action's value is
// written depends on the reply's media type (ContentType, or its default):
//
//   - JSON (application/json, or any type ending in +json): every action
//     writes one JSON value, the way html/template escapes every action
//     for HTML. A string becomes a quoted JSON string with '"', '\',
//     control characters, '<', '>', '&', U+2028 and U+2029 escaped and
//     invalid UTF-8 replaced by U+FFFD; a []string (QueryAll) an array;
//     numbers and booleans literals; nil null. So write actions where a
//     JSON value goes, never inside quotes:
//     {"id": {{.Param "id"}}, "greeting": {{printf "Hello, %s" (.Query "name")}}}
//     writes {"id": "42", "greeting": "Hello, \"Bob\"\n"}. Mock refuses at
//     start-up a template whose output, for a request without parameters,
//     query or header fields, is not JSON (what an action inside quotes
//     produces), and a request whose output is not JSON gets a 500.
//   - HTML (text/html): the template is an html/template, which escapes
//     each action for its context.
//   - XML (application/xml, text/xml, or a type ending in +xml): every
//     action's text is XML-escaped.
//   - anything else (text/plain): values are written as they are.
//
// The function json writes any value as JSON whatever the media type
// ({{json (.QueryAll "tag")}}); in a JSON template it changes nothing.
type MockResponse struct {
	// Status is the status code, 200 to 599; 0 means 200.
	Status int
	// Header holds the reply's header fields. It must not hold
	// Content-Length, which is computed.
	Header http.Header
	// Body is the reply body, or a template for it when Template is set.
	// A 204 or 304 reply has none.
	Body string
	// Template makes Body a text/template; see the type's documentation.
	Template bool
	// ContentType is the reply's Content-Type, which also decides how a
	// template escapes values. Empty means a Content-Type field in Header,
	// else application/json when the body is JSON (for a template: when
	// its text begins with '{' or '[' that does not open an action), else
	// "text/plain; charset=utf-8"; an empty body gets none.
	ContentType string
	// Latency delays the reply, to play a slow backend. A request whose
	// context ends first returns at once with the context's error.
	Latency time.Duration
	// Jitter adds a random delay of up to Jitter to Latency.
	Jitter time.Duration
}

// A MockUpstream answers requests with canned or templated replies, without
// a backend. It is safe for concurrent use. Build it with Mock.
type MockUpstream struct {
	cases []mockCase
	def   *mockReply
}

var _ gateway.Handler = (*MockUpstream)(nil)

type mockCase struct {
	methods []string
	query   []mockField
	headers []mockField
	params  []mockField
	reply   mockReply
}

type mockField struct{ name, value string }

// mockReply is a MockResponse compiled.
type mockReply struct {
	name    string // "Cases[2]" or "Default", for errors
	status  int
	header  http.Header // Content-Type included
	body    []byte      // a static body
	tmpl    mockExecutor
	json    bool // the template writes JSON: check what it writes
	latency time.Duration
	jitter  time.Duration
}

// mockExecutor is a text/template or an html/template.
type mockExecutor interface {
	Execute(w io.Writer, data any) error
}

// Mock checks cfg, compiles its templates and returns the mock upstream.
// A mistake is an error naming the case.
func Mock(cfg MockConfig) (*MockUpstream, error) {
	if len(cfg.Cases) == 0 && cfg.Default == nil {
		return nil, errors.New("proxy: mock: no Cases and no Default: every request would get 404")
	}
	m := &MockUpstream{cases: make([]mockCase, len(cfg.Cases))}
	for i, c := range cfg.Cases {
		name := fmt.Sprintf("Cases[%d]", i)
		mc, err := mockCompileCase(name, c)
		if err != nil {
			return nil, fmt.Errorf("proxy: mock: %s: %w", name, err)
		}
		m.cases[i] = mc
	}
	if cfg.Default != nil {
		r, err := mockCompileReply("Default", *cfg.Default)
		if err != nil {
			return nil, fmt.Errorf("proxy: mock: Default: %w", err)
		}
		m.def = &r
	}
	return m, nil
}

func mockCompileCase(name string, c MockCase) (mockCase, error) {
	var mc mockCase
	for _, meth := range c.Methods {
		if !gateway.IsToken(meth) {
			return mc, fmt.Errorf("Methods: %q is not a method name", meth)
		}
		mc.methods = append(mc.methods, meth)
	}
	for k, v := range c.Query {
		mc.query = append(mc.query, mockField{k, v})
	}
	for k, v := range c.Headers {
		if !gateway.IsToken(k) {
			return mc, fmt.Errorf("Headers: %q is not a header field name", k)
		}
		mc.headers = append(mc.headers, mockField{http.CanonicalHeaderKey(k), v})
	}
	for k, v := range c.Params {
		mc.params = append(mc.params, mockField{k, v})
	}
	r, err := mockCompileReply(name, c.Response)
	if err != nil {
		return mc, fmt.Errorf("Response: %w", err)
	}
	mc.reply = r
	return mc, nil
}

func mockCompileReply(name string, r MockResponse) (mockReply, error) {
	out := mockReply{name: name, status: r.Status, latency: r.Latency, jitter: r.Jitter}
	if out.status == 0 {
		out.status = http.StatusOK
	}
	switch {
	case out.status < 200 || out.status > 599:
		return out, fmt.Errorf("Status %d: must be 200 to 599", r.Status)
	case (out.status == http.StatusNoContent || out.status == http.StatusNotModified) && r.Body != "":
		return out, fmt.Errorf("Status %d: such a reply has no body, but Body is set", out.status)
	case r.Latency < 0 || r.Jitter < 0:
		return out, errors.New("Latency and Jitter must not be negative")
	}
	out.header = make(http.Header, len(r.Header)+1)
	for k, vs := range r.Header {
		if !gateway.IsToken(k) {
			return out, fmt.Errorf("Header: %q is not a header field name", k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return out, fmt.Errorf("Header %s: a value holds CR, LF or NUL", k)
			}
		}
		out.header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if _, ok := out.header["Content-Length"]; ok {
		return out, errors.New("Header: Content-Length is computed from the body; remove it")
	}
	ctype := r.ContentType
	if hv := out.header.Get("Content-Type"); hv != "" {
		if ctype != "" && ctype != hv {
			return out, fmt.Errorf("ContentType %q and Header's Content-Type %q disagree", ctype, hv)
		}
		ctype = hv
	}
	if ctype == "" && r.Body != "" {
		ctype = "text/plain; charset=utf-8"
		if mockLooksJSON(r.Body, r.Template) {
			ctype = "application/json"
		}
	}
	var mt string
	if ctype != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ctype); err != nil {
			return out, fmt.Errorf("ContentType %q: %w", ctype, err)
		}
		out.header["Content-Type"] = []string{ctype}
	}
	if !r.Template {
		out.body = []byte(r.Body)
		return out, nil
	}
	kind := mockKindOf(mt)
	tmpl, err := mockParse(name, r.Body, kind)
	if err != nil {
		return out, fmt.Errorf("template: %w", err)
	}
	out.tmpl, out.json = tmpl, kind == mockKindJSON
	if out.json {
		// What an action inside quotes writes is not JSON even for an
		// empty value: catch it now rather than on a request.
		probe := gateway.NewRequest(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: http.Header{}})
		var buf bytes.Buffer
		if tmpl.Execute(&buf, &MockData{req: probe}) == nil && buf.Len() > 0 && !json.Valid(buf.Bytes()) {
			return out, errors.New("template: the output is not JSON; write actions where a JSON value goes, never inside quotes ({{printf \"Hello, %s\" (.Query \"name\")}} builds a string)")
		}
	}
	return out, nil
}

// mockLooksJSON reports whether a body is JSON: for a static body, whether
// it parses; for a template, whether it begins with '{' or '[' and that
// does not open an action.
func mockLooksJSON(body string, tmpl bool) bool {
	if !tmpl {
		return json.Valid([]byte(body))
	}
	s := strings.TrimLeft(body, " \t\r\n")
	return strings.HasPrefix(s, "[") || (strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "{{"))
}

type mockKind int

const (
	mockKindText mockKind = iota
	mockKindJSON
	mockKindHTML
	mockKindXML
)

func mockKindOf(mt string) mockKind {
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return mockKindJSON
	case mt == "text/html":
		return mockKindHTML
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		return mockKindXML
	}
	return mockKindText
}

// mockEscaperName is the function appended to every action of a JSON or
// XML template; a name no template can call by accident.
const mockEscaperName = "_gatekit_mock_escape"

var mockFuncs = template.FuncMap{"json": mockJSONFunc}

func mockParse(name, text string, kind mockKind) (mockExecutor, error) {
	if kind == mockKindHTML {
		return htmltemplate.New(name).Funcs(htmltemplate.FuncMap(mockFuncs)).Parse(text)
	}
	t := template.New(name).Funcs(mockFuncs)
	switch kind {
	case mockKindJSON:
		t.Funcs(template.FuncMap{mockEscaperName: mockJSONText})
	case mockKindXML:
		t.Funcs(template.FuncMap{mockEscaperName: mockXMLText})
	}
	if _, err := t.Parse(text); err != nil {
		return nil, err
	}
	if kind == mockKindJSON || kind == mockKindXML {
		for _, tt := range t.Templates() {
			if tt.Tree != nil {
				mockEscapeList(tt.Tree.Root)
			}
		}
	}
	return t, nil
}

// mockEscapeList makes every action under n that prints write through the
// escaper, the way html/template adds its escapers.
func mockEscapeList(n *parse.ListNode) {
	if n == nil {
		return
	}
	for _, c := range n.Nodes {
		switch c := c.(type) {
		case *parse.ActionNode:
			if len(c.Pipe.Decl) == 0 { // {{$x := ...}} prints nothing
				c.Pipe.Cmds = append(c.Pipe.Cmds, &parse.CommandNode{
					NodeType: parse.NodeCommand,
					Pos:      c.Position(),
					Args:     []parse.Node{parse.NewIdentifier(mockEscaperName).SetTree(nil).SetPos(c.Position())},
				})
			}
		case *parse.IfNode:
			mockEscapeList(c.List)
			mockEscapeList(c.ElseList)
		case *parse.RangeNode:
			mockEscapeList(c.List)
			mockEscapeList(c.ElseList)
		case *parse.WithNode:
			mockEscapeList(c.List)
			mockEscapeList(c.ElseList)
		case *parse.ListNode:
			mockEscapeList(c)
		}
	}
}

// Serve answers req with the reply of the first matching case. An error is
// a 404 *gateway.Error when nothing matches and there is no Default, the
// context's error when it ends during Latency, or an internal error when a
// template fails.
func (m *MockUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	ctx, called := req.StartUpstream(ctx, "mock", "mock", nil)
	resp, err := m.serve(ctx, req)
	called(callStatus(resp, err), err)
	return resp, err
}

func (m *MockUpstream) serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	r := m.def
	for i := range m.cases {
		if m.cases[i].matches(req) {
			r = &m.cases[i].reply
			break
		}
	}
	if r == nil {
		return nil, &gateway.Error{Status: http.StatusNotFound, Detail: "no mock reply matches the request"}
	}
	if err := r.wait(ctx); err != nil {
		return nil, err
	}
	body := r.body
	if r.tmpl != nil {
		var err error
		if body, err = r.render(req); err != nil {
			return nil, err
		}
	}
	return gateway.NewResponse(r.status, r.header.Clone(), body), nil
}

func (c *mockCase) matches(req *gateway.Request) bool {
	in := req.HTTP
	if len(c.methods) > 0 {
		ok := false
		for _, m := range c.methods {
			if m == in.Method || (m == http.MethodGet && in.Method == http.MethodHead) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, f := range c.params {
		if !mockHasParam(req, f) {
			return false
		}
	}
	for _, f := range c.headers {
		vs, ok := in.Header[f.name]
		if !ok || (f.value != "" && !mockContains(vs, f.value)) {
			return false
		}
	}
	for _, f := range c.query {
		if !mockQueryHas(in.URL.RawQuery, f) {
			return false
		}
	}
	return true
}

func mockHasParam(req *gateway.Request, f mockField) bool {
	for _, p := range req.Params() {
		if p.Name == f.name {
			return f.value == "" || p.Value == f.value
		}
	}
	return false
}

func mockContains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// mockQueryHas reports whether the raw query holds f, decoding as
// url.ParseQuery does but without building a map.
func mockQueryHas(raw string, f mockField) bool {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" || strings.IndexByte(part, ';') >= 0 {
			continue // url.ParseQuery skips these too
		}
		k, v, _ := strings.Cut(part, "=")
		if k, ok := mockUnescape(k); !ok || k != f.name {
			continue
		}
		if v, ok := mockUnescape(v); ok && (f.value == "" || v == f.value) {
			return true
		}
	}
	return false
}

func mockUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// wait sleeps for the reply's latency, or until ctx ends.
func (r *mockReply) wait(ctx context.Context) error {
	d := r.latency
	if r.jitter > 0 {
		d += time.Duration(rand.Uint64N(uint64(r.jitter) + 1))
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *mockReply) render(req *gateway.Request) ([]byte, error) {
	var buf bytes.Buffer
	if err := r.tmpl.Execute(&buf, &MockData{req: req}); err != nil {
		return nil, fmt.Errorf("proxy: mock: %s: template: %w", r.name, err)
	}
	if r.json && !json.Valid(buf.Bytes()) {
		return nil, fmt.Errorf("proxy: mock: %s: the template's output is not JSON", r.name)
	}
	return buf.Bytes(), nil
}

// MockData is what a MockResponse template sees as dot: the request, read
// when the template asks.
type MockData struct {
	req   *gateway.Request
	query url.Values // parsed on first use
}

// Param returns the path parameter name, or "".
func (d *MockData) Param(name string) string { return d.req.Param(name) }

// Query returns the first value of the query parameter name, or "".
func (d *MockData) Query(name string) string {
	if vs := d.QueryAll(name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// QueryAll returns every value of the query parameter name.
func (d *MockData) QueryAll(name string) []string {
	if d.query == nil {
		d.query, _ = url.ParseQuery(d.req.HTTP.URL.RawQuery)
	}
	return d.query[name]
}

// Header returns the first value of the request header field name, or "".
func (d *MockData) Header(name string) string { return d.req.HTTP.Header.Get(name) }

// Method returns the request method.
func (d *MockData) Method() string { return d.req.HTTP.Method }

// Path returns the request path, as the route was matched on it.
func (d *MockData) Path() string { return d.req.HTTP.URL.Path }

// mockJSON is text that is already JSON: what the function json returns,
// written as it is by a JSON template's escaper.
type mockJSON string

// mockJSONFunc is the template function json.
func mockJSONFunc(v any) (mockJSON, error) {
	s, err := mockJSONText(v)
	return mockJSON(s), err
}

// mockJSONText writes v as one JSON value; it is the escaper of a JSON
// template, by the rules documented on MockResponse.
func mockJSONText(v any) (string, error) {
	switch x := v.(type) {
	case mockJSON:
		return string(x), nil
	case nil:
		return "null", nil
	case string:
		return string(gateway.AppendJSONString(nil, x)), nil
	case []string:
		if x == nil {
			return "[]", nil
		}
		b := []byte{'['}
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = gateway.AppendJSONString(b, s)
		}
		return string(append(b, ']')), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errors.New("NaN and infinities have no JSON form")
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	b, err := json.Marshal(v) // escapes <, > and & too
	return string(b), err
}

// mockXMLText is the escaper of an XML template.
func mockXMLText(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case mockJSON:
		s = string(x)
	default:
		s = fmt.Sprint(v)
	}
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}
