package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"text/template"
	"text/template/parse"

	"github.com/gatekit/gatekit/gateway"
	"github.com/tidwall/gjson"
)

// escaperName is the function appended to every action of a template.
const escaperName = "_gatekit_json"

// TemplateData is what a Template sees as dot. Its methods read the request
// (and, in a response transform, the reply) when the template calls them,
// so a template that prints no body field does not read the body.
//
// Every value an action prints is written as JSON:
//
//   - a string becomes a JSON string, quoted, with '"', '\', control
//     characters, '<', '>', '&', U+2028 and U+2029 escaped and invalid UTF-8
//     replaced by U+FFFD;
//   - a json.RawMessage (what Body, Claim and the json function return) is
//     written as it is: it holds one complete JSON value;
//   - nil is null; booleans and numbers are JSON literals (NaN and the
//     infinities are an error);
//   - anything else is encoded with encoding/json.
//
// So {"id": {{.Param "id"}}} writes {"id": "42"}, and a query value holding
// quotes, newlines or `", "admin": true` stays inside one JSON string. Write
// actions where a JSON value goes, never inside quotes.
//
// Two functions are added to every template: json, which encodes any value
// (so {{json .Query "tags"}} is the same as {{.Query "tags"}}), and string,
// which turns a JSON value into its text (a JSON string unquoted, another
// value as its JSON), for writing a number field as a string:
// {{.Body "n" | string}} writes "42".
type TemplateData struct {
	s *state
}

// Param returns the path parameter name, or "".
func (d *TemplateData) Param(name string) string {
	if d.s.req == nil {
		return ""
	}
	return d.s.req.Param(name)
}

// Query returns the first value of the query parameter name, or "".
func (d *TemplateData) Query(name string) string {
	if d.s.req == nil {
		return ""
	}
	v, _ := queryValue(d.s.req.HTTP.URL.RawQuery, name)
	return v
}

// Header returns the first value of the request header name, or "".
func (d *TemplateData) Header(name string) string {
	if d.s.req == nil {
		return ""
	}
	return d.s.req.HTTP.Header.Get(name)
}

// ReplyHeader returns the first value of the reply header name, or "" (and
// always "" in a request transform).
func (d *TemplateData) ReplyHeader(name string) string {
	if d.s.resp == nil {
		return ""
	}
	return d.s.resp.Header.Get(name)
}

// Method returns the request method.
func (d *TemplateData) Method() string {
	if d.s.req == nil {
		return ""
	}
	return d.s.req.HTTP.Method
}

// Path returns the request path.
func (d *TemplateData) Path() string {
	if d.s.req == nil {
		return ""
	}
	return d.s.req.HTTP.URL.Path
}

// Status returns the reply status, or 0 in a request transform.
func (d *TemplateData) Status() int {
	if d.s.resp == nil {
		return 0
	}
	if d.s.resp.Status == 0 {
		return 200
	}
	return d.s.resp.Status
}

// Subject returns the authenticated principal's subject, or "".
func (d *TemplateData) Subject() string {
	if d.s.req == nil || d.s.req.Principal == nil {
		return ""
	}
	return d.s.req.Principal.Subject
}

// ClientIP returns the client's address.
func (d *TemplateData) ClientIP() string {
	v := Value{kind: valueClientIP}
	s, _ := v.plain(&d.s.env)
	return s
}

// RequestID returns the request's ID (see RequestID).
func (d *TemplateData) RequestID() string {
	v := Value{kind: valueRequestID}
	s, _ := v.plain(&d.s.env)
	return s
}

