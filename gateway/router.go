package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
)

// A Route is one entry of a Router's table: what a request must look like,
// and the Handler (usually a *Pipeline) that serves it. Fields left zero
// match anything.
type Route struct {
	// Name identifies the route in errors, logs and metrics; "" means one
	// is made from the method, host and path.
	Name string

	// Methods the route serves; nil means any method except CONNECT and
	// TRACE, which must be named to be served. A route that serves GET also
	// serves HEAD.
	Methods []string

	// Host is an exact host name ("api.example.com") or a wildcard for one
	// label ("*.example.com" matches "a.example.com", not "example.com" or
	// "a.b.example.com"). The port of the request's Host is ignored, and
	// the comparison ignores case.
	Host string

	// Path is the pattern the whole path must match, such as "/users" or
	// "/users/{id}/orders". A segment "{name}" matches any one non-empty
	// segment; a final "{name...}" matches the rest of the path (and makes
	// the route a prefix route). A trailing slash is significant.
	Path string

	// PathPrefix, used instead of Path, matches the path and everything
	// below it on segment boundaries: "/v2" matches "/v2" and "/v2/users",
	// not "/v2example". It may contain "{name}" segments.
	PathPrefix string

	// Headers the request must carry, by name (case-insensitive). An empty
	// value only requires the field to be present; otherwise one of its
	// values must equal the given one.
	Headers map[string]string

	// Query parameters the request must carry; an empty value only requires
	// the parameter to be present.
	Query map[string]string

	// Version is the API version the route serves ("v2"), as selected by
	// the Router's Versioning; "" serves any version.
	Version string

	// Handler serves the matched request. Required.
	Handler Handler

	// MaxBodyBytes overrides Options.MaxBodyBytes for this route.
	MaxBodyBytes int64
}

// Versioning says where a Router reads the API version of a request.
type Versioning struct {
	// PathPrefix puts the version as the first path segment: a route with
	// Version "v2" and Path "/users" matches "/v2/users", and the upstream
	// receives "/v2/users".
	PathPrefix bool
	// Header names a request header that holds the version, such as
	// "Api-Version".
	Header string
	// MediaType is a vendor media type prefix, such as "application/vnd.acme":
	// "Accept: application/vnd.acme.v2+json" selects version "v2".
	MediaType string
	// Default is the version of a request that names none (Header and
	// MediaType only).
	Default string
}

// RouterConfig configures a Router.
type RouterConfig struct {
	Options
	Versioning Versioning
	Routes     []Route
}

// A Router serves each request with the route that matches it best. It is an
// http.Handler. Its table is built once and can be replaced while serving.
//
// Precedence, from first to last rule, among routes that match a request:
//
//  1. A Path route beats a prefix route (PathPrefix or a final {name...}).
//  2. Among Path routes, segment by segment from the left, a literal beats
//     a {name}. Among prefix routes, the longer prefix (in segments) wins,
//     then a literal beats a {name} as before.
//  3. An exact Host beats a wildcard Host beats no Host.
//  4. A route that names the method beats one that serves any method.
//  5. A route that names a Version beats one that serves any version.
//  6. More header matchers beat fewer.
//  7. More query matchers beat fewer.
//  8. The route declared first wins.
//
// Two routes that would tie on every rule but the last conflict, and NewRouter
// and Replace refuse them.
//
// No route for the path: 404. Routes for the path, but none for the method:
// 405 with an Allow field listing the methods that would match.
type Router struct {
	opts  Options
	vers  Versioning
	table atomic.Pointer[table]
}

// NewRouter checks and compiles the routes and returns a Router.
func NewRouter(cfg RouterConfig) (*Router, error) {
	rt := &Router{opts: cfg.Options, vers: cfg.Versioning}
	if err := rt.Replace(cfg.Routes); err != nil {
		return nil, err
	}
	return rt, nil
}

// Replace compiles routes into a new table and swaps it in atomically.
// Requests already matched finish on the table they matched; new requests
// use the new one. On error the current table stays.
func (rt *Router) Replace(routes []Route) error {
	t, err := compile(routes, rt.vers, &rt.opts)
	if err != nil {
		return err
	}
	rt.table.Store(t)
	return nil
}

