package auth

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

// tokReq builds a request with the given Authorization fields, Cookie field
// and raw query.
func tokReq(authorization []string, cookie, query string) *http.Request {
	r := &http.Request{Method: http.MethodGet, Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: query}}
	if authorization != nil {
		r.Header["Authorization"] = authorization
	}
	if cookie != "" {
		r.Header["Cookie"] = []string{cookie}
	}
	return r
}

// TestTokenExtraction covers where a bearer token may come from, and the
// ways of sending one that RFC 6750 refuses.
func TestTokenExtraction(t *testing.T) {
	const (
		notOurs    = "not responsible"
		badRequest = "400"
	)
	def := newTokenExtractor("", "", "", "api")
	withQuery := newTokenExtractor("", "", "access_token", "api")
	withCookie := newTokenExtractor("", "tok", "", "api")
	custom := newTokenExtractor("x-access-token", "", "", "api")
	everywhere := newTokenExtractor("", "tok", "access_token", "api")
	one := func(v string) []string { return []string{v} }
	customReq := func(vs ...string) *http.Request {
		r := tokReq(nil, "", "")
		r.Header["X-Access-Token"] = vs
		return r
	}
	for _, tc := range []struct {
		name string
		x    tokenExtractor
		r    *http.Request
		want string // the token, notOurs, or badRequest
		desc string // for badRequest
	}{
		{"bearer", def, tokReq(one("Bearer abc.def.ghi"), "", ""), "abc.def.ghi", ""},
		{"scheme lower case", def, tokReq(one("bearer abc"), "", ""), "abc", ""},
		{"scheme upper case", def, tokReq(one("BEARER abc"), "", ""), "abc", ""},
		{"scheme mixed case", def, tokReq(one("BeArEr abc"), "", ""), "abc", ""},
		{"several spaces", def, tokReq(one("Bearer    abc"), "", ""), "abc", ""},
		{"token68 padding", def, tokReq(one("Bearer ab+/c~-_.=="), "", ""), "ab+/c~-_.==", ""},
		{"no Authorization", def, tokReq(nil, "", ""), notOurs, ""},
		{"empty Authorization", def, tokReq(one(""), "", ""), notOurs, ""},
		{"Basic", def, tokReq(one("Basic YWxpY2U6c2VjcmV0"), "", ""), notOurs, ""},
		{"DPoP", def, tokReq(one("DPoP abc"), "", ""), notOurs, ""},
		{"scheme prefix", def, tokReq(one("Bearerabc"), "", ""), notOurs, ""},
		{"tab after scheme", def, tokReq(one("Bearer\tabc"), "", ""), notOurs, ""},
		{"scheme only", def, tokReq(one("Bearer"), "", ""), badRequest, descMissingToken},
		{"scheme and spaces", def, tokReq(one("Bearer   "), "", ""), badRequest, descMissingToken},
		{"two tokens", def, tokReq(one("Bearer abc def"), "", ""), badRequest, descBadCredentials},
		{"comma list", def, tokReq(one("Bearer abc, Basic xyz"), "", ""), badRequest, descBadCredentials},
		{"trailing space", def, tokReq(one("Bearer abc "), "", ""), badRequest, descBadCredentials},
		{"padding inside", def, tokReq(one("Bearer ab=c"), "", ""), badRequest, descBadCredentials},
		{"quoted", def, tokReq(one(`Bearer "abc"`), "", ""), badRequest, descBadCredentials},
		{"non-ASCII", def, tokReq(one("Bearer abcé"), "", ""), badRequest, descBadCredentials},
		{"two Authorization fields", def, tokReq([]string{"Bearer abc", "Bearer abc"}, "", ""), badRequest, descRepeatedHeader},
		{"Basic and Bearer fields", def, tokReq([]string{"Basic YWxpY2U6c2VjcmV0", "Bearer abc"}, "", ""), badRequest, descRepeatedHeader},
		{"query off by default", def, tokReq(nil, "", "access_token=abc"), notOurs, ""},
		{"query off, header used", def, tokReq(one("Bearer abc"), "", "access_token=def"), "abc", ""},
		{"query", withQuery, tokReq(nil, "", "access_token=abc"), "abc", ""},
		{"query among others", withQuery, tokReq(nil, "", "a=1;b&c=%zz&access_token=abc&d"), "abc", ""},
		{"query escaped name", withQuery, tokReq(nil, "", "access%5Ftoken=abc"), "abc", ""},
		{"query escaped value", withQuery, tokReq(nil, "", "access_token=a%2Eb"), "a.b", ""},
		{"query empty value", withQuery, tokReq(nil, "", "access_token="), notOurs, ""},
		{"query other name", withQuery, tokReq(nil, "", "access_tokens=abc"), notOurs, ""},
		{"query repeated", withQuery, tokReq(nil, "", "access_token=abc&access_token=abc"), badRequest, descRepeatedQuery},
		{"query space", withQuery, tokReq(nil, "", "access_token=a+b"), badRequest, descBadCredentials},
		{"query bad escape", withQuery, tokReq(nil, "", "access_token=%zz"), badRequest, descBadCredentials},
		{"header and query", withQuery, tokReq(one("Bearer abc"), "", "access_token=abc"), badRequest, descSeveralPlaces},
		{"Basic header and query", withQuery, tokReq(one("Basic YWxpY2U6c2VjcmV0"), "", "access_token=abc"), "abc", ""},
		{"cookie", withCookie, tokReq(nil, "tok=abc", ""), "abc", ""},
		{"cookie among others", withCookie, tokReq(nil, "a=1; tok=abc; b=2", ""), "abc", ""},
		{"cookie empty", withCookie, tokReq(nil, "tok=", ""), notOurs, ""},
		{"cookie other name", withCookie, tokReq(nil, "token=abc", ""), notOurs, ""},
		{"cookie repeated", withCookie, tokReq(nil, "tok=abc; tok=def", ""), badRequest, descRepeatedCookie},
		{"cookie not token68", withCookie, tokReq(nil, "tok=a,b", ""), badRequest, descBadCredentials},
		{"cookie off by default", def, tokReq(nil, "tok=abc", ""), notOurs, ""},
		{"header and cookie", withCookie, tokReq(one("Bearer abc"), "tok=abc", ""), badRequest, descSeveralPlaces},
		{"cookie and query", everywhere, tokReq(nil, "tok=abc", "access_token=abc"), badRequest, descSeveralPlaces},
		{"custom header bare", custom, customReq("abc"), "abc", ""},
		{"custom header bearer", custom, customReq("Bearer abc"), "abc", ""},
		{"custom header bearer lower case", custom, customReq("bearer abc"), "abc", ""},
		{"custom header other scheme", custom, customReq("Basic abc"), badRequest, descBadCredentials},
		{"custom header scheme only", custom, customReq("Bearer"), badRequest, descMissingToken},
		{"custom header repeated", custom, customReq("abc", "abc"), badRequest, descRepeatedHeader},
		{"custom header empty", custom, customReq(""), notOurs, ""},
		{"custom header ignores Authorization", custom, tokReq(one("Bearer abc"), "", ""), notOurs, ""},
		{"custom header Authorization", newTokenExtractor("authorization", "", "", "api"), tokReq(one("Basic abc"), "", ""), notOurs, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.x.extract(tc.r)
			switch tc.want {
			case notOurs:
				if !errors.Is(err, gateway.ErrNotResponsible) {
					t.Fatalf("extract = %q, %v; want ErrNotResponsible", tok, err)
				}
			case badRequest:
				e, ok := errors.AsType[*gateway.Error](err)
				if !ok || e.Status != http.StatusBadRequest || e.Detail != tc.desc {
					t.Fatalf("extract = %q, %v; want 400 %q", tok, err, tc.desc)
				}
				want := `Bearer realm="api", error="invalid_request", error_description="` + tc.desc + `"`
				if got := e.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
			default:
				if err != nil || tok != tc.want {
					t.Fatalf("extract = %q, %v; want %q", tok, err, tc.want)
				}
			}
		})
	}
}

