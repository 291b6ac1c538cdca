package gateway

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
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
	// segment; a final "{name...}" matches the rest of the path, possibly
	// empty ("/files/{p...}" matches "/files" too), and makes the route a
	// prefix route like PathPrefix "/files". A trailing slash is significant.
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
	// Options apply to every request the Router serves.
	Options
	// Versioning says where the API version of a request is read.
	Versioning Versioning
	// Routes is the initial route table; Replace swaps in another.
	Routes []Route
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
// 405 with an Allow field listing the methods that would match (for a route
// that serves any method, the methods of RFC 9110 but CONNECT and TRACE).
type Router struct {
	opts  Options
	vers  Versioning
	table atomic.Pointer[table]
}

// NewRouter checks and compiles the routes and returns a Router.
func NewRouter(cfg RouterConfig) (*Router, error) {
	rt := &Router{opts: cfg.Options, vers: cfg.Versioning}
	if len(cfg.InternalHeaders) > 0 {
		names := make([]string, len(cfg.InternalHeaders))
		for i, name := range cfg.InternalHeaders {
			if !IsToken(name) {
				return nil, fmt.Errorf("gateway: RouterConfig.Options.InternalHeaders[%d] %q: not a header field name", i, name)
			}
			names[i] = http.CanonicalHeaderKey(name)
		}
		rt.opts.InternalHeaders = names
	}
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
	if t == nil {
		return nil
	}
	out := make([]Route, len(t.routes))
	for i, r := range t.routes {
		out[i] = r.Route
	}
	return out
}

// ServeHTTP routes r and serves it through the matched route's Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, perr := newServerRequest(w, r, &rt.opts)
	w, end := rt.opts.begin(w, req)
	if end != nil {
		defer endOnPanic(end)
	}
	var err error
	var cr *compiledRoute
	if perr == nil {
		cr, perr = rt.route(req)
	}
	if perr != nil {
		err = perr
		writeError(w, req, perr, &rt.opts)
	} else {
		err = serve(w, req, cr.Handler, &rt.opts, cr.maxBody)
	}
	if end != nil {
		end(err)
	}
}

// lookupRequest prepares req from r as ServeHTTP does, less the client
// address, and routes it: the whole matching step, which benchmarks and the
// allocation guard measure on their own.
func (rt *Router) lookupRequest(req *Request, r *http.Request) (*compiledRoute, *Error) {
	req.init(r)
	if err := normalizeURL(&req.url, r.RequestURI, rt.opts.AllowAmbiguousPaths); err != nil {
		return nil, err
	}
	return rt.route(req)
}

// route finds the route for req, whose path is already normalised, and
// records it, the version and the path parameters in req. It is the whole
// of routing but serving, and allocates nothing when the Host field is in
// lower case.
func (rt *Router) route(req *Request) (*compiledRoute, *Error) {
	t := rt.table.Load()
	if t == nil { // a zero Router has no routes
		return nil, &Error{Status: http.StatusNotFound, Detail: "no route matches the request"}
	}
	r := req.HTTP
	l := lookup{
		path:    req.url.Path,
		method:  r.Method,
		host:    requestHost(r.Host),
		version: t.requestVersion(r),
		r:       r,
	}
	cr := t.find(&l)
	if cr == nil {
		return nil, t.noMatch(&l)
	}
	req.route = &cr.Route
	req.Version = l.version
	if cr.Version != "" {
		req.Version = cr.Version
	}
	req.params = cr.params(req.url.Path, req.paramBuf[:0])
	return cr, nil
}