// Routes returns a copy of the routes the Router serves now.
func (rt *Router) Routes() []Route {
	t := rt.table.Load()
	out := make([]Route, len(t.routes))
	for i, r := range t.routes {
		out[i] = r.Route
	}
	return out
}

// ServeHTTP routes r and serves it through the matched route's Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := rt.table.Load()
	req, perr := newServerRequest(w, r, &rt.opts)
	if perr != nil {
		writeError(w, nil, perr, &rt.opts)
		return
	}
	version := t.requestVersion(r)
	host := requestHost(r.Host)
	cr := t.match(req, host, version)
	if cr == nil {
		writeError(w, req, t.noMatch(req, host, version), &rt.opts)
		return
	}
	req.route = &cr.Route
	req.Version = version
	if cr.Version != "" {
		req.Version = cr.Version
	}
	req.params = cr.params(req.url.Path, req.paramBuf[:0])
	serve(w, req, cr.Handler, &rt.opts, cr.maxBody)
}

// noMatch returns the 404 or 405 for a request no route serves.
func (t *table) noMatch(req *Request, host, version string) *Error {
	var allow []string
	for cr := range t.candidates(req.url.Path) {
		if cr.matchesExceptMethod(req.HTTP, host, version) {
			for _, m := range cr.methods {
				if !slices.Contains(allow, m) {
					allow = append(allow, m)
				}
			}
		}
	}
	if len(allow) == 0 {
		return &Error{Status: http.StatusNotFound, Detail: "no route matches the request"}
	}
	sort.Strings(allow)
	return (&Error{Status: http.StatusMethodNotAllowed, Detail: "the route does not serve method " + req.HTTP.Method}).
		WithHeader("Allow", strings.Join(allow, ", "))
}

// requestHost returns the host of a Host field without port, lower case,
// without a trailing dot.
func requestHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

func (t *table) requestVersion(r *http.Request) string {
	v := t.vers
	if v.Header != "" {
		if s := r.Header.Get(v.Header); s != "" {
			return s
		}
	}
	if v.MediaType != "" {
		for _, field := range [...]string{"Accept", "Content-Type"} {
			for _, s := range r.Header[field] {
				if ver := vendorVersion(s, v.MediaType); ver != "" {
					return ver
				}
			}
		}
	}
	if v.Header != "" || v.MediaType != "" {
		return v.Default
	}
	return ""
}

// vendorVersion finds "<prefix>.<version>" (followed by "+suffix", a
// parameter or the end) in a media type list.
func vendorVersion(list, prefix string) string {
	for list != "" {
		item := list
		if i := strings.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if i := strings.IndexByte(item, ';'); i >= 0 {
			item = item[:i]
		}
		item = strings.TrimSpace(item)
		if len(item) <= len(prefix)+1 || !strings.EqualFold(item[:len(prefix)], prefix) || item[len(prefix)] != '.' {
			continue
		}
		ver := item[len(prefix)+1:]
		if i := strings.IndexByte(ver, '+'); i >= 0 {
			ver = ver[:i]
		}
		if ver != "" {
			return ver
		}
	}
	return ""
}

// segment is one compiled path-pattern segment.
type segment struct {
	lit   string
	param string // name, when a parameter
	rest  bool   // a final {name...}
}

type hostRank int

const (
	hostAny hostRank = iota
	hostWildcard
	hostExact
)

type compiledRoute struct {
	Route
	idx       int
	methods   []string // upper case; nil = any
	host      string   // exact host, or ".example.com" for a wildcard
	hostRank  hostRank
	segs      []segment
	prefix    bool
	headers   []matcher
	query     []matcher
	maxBody   int64
	shapeKey  string // for conflict detection
	matchKeys string
}

type matcher struct{ name, value string }

type node struct {
	static   map[string]*node
	param    *node
	exact    []*compiledRoute
	prefixes []*compiledRoute
}

type table struct {
	root   node
	routes []*compiledRoute
	vers   Versioning
}