// Claim returns the principal's claim at path (in the package's path
// syntax) as JSON, or null.
func (d *TemplateData) Claim(path string) (json.RawMessage, error) {
	p, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	v := Value{kind: valueClaim, path: p}
	r, ok := v.claim(&d.s.env)
	if !ok {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(r.Raw), nil
}

// Body returns the value at path (in the package's path syntax; "#" reads
// an array) of the JSON body being transformed, or null when it is
// missing. A body that is not JSON fails the template (400 for a request,
// 502 for a reply).
func (d *TemplateData) Body(path string) (json.RawMessage, error) {
	p, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	doc, ok, err := d.s.jsonBody()
	if err != nil {
		return nil, err
	}
	if !ok {
		return json.RawMessage("null"), nil
	}
	r := gjson.Get(view(doc), p.gjson)
	if !r.Exists() {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(r.Raw), nil
}

// templateStep is Template.
type templateStep struct {
	t *template.Template
}

var builtinFuncs = template.FuncMap{
	escaperName: printJSON,
	"json":      escapeJSON,
	"string":    jsonText,
}

// printJSON is the escaper every action ends with. It returns a string:
// text/template would print a json.RawMessage as a list of numbers.
func printJSON(v any) (string, error) {
	b, err := escapeJSON(v)
	return string(b), err
}

func compileTemplate(op *Op, inResponse bool) (*templateStep, error) {
	t := template.New("body").Option("missingkey=error").Funcs(builtinFuncs)
	if op.funcs != nil {
		for name := range op.funcs {
			if name == escaperName {
				return nil, fmt.Errorf("function name %s is reserved", name)
			}
		}
		t.Funcs(op.funcs)
	}
	if _, err := t.Parse(op.text); err != nil {
		return nil, err
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		if err := escapeList(tt.Tree.Root); err != nil {
			return nil, err
		}
	}
	return &templateStep{t: t}, nil
}

// escapeList makes every action under n print through the JSON escaper
// (the way html/template adds its escapers), and checks the literal paths
// given to Body and Claim.
func escapeList(n *parse.ListNode) error {
	if n == nil {
		return nil
	}
	for _, c := range n.Nodes {
		if err := escapeNode(c); err != nil {
			return err
		}
	}
	return nil
}

func escapeNode(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ActionNode:
		if err := checkPaths(n.Pipe); err != nil {
			return err
		}
		if len(n.Pipe.Decl) == 0 {
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
				NodeType: parse.NodeCommand,
				Pos:      n.Position(),
				Args:     []parse.Node{parse.NewIdentifier(escaperName).SetTree(nil).SetPos(n.Position())},
			})
		}
	case *parse.IfNode:
		return escapeBranch(&n.BranchNode)
	case *parse.RangeNode:
		return escapeBranch(&n.BranchNode)
	case *parse.WithNode:
		return escapeBranch(&n.BranchNode)
	case *parse.ListNode:
		return escapeList(n)
	}
	return nil
}

func escapeBranch(b *parse.BranchNode) error {
	if err := checkPaths(b.Pipe); err != nil {
		return err
	}
	if err := escapeList(b.List); err != nil {
		return err
	}
	return escapeList(b.ElseList)
}

// checkPaths compiles the string literals given to .Body and .Claim, so a
// bad path fails at construction.
func checkPaths(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for _, cmd := range p.Cmds {
		for i, a := range cmd.Args {
			f, ok := a.(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 || (f.Ident[0] != "Body" && f.Ident[0] != "Claim") || i+1 >= len(cmd.Args) {
				continue
			}
			if s, ok := cmd.Args[i+1].(*parse.StringNode); ok {
				if _, err := parsePath(s.Text); err != nil {
					return fmt.Errorf(".%s %s: %w", f.Ident[0], quote(s.Text), err)
				}
			}
		}
	}
	return nil
}

// escapeJSON writes v as JSON, by the rules documented on TemplateData.
func escapeJSON(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if x == nil {
			return json.RawMessage("null"), nil
		}
		return x, nil
	case string:
		return appendJSONString(nil, x), nil
	case []byte:
		return appendJSONString(nil, string(x)), nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("NaN and infinities have no JSON form")
		}
		return strconv.AppendFloat(nil, x, 'g', -1, 64), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// jsonText is the template function string.
func jsonText(v any) (string, error) {
	switch x := v.(type) {
	case json.RawMessage:
		r := gjson.ParseBytes(x)
		if r.Type == gjson.String {
			return r.Str, nil
		}
		return string(x), nil
	case string:
		return x, nil
	case nil:
		return "", nil
	}
	b, err := escapeJSON(v)
	if err != nil {
		return "", err
	}
	return jsonText(b)
}

func (ts *templateStep) run(ctx context.Context, s *state) error {
	if s.resp != nil && !s.bodyApplies() {
		return nil
	}
	var buf bytes.Buffer
	d := &TemplateData{s: s}
	if err := ts.t.Execute(&buf, d); err != nil {
		// A body that is not JSON answers with its own status.
		if p, ok := errors.AsType[*gateway.Error](err); ok {
			return p
		}
		return s.internal(fmt.Errorf("Template: %w", err))
	}
	out := buf.Bytes()
	if !scanJSON(out, nil) {
		return s.internal(errors.New("Template: the output is not JSON (are actions inside quotes?)"))
	}
	s.setBody(out, formatJSON, jsonContentType)
	return nil
}
