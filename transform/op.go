package transform

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"text/template"
)

// An Op is one operation of a transform: build it with one of the
// functions of this package (Set, Rename, SetHeader, RewritePath,
// MapStatus, JSONToXML, ...) and list it in Config.Ops or pass it to
// NewBody. An Op is only a description: nothing is checked until the
// transform is built, which fails on a bad Op with its index in the list.
type Op struct {
	kind   opKind
	path   string
	to     string
	paths  []string
	value  Value
	status int
	toCode int
	text   string
	xml    XMLConfig
	rid    RequestIDConfig
	funcs  template.FuncMap
}

type opKind uint8

const (
	opInvalid opKind = iota
	// field operations
	opSet
	opDefault
	opRename
	opDelete
	opKeep
	opWrap
	opUnwrap
	// headers
	opSetHeader
	opAddHeader
	opDeleteHeader
	// path and query
	opRewritePath
	opReplacePathPrefix
	opSetQuery
	opAddQuery
	opDeleteQuery
	opRenameQuery
	// enrichment
	opAssignRequestID
	// replies
	opMapStatus
	opStatusWhen
	// whole bodies
	opTemplate
	opJSONToXML
	opXMLToJSON
)

var opNames = [...]string{
	opInvalid:           "invalid",
	opSet:               "Set",
	opDefault:           "Default",
	opRename:            "Rename",
	opDelete:            "Delete",
	opKeep:              "Keep",
	opWrap:              "Wrap",
	opUnwrap:            "Unwrap",
	opSetHeader:         "SetHeader",
	opAddHeader:         "AddHeader",
	opDeleteHeader:      "DeleteHeader",
	opRewritePath:       "RewritePath",
	opReplacePathPrefix: "ReplacePathPrefix",
	opSetQuery:          "SetQuery",
	opAddQuery:          "AddQuery",
	opDeleteQuery:       "DeleteQuery",
	opRenameQuery:       "RenameQuery",
	opAssignRequestID:   "AssignRequestID",
	opMapStatus:         "MapStatus",
	opStatusWhen:        "StatusWhen",
	opTemplate:          "Template",
	opJSONToXML:         "JSONToXML",
	opXMLToJSON:         "XMLToJSON",
}

func (k opKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "invalid"
}

func (k opKind) isField() bool { return k >= opSet && k <= opUnwrap }

// Set sets the member at path to v; a new member goes after the others.
// A missing v removes the member instead, so a body field meant to carry,
// say, the caller's identity never keeps a value the client sent. Missing
// parents are created as objects (as arrays, padded with null, for an
// all-digit key); setting below a value that is not an object or an array
// replaces that value, and a key below an array fails with ErrMismatch
// (sjson's rules). The body itself must be an object, or an array for a
// path that starts with an index.
//
// With "#" in path, Set works in every element of the array: Set
// ("items.#.currency", String("EUR")). Elements that are not objects are
// left alone. A Field value whose path has the same "#" prefix is read from
// the same element: Set("items.#.total", Field("items.#.price")).
func Set(path string, v Value) Op { return Op{kind: opSet, path: path, value: v} }

// Default sets the member at path to v only where the member is missing (a
// member holding null is not missing). A missing v does nothing. "#" works
// as for Set.
func Default(path string, v Value) Op { return Op{kind: opDefault, path: path, value: v} }

// Rename moves the value at from to the path to, replacing what was there,
// and does nothing when from is missing. Renaming a member within its
// object keeps its place among the members. With "#", both paths must have
// the same "#" prefix, and the move happens inside every element:
// Rename("items.#.price", "items.#.amount").
func Rename(from, to string) Op { return Op{kind: opRename, path: from, to: to} }

// Delete removes the members at paths; missing ones are skipped. With "#",
// the member is removed from every element: Delete("items.#.cost").
func Delete(paths ...string) Op { return Op{kind: opDelete, paths: paths} }

// Keep keeps only the members at paths (an allow-list) and removes
// everything else, keeping the order of the document. Paths name object
// members; "#" keeps the listed members of every element of an array:
// Keep("id", "items.#.sku", "items.#.qty"). A kept path whose value has
// another shape (a string where an object was expected) is dropped; in an
// array such an element becomes null, so indexes do not shift. When paths
// begin with "#", the body is an array whose elements are kept.
func Keep(paths ...string) Op { return Op{kind: opKeep, paths: paths} }

// Wrap makes the whole body the value of the member at path:
// Wrap("data") turns {"id":1} into {"data":{"id":1}}. Every segment of
// path is a key (digits included); "#" is not allowed.
func Wrap(path string) Op { return Op{kind: opWrap, path: path} }

// Unwrap replaces the whole body with the value at path: Unwrap("data")
// turns {"data":{"id":1}} into {"id":1}. A body without the member fails
// with ErrMismatch (400 for a request, 502 for a reply).
func Unwrap(path string) Op { return Op{kind: opUnwrap, path: path} }

