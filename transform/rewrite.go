package transform

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// maxPatternParams bounds the parameters of a RewritePath pattern, so the
// captured values fit in an array on the stack.
const maxPatternParams = 16

// pathRewrite is RewritePath.
type pathRewrite struct {
	pattern []patSeg // nil: match every path, params from the route
	names   []string // parameter names of the pattern, in order
	tmpl    []tmplPart
	hint    int // length of the literal parts, to size the result
}

type patSeg struct {
	lit   string
	param int  // index into names, or -1 for a literal
	rest  bool // a final {name...}
}

type tmplPart struct {
	lit   string
	name  string // "" for a literal
	rest  bool   // {name...}: may hold '/'
	index int    // index of name in the pattern's names, or -1
}

func compileRewrite(pattern, template string) (*pathRewrite, error) {
	rw := &pathRewrite{}
	if pattern != "" {
		if pattern[0] != '/' {
			return nil, fmt.Errorf("pattern %s must begin with '/'", quote(pattern))
		}
		parts := strings.Split(pattern[1:], "/")
		for i, part := range parts {
			if !strings.ContainsAny(part, "{}") {
				rw.pattern = append(rw.pattern, patSeg{lit: part, param: -1})
				continue
			}
			if part[0] != '{' || part[len(part)-1] != '}' || strings.Count(part, "{") != 1 || strings.Count(part, "}") != 1 {
				return nil, fmt.Errorf("pattern %s: segment %s: a parameter must be a whole segment, like {id}", quote(pattern), quote(part))
			}
			name := part[1 : len(part)-1]
			seg := patSeg{param: len(rw.names)}
			if n, ok := strings.CutSuffix(name, "..."); ok {
				if i != len(parts)-1 {
					return nil, fmt.Errorf("pattern %s: {name...} must be the last segment", quote(pattern))
				}
				name, seg.rest = n, true
			}
			if name == "" {
				return nil, fmt.Errorf("pattern %s: empty parameter name", quote(pattern))
			}
			for _, n := range rw.names {
				if n == name {
					return nil, fmt.Errorf("pattern %s: parameter %s appears twice", quote(pattern), quote(name))
				}
			}
			rw.names = append(rw.names, name)
			rw.pattern = append(rw.pattern, seg)
		}
		if len(rw.names) > maxPatternParams {
			return nil, fmt.Errorf("pattern %s: more than %d parameters", quote(pattern), maxPatternParams)
		}
	}
	if template == "" || template[0] != '/' {
		return nil, fmt.Errorf("template %s must begin with '/'", quote(template))
	}
	rest := template
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("template %s: unbalanced '}'", quote(template))
			}
			rw.tmpl = append(rw.tmpl, tmplPart{lit: rest, index: -1})
			rw.hint += len(rest)
			break
		}
		if i > 0 {
			if strings.IndexByte(rest[:i], '}') >= 0 {
				return nil, fmt.Errorf("template %s: unbalanced '}'", quote(template))
			}
			rw.tmpl = append(rw.tmpl, tmplPart{lit: rest[:i], index: -1})
			rw.hint += i
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template %s: unclosed '{'", quote(template))
		}
		name := rest[i+1 : i+j]
		part := tmplPart{index: -1}
		if n, ok := strings.CutSuffix(name, "..."); ok {
			name, part.rest = n, true
		}
		if name == "" || strings.ContainsAny(name, "{/") {
			return nil, fmt.Errorf("template %s: bad parameter %s", quote(template), quote(rest[i:i+j+1]))
		}
		part.name = name
		for k, n := range rw.names {
			if n == name {
				part.index = k
			}
		}
		if rw.pattern != nil && part.index < 0 {
			return nil, fmt.Errorf("template %s: parameter %s is not in the pattern %s", quote(template), quote(name), quote(pattern))
		}
		rw.tmpl = append(rw.tmpl, part)
		rest = rest[i+j+1:]
	}
	return rw, nil
}