func compile(routes []Route, vers Versioning, o *Options) (*table, error) {
	t := &table{vers: vers}
	seen := make(map[string]*compiledRoute)
	for i, r := range routes {
		cr, err := compileRoute(i, r, vers, o)
		if err != nil {
			return nil, err
		}
		for _, key := range cr.conflictKeys() {
			if other, ok := seen[key]; ok {
				return nil, fmt.Errorf("gateway: route %q conflicts with route %q: same method, host, path and matchers", cr.Name, other.Name)
			}
			seen[key] = cr
		}
		t.routes = append(t.routes, cr)
		n := &t.root
		for _, s := range cr.segs {
			if s.rest {
				break
			}
			n = n.child(s)
		}
		if cr.prefix {
			n.prefixes = append(n.prefixes, cr)
		} else {
			n.exact = append(n.exact, cr)
		}
	}
	t.root.sort()
	return t, nil
}

func (n *node) child(s segment) *node {
	if s.param != "" {
		if n.param == nil {
			n.param = new(node)
		}
		return n.param
	}
	if n.static == nil {
		n.static = make(map[string]*node)
	}
	c, ok := n.static[s.lit]
	if !ok {
		c = new(node)
		n.static[s.lit] = c
	}
	return c
}

func (n *node) sort() {
	slices.SortStableFunc(n.exact, comparePrecedence)
	slices.SortStableFunc(n.prefixes, comparePrecedence)
	for _, c := range n.static {
		c.sort()
	}
	if n.param != nil {
		n.param.sort()
	}
}

// comparePrecedence orders routes that share a path node by rules 3 to 8.
func comparePrecedence(a, b *compiledRoute) int {
	if a.hostRank != b.hostRank {
		return int(b.hostRank) - int(a.hostRank)
	}
	if (a.methods == nil) != (b.methods == nil) {
		if a.methods != nil {
			return -1
		}
		return 1
	}
	if (a.Version == "") != (b.Version == "") {
		if a.Version != "" {
			return -1
		}
		return 1
	}
	if len(a.headers) != len(b.headers) {
		return len(b.headers) - len(a.headers)
	}
	if len(a.query) != len(b.query) {
		return len(b.query) - len(a.query)
	}
	return a.idx - b.idx
}

func compileRoute(idx int, r Route, vers Versioning, o *Options) (*compiledRoute, error) {
	cr := &compiledRoute{Route: r, idx: idx}
	pattern, field := r.Path, "Path"
	if r.PathPrefix != "" {
		if r.Path != "" {
			return nil, fmt.Errorf("gateway: route %s: set Path or PathPrefix, not both", routeLabel(idx, r))
		}
		pattern, field, cr.prefix = r.PathPrefix, "PathPrefix", true
	}
	if pattern == "" {
		return nil, fmt.Errorf("gateway: route %s: Path or PathPrefix is required", routeLabel(idx, r))
	}
	if r.Handler == nil {
		return nil, fmt.Errorf("gateway: route %s: Handler is required", routeLabel(idx, r))
	}
	if vers.PathPrefix && r.Version != "" {
		if strings.ContainsAny(r.Version, "/{}") {
			return nil, fmt.Errorf("gateway: route %s: Version %q cannot be a path segment", routeLabel(idx, r), r.Version)
		}
		if pattern == "/" {
			pattern = "/" + r.Version + "/"
		} else {
			pattern = "/" + r.Version + pattern
		}
	}
	segs, err := parsePattern(pattern, cr.prefix)
	if err != nil {
		return nil, fmt.Errorf("gateway: route %s: %s %q: %w", routeLabel(idx, r), field, pattern, err)
	}
	cr.segs = segs
	if n := len(segs); n > 0 && segs[n-1].rest {
		cr.prefix = true
	}
	for _, m := range r.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || strings.ContainsAny(m, " \t/") {
			return nil, fmt.Errorf("gateway: route %s: Methods: invalid method %q", routeLabel(idx, r), m)
		}
		if !slices.Contains(cr.methods, m) {
			cr.methods = append(cr.methods, m)
		}
	}
	if slices.Contains(cr.methods, http.MethodGet) && !slices.Contains(cr.methods, http.MethodHead) {
		cr.methods = append(cr.methods, http.MethodHead)
	}
	slices.Sort(cr.methods)
	if h := strings.ToLower(strings.TrimSuffix(r.Host, ".")); h != "" {
		if strings.ContainsAny(h, ":/ ") {
			return nil, fmt.Errorf("gateway: route %s: Host %q: must be a host name without port", routeLabel(idx, r), r.Host)
		}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			if rest == "" || strings.Contains(rest, "*") {
				return nil, fmt.Errorf("gateway: route %s: Host %q: a wildcard is \"*.\" followed by a domain", routeLabel(idx, r), r.Host)
			}
			cr.host, cr.hostRank = "."+rest, hostWildcard
		} else if strings.Contains(h, "*") {
			return nil, fmt.Errorf("gateway: route %s: Host %q: '*' is allowed only as the first label", routeLabel(idx, r), r.Host)
		} else {
			cr.host, cr.hostRank = h, hostExact
		}
	}
	for name, value := range r.Headers {
		if name == "" {
			return nil, fmt.Errorf("gateway: route %s: Headers: empty header name", routeLabel(idx, r))
		}
		cr.headers = append(cr.headers, matcher{http.CanonicalHeaderKey(name), value})
	}
	slices.SortFunc(cr.headers, func(a, b matcher) int { return strings.Compare(a.name, b.name) })
	for name, value := range r.Query {
		if name == "" {
			return nil, fmt.Errorf("gateway: route %s: Query: empty parameter name", routeLabel(idx, r))
		}
		cr.query = append(cr.query, matcher{name, value})
	}
	slices.SortFunc(cr.query, func(a, b matcher) int { return strings.Compare(a.name, b.name) })
	cr.maxBody = o.maxBody()
	if r.MaxBodyBytes != 0 {
		cr.maxBody = r.MaxBodyBytes
	}
	if cr.Name == "" {
		cr.Name = defaultName(r, pattern)
	}
	var sb strings.Builder
	for _, s := range segs {
		switch {
		case s.rest:
			sb.WriteString("/{...}")
		case s.param != "":
			sb.WriteString("/{}")
		default:
			sb.WriteString("/" + s.lit)
		}
	}
	if cr.prefix {
		sb.WriteString(" prefix")
	}
	fmt.Fprintf(&sb, "|%s|%s|%v|%v", cr.host, strings.ToLower(cr.Version), cr.headers, cr.query)
	cr.shapeKey = sb.String()
	return cr, nil
}