// SetHeader replaces every value of the header name with v. Whatever the
// message carried under that name is removed first, even when v is
// missing, so a client cannot supply a header the gateway sets. A value
// with control characters fails the request (400) or reply (502).
func SetHeader(name string, v Value) Op { return Op{kind: opSetHeader, path: name, value: v} }

// AddHeader adds v as one more value of the header name, when v is not
// missing.
func AddHeader(name string, v Value) Op { return Op{kind: opAddHeader, path: name, value: v} }

// DeleteHeader removes the headers names.
func DeleteHeader(names ...string) Op { return Op{kind: opDeleteHeader, paths: names} }

// RewritePath rewrites the request path from a pattern to a template:
// RewritePath("/accounts/{id}", "/v2/customers/{id}/account"). The pattern
// has the Router's syntax ("{name}" a segment, a final "{name...}" the rest
// of the path); a path that does not match it is left alone. An empty
// pattern matches every path and the template takes its parameters from the
// route (gateway.Request.Param). Every name of the template must be in a
// non-empty pattern. A value that would make a segment "." or "..", or put
// a '/' in a "{name}" segment, fails the request with 400. Only requests.
func RewritePath(pattern, template string) Op {
	return Op{kind: opRewritePath, path: pattern, to: template}
}

// ReplacePathPrefix replaces the leading segments prefix of the request
// path with replacement: ReplacePathPrefix("/api", "/internal") sends
// "/api/users" as "/internal/users". It matches on segment boundaries
// ("/api" does not match "/apix"); other paths are left alone. Only
// requests.
func ReplacePathPrefix(prefix, replacement string) Op {
	return Op{kind: opReplacePathPrefix, path: prefix, to: replacement}
}

// SetQuery gives the query parameter name the single value v, where the
// parameter first appeared or at the end; a missing v removes the
// parameter. Other parameters keep their order and encoding. Only
// requests.
func SetQuery(name string, v Value) Op { return Op{kind: opSetQuery, path: name, value: v} }

// AddQuery appends name=v to the query when v is not missing. Only
// requests.
func AddQuery(name string, v Value) Op { return Op{kind: opAddQuery, path: name, value: v} }

// DeleteQuery removes the query parameters names. Only requests.
func DeleteQuery(names ...string) Op { return Op{kind: opDeleteQuery, paths: names} }

// RenameQuery renames the query parameter from to to, in place; values the
// client sent under to are removed. Only requests.
func RenameQuery(from, to string) Op { return Op{kind: opRenameQuery, path: from, to: to} }

// AssignRequestID gives the request an ID, sets it in the configured
// header (removing what the client sent there) and keeps it for RequestID
// values, which can then copy it into the reply or the body. Only
// requests.
func AssignRequestID(cfg RequestIDConfig) Op { return Op{kind: opAssignRequestID, rid: cfg} }

// MapStatus changes a reply with status from to status to. When to has no
// body (204, 304) the body is dropped unread, with its Content-Type: so
// MapStatus(404, 204) answers "nothing here" to the client without
// buffering. Only replies.
func MapStatus(from, to int) Op { return Op{kind: opMapStatus, status: from, toCode: to} }

// StatusWhen changes the reply's status to status when its JSON body has a
// value other than null at path, such as a 200 that reports
// {"error":{...}}: StatusWhen("error", 502). The body is kept; follow with
// Template or Keep to reshape it. Like every body operation it runs on 2xx
// replies only, unless Config.AllStatuses is set. Only replies.
func StatusWhen(path string, status int) Op {
	return Op{kind: opStatusWhen, path: path, toCode: status}
}

// Template replaces the body with the output of a text/template, which
// must be JSON; Content-Type becomes application/json. The template sees a
// *TemplateData as dot and every action's value is written as JSON (see
// TemplateData for the exact rules), so a template cannot be made to emit
// broken or injected JSON by the values it prints. funcs, which may be
// nil, adds functions to the template. A template that does not parse
// fails at construction; one whose output is not JSON fails the request
// with 500 (a configuration mistake). In a response transform it runs
// where body operations run: on 2xx replies, unless Config.AllStatuses.
func Template(text string, funcs template.FuncMap) Op {
	return Op{kind: opTemplate, text: text, funcs: funcs}
}

// JSONToXML converts the JSON body to XML by the rules of XMLCodec and sets
// Content-Type to "application/xml; charset=utf-8", for a backend that
// speaks XML. JSON the rules cannot express (a key that is not an XML name,
// an array of arrays as a member) fails the request with 400 (502 for a
// reply).
func JSONToXML(cfg XMLConfig) Op { return Op{kind: opJSONToXML, xml: cfg} }

// XMLToJSON converts the XML body to JSON by the rules of XMLCodec and sets
// Content-Type to "application/json", so an XML backend looks like a JSON
// API to the client. A body that is not well-formed XML, has a DOCTYPE,
// nests deeper or is larger than the configured limits fails with 502 for
// a reply (400 for a request).
func XMLToJSON(cfg XMLConfig) Op { return Op{kind: opXMLToJSON, xml: cfg} }