// noMatch returns the 404 or 405 for a request no route serves.
func (t *table) noMatch(l *lookup) *Error {
	var allow []string
	l.allow = &allow
	t.find(l)
	if len(allow) == 0 {
		return &Error{Status: http.StatusNotFound, Detail: "no route matches the request"}
	}
	sort.Strings(allow)
	return (&Error{Status: http.StatusMethodNotAllowed, Detail: "the route does not serve method " + l.method}).
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

// requestVersion returns the version the request names in the header or
// media type the Versioning says, or the default. A version in the path is
// matched by the path pattern instead.
func (t *table) requestVersion(r *http.Request) string {
	v := &t.vers
	if v.Header != "" {
		if s := r.Header[t.versionHeader]; len(s) > 0 && s[0] != "" {
			return s[0]
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
	idx           int
	methods       []string // upper case; nil = any
	host          string   // exact host, or ".example.com" for a wildcard
	hostRank      hostRank
	segs          []segment
	prefix        bool
	versionInPath bool // the path pattern begins with the Version
	headers       []fieldMatcher
	query         []fieldMatcher
	maxBody       int64
	shapeKey      string // for conflict detection
}

// fieldMatcher is one header or query matcher; an empty value requires
// presence only.
type fieldMatcher struct{ name, value string }

type node struct {
	// static holds the literal children while the table is built; once it
	// is, a node with few of them keeps them in lits and kids instead,
	// which a linear scan reads faster than a map.
	static   map[string]*node
	lits     []string
	kids     []*node
	param    *node
	exact    []*compiledRoute
	prefixes []*compiledRoute
}

type table struct {
	root          node
	routes        []*compiledRoute
	vers          Versioning
	versionHeader string // canonical form of vers.Header
}

func compile(routes []Route, vers Versioning, o *Options) (*table, error) {
	t := &table{vers: vers}
	if vers.Header != "" {
		t.versionHeader = http.CanonicalHeaderKey(vers.Header)
	}
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
	if len(n.static) <= smallNode {
		for _, lit := range slices.Sorted(maps.Keys(n.static)) {
			n.lits = append(n.lits, lit)
			n.kids = append(n.kids, n.static[lit])
		}
		n.static = nil
	}
}

// smallNode is the number of literal children up to which a linear scan
// beats a map lookup.
const smallNode = 8

// staticChild returns the child of n for the literal segment seg, or nil.
func (n *node) staticChild(seg string) *node {
	if n.static != nil {
		return n.static[seg]
	}
	for i, lit := range n.lits {
		if lit == seg {
			return n.kids[i]
		}
	}
	return nil
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
		if r.Version == "." || r.Version == ".." || strings.ContainsAny(r.Version, "/{}") {
			return nil, fmt.Errorf("gateway: route %s: Version %q cannot be a path segment", routeLabel(idx, r), r.Version)
		}
		if pattern[0] == '/' {
			if pattern == "/" {
				pattern = "/" + r.Version + "/"
			} else {
				pattern = "/" + r.Version + pattern
			}
		}
		cr.versionInPath = true
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
		cr.headers = append(cr.headers, fieldMatcher{http.CanonicalHeaderKey(name), value})
	}
	slices.SortFunc(cr.headers, func(a, b fieldMatcher) int { return strings.Compare(a.name, b.name) })
	for name, value := range r.Query {
		if name == "" {
			return nil, fmt.Errorf("gateway: route %s: Query: empty parameter name", routeLabel(idx, r))
		}
		cr.query = append(cr.query, fieldMatcher{name, value})
	}
	slices.SortFunc(cr.query, func(a, b fieldMatcher) int { return strings.Compare(a.name, b.name) })
	cr.maxBody = o.maxBody()
	if r.MaxBodyBytes != 0 {
		cr.maxBody = r.MaxBodyBytes
	}
	if cr.Name == "" {
		cr.Name = defaultName(r, pattern)
	}
	cr.shapeKey = shapeKey(cr)
	return cr, nil
}

// shapeKey describes everything but the method and the declaration order
// that decides which requests a route matches and how it ranks: two routes
// with the same key and a method in common conflict.
func shapeKey(cr *compiledRoute) string {
	var sb strings.Builder
	for _, s := range cr.segs {
		switch {
		case s.rest:
			// "/a/{p...}" matches exactly what PathPrefix "/a" does.
		case s.param != "":
			sb.WriteString("/{}")
		default:
			sb.WriteString("/" + strconv.Quote(s.lit))
		}
	}
	if cr.prefix {
		sb.WriteString(" prefix")
	}
	fmt.Fprintf(&sb, "|%q|%q", cr.host, strings.ToLower(cr.Version))
	for _, m := range cr.headers {
		fmt.Fprintf(&sb, "|h%q=%q", m.name, m.value)
	}
	for _, m := range cr.query {
		fmt.Fprintf(&sb, "|q%q=%q", m.name, m.value)
	}
	return sb.String()
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

// A lookup is one walk of the table for one request.
type lookup struct {
	path, method, host, version string
	r                           *http.Request

	// allow, when set, makes the walk collect the methods of the routes
	// that match in all but the method, instead of stopping at the first
	// route that matches.
	allow *[]string

	// The nodes with prefix routes on the way, in walk order: the first
	// ones in hits, the rest, rarely, in more. (A slice of hits kept in the
	// lookup itself would move it to the heap.)
	hits  [8]prefixHit
	nhits int
	more  []prefixHit
}

type prefixHit struct {
	n     *node
	depth int
}

// find returns the best route for the lookup, or nil. Candidates are tried
// in precedence order (rules 1 and 2): exact routes depth first, static
// children before the parameter child, then prefix routes, longest first;
// each node's own list is already in the order of rules 3 to 8.
func (t *table) find(l *lookup) *compiledRoute {
	l.nhits, l.more = 0, nil
	if cr := l.walk(&t.root, 0, 0); cr != nil {
		return cr
	}
	hs := l.hits[:l.nhits]
	if l.more != nil {
		hs = append(hs[:len(hs):len(hs)], l.more...)
	}
	// Longest prefix first; the insertion sort is stable, so equally long
	// ones keep the static-first order of the walk.
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].depth > hs[j-1].depth; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
	for _, h := range hs {
		for _, cr := range h.n.prefixes {
			if l.try(cr) {
				return cr
			}
		}
	}
	return nil
}

// walk visits n, which matched the path up to pos, and returns the first
// exact route below it that serves the request.
func (l *lookup) walk(n *node, pos, depth int) *compiledRoute {
	if len(n.prefixes) > 0 {
		if l.nhits < len(l.hits) {
			l.hits[l.nhits] = prefixHit{n, depth}
			l.nhits++
		} else {
			l.more = append(l.more, prefixHit{n, depth})
		}
	}
	if pos >= len(l.path) {
		for _, cr := range n.exact {
			if l.try(cr) {
				return cr
			}
		}
		return nil
	}
	end := pos + 1
	for end < len(l.path) && l.path[end] != '/' {
		end++
	}
	seg := l.path[pos+1 : end]
	if c := n.staticChild(seg); c != nil {
		if cr := l.walk(c, end, depth+1); cr != nil {
			return cr
		}
	}
	if n.param != nil && seg != "" {
		if cr := l.walk(n.param, end, depth+1); cr != nil {
			return cr
		}
	}
	return nil
}

// try reports whether cr serves the request. In allow mode it records the
// methods of cr if it matches in all but the method, and reports false.
func (l *lookup) try(cr *compiledRoute) bool {
	if l.allow == nil {
		return cr.matchesMethod(l.method) && cr.matchesExceptMethod(l)
	}
	if !cr.matchesExceptMethod(l) {
		return false
	}
	methods := cr.methods
	if methods == nil {
		// Any method but CONNECT and TRACE; list the ones RFC 9110 defines.
		methods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPatch, http.MethodPost, http.MethodPut}
	}
	for _, m := range methods {
		if !slices.Contains(*l.allow, m) {
			*l.allow = append(*l.allow, m)
		}
	}
	return false
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

func (cr *compiledRoute) matchesExceptMethod(l *lookup) bool {
	switch cr.hostRank {
	case hostExact:
		if l.host != cr.host {
			return false
		}
	case hostWildcard:
		label, ok := strings.CutSuffix(l.host, cr.host)
		if !ok || label == "" || strings.IndexByte(label, '.') >= 0 {
			return false
		}
	}
	if cr.Version != "" && !cr.versionInPath && !strings.EqualFold(cr.Version, l.version) {
		return false
	}
	for _, m := range cr.headers {
		vs, ok := l.r.Header[m.name]
		if !ok || (m.value != "" && !slices.Contains(vs, m.value)) {
			return false
		}
	}
	for _, m := range cr.query {
		if !queryHas(l.r.URL.RawQuery, m) {
			return false
		}
	}
	return true
}

// queryHas reports whether the raw query holds the parameter m, as
// url.ParseQuery would decode it, without decoding into a map.
func queryHas(raw string, m fieldMatcher) bool {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" || strings.IndexByte(part, ';') >= 0 {
			continue // url.ParseQuery skips these too
		}
		k, v, _ := strings.Cut(part, "=")
		if !queryEqual(k, m.name) {
			continue
		}
		if m.value == "" {
			if queryValid(v) {
				return true
			}
		} else if queryEqual(v, m.value) {
			return true
		}
	}
	return false
}

// queryEqual reports whether the query component s decodes to want.
func queryEqual(s, want string) bool {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) {
				return false
			}
			b, ok := unhex2(s[i+1], s[i+2])
			if !ok {
				return false
			}
			c = b
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// queryValid reports whether the query component s decodes.
func queryValid(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) {
				return false
			}
			if _, ok := unhex2(s[i+1], s[i+2]); !ok {
				return false
			}
			i += 2
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