// match matches p against the pattern and fills vals.
func (rw *pathRewrite) match(p string, vals *[maxPatternParams]string) bool {
	if rw.pattern == nil {
		return true
	}
	if p == "" || p[0] != '/' {
		return false
	}
	rest := p[1:]
	for i, seg := range rw.pattern {
		if seg.rest {
			vals[seg.param] = rest
			return true
		}
		var s string
		var more bool
		s, rest, more = strings.Cut(rest, "/")
		last := i == len(rw.pattern)-1
		if seg.param < 0 {
			if s != seg.lit {
				return false
			}
		} else {
			if s == "" {
				return false
			}
			vals[seg.param] = s
		}
		if last {
			return !more
		}
		if !more {
			// The path ended; only a final {rest...} may match nothing.
			next := rw.pattern[i+1]
			if next.rest && i+1 == len(rw.pattern)-1 {
				vals[next.param] = ""
				return true
			}
			return false
		}
	}
	return rest == ""
}

func (rw *pathRewrite) run(req *gateway.Request) error {
	var vals [maxPatternParams]string
	u := req.HTTP.URL
	if !rw.match(u.Path, &vals) {
		return nil
	}
	var b strings.Builder
	b.Grow(rw.hint + 32)
	for _, part := range rw.tmpl {
		if part.name == "" {
			b.WriteString(part.lit)
			continue
		}
		var v string
		if part.index >= 0 {
			v = vals[part.index]
		} else {
			v = req.Param(part.name)
			if v == "" && !hasParam(req, part.name) {
				return &gateway.Error{Status: http.StatusInternalServerError, Detail: "the gateway failed to handle the request",
					Err: fmt.Errorf("transform: RewritePath: the route captured no parameter %s", quote(part.name))}
			}
		}
		if !part.rest && strings.IndexByte(v, '/') >= 0 {
			return gateway.Errorf(http.StatusBadRequest, "a path parameter holds a '/', which the rewritten path cannot take")
		}
		b.WriteString(v)
	}
	np := b.String()
	if !cleanPath(np) {
		return gateway.Errorf(http.StatusBadRequest, "the rewritten path would have an empty, '.' or '..' segment")
	}
	u.Path, u.RawPath = np, ""
	return nil
}

func hasParam(req *gateway.Request, name string) bool {
	for _, p := range req.Params() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// cleanPath reports whether p begins with '/' and has no empty (but a
// trailing one), "." or ".." segment.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	rest := p[1:]
	for {
		seg, more, found := strings.Cut(rest, "/")
		if seg == "." || seg == ".." || (seg == "" && found) {
			return false
		}
		if !found {
			return true
		}
		rest = more
	}
}

// prefixRewrite is ReplacePathPrefix.
type prefixRewrite struct {
	prefix, repl string
}

func compilePrefix(prefix, repl string) (*prefixRewrite, error) {
	if prefix == "" || prefix[0] != '/' || !cleanPath(prefix) {
		return nil, fmt.Errorf("prefix %s must be a clean path beginning with '/'", quote(prefix))
	}
	if repl != "" && (repl[0] != '/' || !cleanPath(repl)) {
		return nil, fmt.Errorf("replacement %s must be empty or a clean path beginning with '/'", quote(repl))
	}
	if strings.ContainsAny(prefix+repl, "{}") {
		return nil, errors.New("prefixes are literal; use RewritePath for parameters")
	}
	return &prefixRewrite{prefix: strings.TrimSuffix(prefix, "/"), repl: strings.TrimSuffix(repl, "/")}, nil
}

func (pr *prefixRewrite) run(req *gateway.Request) {
	u := req.HTTP.URL
	p := u.Path
	var rest string
	switch {
	case pr.prefix == "":
		rest = p
	case p == pr.prefix:
		rest = ""
	case strings.HasPrefix(p, pr.prefix) && p[len(pr.prefix)] == '/':
		rest = p[len(pr.prefix):]
	default:
		return
	}
	np := pr.repl + rest
	if np == "" {
		np = "/"
	}
	u.Path, u.RawPath = np, ""
}