// compileField compiles a field operation. inResponse matters only for
// the values it may use.
func compileField(op *Op, inResponse bool) (fieldOp, error) {
	switch op.kind {
	case opSet, opDefault:
		p, err := parsePath(op.path)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", quote(op.path), err)
		}
		sc, dst, err := splitScope(p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", quote(op.path), err)
		}
		if err := checkValue(&op.value, inResponse); err != nil {
			return nil, err
		}
		o := &setOp{scope: sc, dst: dst, val: op.value, def: op.kind == opDefault}
		if op.value.kind == valueField && len(sc.levels) > 0 {
			if vs, vin, err := splitScope(op.value.path); err == nil && sameScope(vs, sc) {
				o.rel = &vin
			}
		}
		return o, nil
	case opRename:
		from, err := parsePath(op.path)
		if err != nil {
			return nil, fmt.Errorf("from %s: %w", quote(op.path), err)
		}
		to, err := parsePath(op.to)
		if err != nil {
			return nil, fmt.Errorf("to %s: %w", quote(op.to), err)
		}
		fs, fin, err := splitScope(from)
		if err != nil {
			return nil, fmt.Errorf("from %s: %w", quote(op.path), err)
		}
		ts, tin, err := splitScope(to)
		if err != nil {
			return nil, fmt.Errorf("to %s: %w", quote(op.to), err)
		}
		if !sameScope(fs, ts) {
			return nil, fmt.Errorf("from %s and to %s must have the same '#' prefix: a value moves within one element", quote(op.path), quote(op.to))
		}
		if fin.gjson == tin.gjson {
			return nil, fmt.Errorf("from and to are the same path %s", quote(op.path))
		}
		same := len(fin.segs) == len(tin.segs)
		for i := 0; same && i < len(fin.segs)-1; i++ {
			same = fin.segs[i] == tin.segs[i]
		}
		return &renameOp{scope: fs, from: fin, to: tin, sameParent: same}, nil
	case opDelete:
		if len(op.paths) == 0 {
			return nil, errors.New("no paths")
		}
		o := &deleteOp{}
		for _, s := range op.paths {
			p, err := parsePath(s)
			if err != nil {
				return nil, fmt.Errorf("path %s: %w", quote(s), err)
			}
			sc, in, err := splitScope(p)
			if err != nil {
				return nil, fmt.Errorf("path %s: %w", quote(s), err)
			}
			o.targets = append(o.targets, scopedPath{sc, in})
		}
		return o, nil
	case opKeep:
		if len(op.paths) == 0 {
			return nil, errors.New("no paths (Keep with nothing to keep would empty the body)")
		}
		root := &keepNode{}
		for _, s := range op.paths {
			p, err := parsePath(s)
			if err != nil {
				return nil, fmt.Errorf("path %s: %w", quote(s), err)
			}
			if err := root.add(p.segs); err != nil {
				return nil, fmt.Errorf("path %s: %w", quote(s), err)
			}
		}
		if root.leaf {
			return nil, errors.New("nothing to remove")
		}
		return &keepOp{root: root}, nil
	case opWrap:
		p, err := parsePath(op.path)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", quote(op.path), err)
		}
		o := &wrapOp{}
		for _, s := range p.segs {
			if s.each {
				return nil, fmt.Errorf("path %s: Wrap cannot use '#'", quote(op.path))
			}
			o.prefix = append(o.prefix, '{')
			o.prefix = appendJSONString(o.prefix, s.key)
			o.prefix = append(o.prefix, ':')
			o.suffix = append(o.suffix, '}')
		}
		return o, nil
	case opUnwrap:
		p, err := parsePath(op.path)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", quote(op.path), err)
		}
		return &unwrapOp{p: p}, nil
	}
	return nil, errors.New("not a field operation")
}

// checkValue reports a bad Value, or one the side cannot read.
func checkValue(v *Value, inResponse bool) error {
	if err := v.check(); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	if v.kind == valueReplyHeader && !inResponse {
		return errors.New("value: ReplyHeader can be read only in a response transform")
	}
	return nil
}

// checkHeaderName validates and canonicalises a header name of an op.
func checkHeaderName(name string) (string, error) {
	if !validHeaderName(name) {
		return "", fmt.Errorf("%s is not a header name", quote(name))
	}
	c := http.CanonicalHeaderKey(name)
	switch c {
	case "Content-Length", "Transfer-Encoding", "Host", "Connection", "Te", "Trailer", "Upgrade", "Keep-Alive", "Proxy-Connection":
		// These frame the message; the gateway owns them.
		return "", fmt.Errorf("%s frames the message and cannot be changed by a transform", c)
	}
	return c, nil
}

func checkQueryName(name string) error {
	if name == "" {
		return errors.New("empty query parameter name")
	}
	return nil
}

func queryEscape(name string) string { return url.QueryEscape(name) }

// checkStatus validates a status code an operation sends.
func checkStatus(code int) error {
	if code < 200 || code > 599 {
		return fmt.Errorf("status %d: a reply status must be 200 to 599", code)
	}
	return nil
}