func (cr *compiledRoute) conflictKeys() []string {
	if cr.methods == nil {
		return []string{cr.shapeKey + "|*"}
	}
	keys := make([]string, len(cr.methods))
	for i, m := range cr.methods {
		keys[i] = cr.shapeKey + "|" + m
	}
	return keys
}

func routeLabel(idx int, r Route) string {
	if r.Name != "" {
		return fmt.Sprintf("%q", r.Name)
	}
	return fmt.Sprintf("#%d (%s)", idx, defaultName(r, r.Path+r.PathPrefix))
}

func defaultName(r Route, pattern string) string {
	m := "*"
	if len(r.Methods) > 0 {
		m = strings.Join(r.Methods, ",")
	}
	return m + " " + r.Host + pattern
}

// parsePattern splits a pattern into segments. A prefix pattern drops a
// trailing slash, since "/v2/" and "/v2" name the same subtree.
func parsePattern(p string, prefix bool) ([]segment, error) {
	if p[0] != '/' {
		return nil, errors.New("must begin with '/'")
	}
	if cleanPath(p) != p {
		return nil, errors.New("must be a clean path (no '//', '.' or '..' segments)")
	}
	if prefix {
		p = strings.TrimSuffix(p, "/")
		if p == "" {
			return nil, nil
		}
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := map[string]bool{}
	for i, part := range parts {
		if !strings.ContainsAny(part, "{}") {
			segs = append(segs, segment{lit: part})
			continue
		}
		if part[0] != '{' || part[len(part)-1] != '}' || strings.Count(part, "{") != 1 || strings.Count(part, "}") != 1 {
			return nil, fmt.Errorf("segment %q: a parameter must be a whole segment, like {id}", part)
		}
		name := part[1 : len(part)-1]
		s := segment{}
		if n, ok := strings.CutSuffix(name, "..."); ok {
			if i != len(parts)-1 {
				return nil, fmt.Errorf("segment %q: {name...} must be the last segment", part)
			}
			if prefix {
				return nil, fmt.Errorf("segment %q: a PathPrefix cannot end in {name...}; use Path", part)
			}
			name, s.rest = n, true
		}
		if name == "" || strings.ContainsAny(name, ". ") {
			return nil, fmt.Errorf("segment %q: invalid parameter name", part)
		}
		if names[name] {
			return nil, fmt.Errorf("parameter %q appears twice", name)
		}
		names[name] = true
		s.param = name
		segs = append(segs, s)
	}
	return segs, nil
}

// candidates yields the routes whose path pattern matches path, in
// precedence order (rules 1 and 2): exact routes in depth-first order, static
// children before the parameter child, then prefix routes, longest first.
func (t *table) candidates(path string) func(yield func(*compiledRoute) bool) {
	return func(yield func(*compiledRoute) bool) {
		var w walker
		w.path = path
		w.yield = yield
		if w.walk(&t.root, 0, 0) {
			return
		}
		// Longest prefix first; a stable sort keeps the static-first order
		// of equally long ones.
		ps := w.prefixes[:w.np]
		for i := 1; i < len(ps); i++ {
			for j := i; j > 0 && ps[j].depth > ps[j-1].depth; j-- {
				ps[j], ps[j-1] = ps[j-1], ps[j]
			}
		}
		for _, p := range ps {
			for _, cr := range p.n.prefixes {
				if !yield(cr) {
					return
				}
			}
		}
	}
}

type prefixHit struct {
	n     *node
	depth int
}

type walker struct {
	path     string
	yield    func(*compiledRoute) bool
	prefixes [32]prefixHit
	np       int
}

// walk visits n, which matched the path up to pos, and reports whether the
// consumer stopped the iteration.
func (w *walker) walk(n *node, pos, depth int) bool {
	if len(n.prefixes) > 0 && w.np < len(w.prefixes) {
		w.prefixes[w.np] = prefixHit{n, depth}
		w.np++
	}
	if pos >= len(w.path) {
		for _, cr := range n.exact {
			if !w.yield(cr) {
				return true
			}
		}
		return false
	}
	end := pos + 1
	for end < len(w.path) && w.path[end] != '/' {
		end++
	}
	seg := w.path[pos+1 : end]
	if c := n.static[seg]; c != nil {
		if w.walk(c, end, depth+1) {
			return true
		}
	}
	if n.param != nil && seg != "" {
		if w.walk(n.param, end, depth+1) {
			return true
		}
	}
	return false
}

// match returns the best route for the request, or nil.
func (t *table) match(req *Request, host, version string) *compiledRoute {
	method := req.HTTP.Method
	for cr := range t.candidates(req.url.Path) {
		if cr.matchesMethod(method) && cr.matchesExceptMethod(req.HTTP, host, version) {
			return cr
		}
	}
	return nil
}

func (cr *compiledRoute) matchesMethod(m string) bool {
	if cr.methods == nil {
		return m != http.MethodConnect && m != http.MethodTrace
	}
	for _, x := range cr.methods {
		if x == m {
			return true
		}
	}
	return false
}

func (cr *compiledRoute) matchesExceptMethod(r *http.Request, host, version string) bool {
	switch cr.hostRank {
	case hostExact:
		if host != cr.host {
			return false
		}
	case hostWildcard:
		label, ok := strings.CutSuffix(host, cr.host)
		if !ok || label == "" || strings.IndexByte(label, '.') >= 0 {
			return false
		}
	}
	if cr.Version != "" && !strings.EqualFold(cr.Version, version) {
		return false
	}
	for _, m := range cr.headers {
		vs, ok := r.Header[m.name]
		if !ok || (m.value != "" && !slices.Contains(vs, m.value)) {
			return false
		}
	}
	if len(cr.query) > 0 {
		q := r.URL.Query()
		for _, m := range cr.query {
			vs, ok := q[m.name]
			if !ok || (m.value != "" && !slices.Contains(vs, m.value)) {
				return false
			}
		}
	}
	return true
}

// params extracts the route's parameters from path into buf.
func (cr *compiledRoute) params(path string, buf []Param) []Param {
	pos := 0
	for _, s := range cr.segs {
		if pos >= len(path) {
			if s.rest {
				buf = append(buf, Param{s.param, ""})
			}
			break
		}
		if s.rest {
			buf = append(buf, Param{s.param, path[pos+1:]})
			break
		}
		end := pos + 1
		for end < len(path) && path[end] != '/' {
			end++
		}
		if s.param != "" {
			buf = append(buf, Param{s.param, path[pos+1 : end]})
		}
		pos = end
	}
	return buf
}