// TestTokenExtractionAllocs: the header path allocates nothing.
func TestTokenExtractionAllocs(t *testing.T) {
	x := newTokenExtractor("", "", "", "api")
	r := tokReq([]string{"Bearer " + strings.Repeat("a", 400)}, "", "")
	if n := testing.AllocsPerRun(100, func() { x.extract(r) }); n != 0 {
		t.Errorf("extract allocates %v times, want 0", n)
	}
}

// FuzzBearerToken feeds arbitrary header fields, cookies and queries to the
// extractors: no panic; a token, when found, is a non-empty token68 (so no
// spaces); every refusal is ErrNotResponsible or a 400.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc.def.ghi", "", "", "")
	f.Add("bearer  abc==", "", "", "")
	f.Add("Basic YWxpY2U6c2VjcmV0", "", "tok=abc", "")
	f.Add("Bearer a\nBearer b", "", "", "")
	f.Add("", "Bearer x", "tok=a; tok=b", "access_token=a&access_token=b")
	f.Add("Bearer", "x y", "tok=\"abc\"", "access%5Ftoken=a%20b")
	f.Add("", "", "", "a=1;b=%zz&access_token=eyJ.eyJ.sig")
	extractors := []tokenExtractor{
		newTokenExtractor("", "tok", "access_token", "api"),
		newTokenExtractor("X-Token", "tok", "access_token", "api"),
	}
	f.Fuzz(func(t *testing.T, authorization, custom, cookie, query string) {
		r := tokReq(nil, cookie, query)
		if authorization != "" {
			r.Header["Authorization"] = strings.Split(authorization, "\n")
		}
		if custom != "" {
			r.Header["X-Token"] = strings.Split(custom, "\n")
		}
		for _, x := range extractors {
			tok, err := x.extract(r)
			if err == nil {
				if tok == "" || !isToken68(tok) || strings.ContainsAny(tok, " \t\r\n,\"") {
					t.Fatalf("extract returned %q", tok)
				}
				continue
			}
			if tok != "" {
				t.Fatalf("extract returned %q with error %v", tok, err)
			}
			if errors.Is(err, gateway.ErrNotResponsible) {
				continue
			}
			if e, ok := errors.AsType[*gateway.Error](err); !ok || e.Status != http.StatusBadRequest {
				t.Fatalf("extract error %v, want ErrNotResponsible or a 400", err)
			}
		}
		// A token is what the client sent; with only "Bearer <s>" sent, it
		// is s exactly when s is a token68, and a 400 otherwise.
		for _, x := range extractors {
			if tok, err := x.extract(r); err == nil && !strings.Contains(authorization+"\n"+custom, tok) &&
				!slices.ContainsFunc(r.CookiesNamed("tok"), func(c *http.Cookie) bool { return c.Value == tok }) &&
				!strings.Contains(query, tok) && !slices.Contains(queryValues(query), tok) {
				t.Fatalf("extract returned %q, which the request does not hold", tok)
			}
		}
		one := tokReq([]string{"Bearer " + authorization}, "", "")
		tok, err := extractors[0].extract(one)
		switch {
		case token68RE.MatchString(authorization):
			if err != nil || tok != authorization {
				t.Fatalf("Bearer %q: extract = %q, %v", authorization, tok, err)
			}
		case err == nil:
			if strings.TrimLeft(authorization, " ") != tok {
				t.Fatalf("Bearer %q: extract = %q", authorization, tok)
			}
		case errors.Is(err, gateway.ErrNotResponsible):
			t.Fatalf("Bearer %q: not responsible", authorization)
		}
	})
}

// token68RE restates RFC 9110 §11.2's token68.
var token68RE = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// queryValues returns every value of a raw query, unescaped where it can be.
func queryValues(q string) []string {
	var vs []string
	for pair := range strings.SplitSeq(q, "&") {
		_, v, _ := strings.Cut(pair, "=")
		if u, err := url.QueryUnescape(v); err == nil {
			vs = append(vs, u)
		}
	}
	return vs
}
