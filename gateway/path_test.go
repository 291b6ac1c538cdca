package gateway

import (
	"net/url"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"root", "/", "/"},
		{"clean", "/a/b", "/a/b"},
		{"trailing slash kept", "/a/b/", "/a/b/"},
		{"double slash", "//a//b", "/a/b"},
		{"only slashes", "///", "/"},
		{"double trailing slash", "/a//", "/a/"},
		{"dot", "/./a/./b", "/a/b"},
		{"trailing dot", "/a/.", "/a/"},
		{"lone dot", "/.", "/"},
		{"dot-dot", "/a/b/../c", "/a/c"},
		{"trailing dot-dot", "/a/b/..", "/a/"},
		{"dot-dot to root", "/a/..", "/"},
		{"dot-dot above root", "/../../a", "/a"},
		{"lone dot-dot", "/..", "/"},
		{"dot-dot after slashes", "/a//..//b", "/b"},
		{"dots in names", "/.a/..b/.../a.", "/.a/..b/.../a."},
		{"dot-dot after dot", "/a/./../b", "/b"},
		{"many dot-dots", "/a/b/c/../../../../d/", "/d/"},
		{"empty", "", "/"},
		{"relative", "a/b", "/a/b"},
		{"relative dot-dot", "../a", "/a"},
		{"backslash is not a separator", `/a\..\b`, `/a\..\b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cleanPath(tc.in); got != tc.want {
				t.Fatalf("cleanPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCleanPathAllocs(t *testing.T) {
	// A clean path is the common case and must cost nothing.
	if n := testing.AllocsPerRun(100, func() { cleanPath("/svc/items/42/") }); n != 0 {
		t.Fatalf("cleanPath of a clean path: %v allocations, want 0", n)
	}
}

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		name, requestURI  string
		allowAmbiguous    bool
		wantPath, wantRaw string // after normalisation
		wantErr           string // substring of the 400's detail
	}{
		{name: "clean", requestURI: "/a/b?x=1", wantPath: "/a/b"},
		{name: "cleaned", requestURI: "//a/./b/../c", wantPath: "/a/c"},
		{name: "raw path dropped", requestURI: "/a/%41", wantPath: "/a/A"},
		{name: "raw path dropped when cleaned", requestURI: "/x/../%41", wantPath: "/A"},
		{name: "encoded dot-dot", requestURI: "/a/%2E%2e/b", wantPath: "/b"},
		{name: "encoded slash", requestURI: "/a%2Fb", wantErr: "encoded slash"},
		{name: "encoded slash allowed", requestURI: "/a%2Fb", allowAmbiguous: true, wantPath: "/a/b", wantRaw: "/a%2Fb"},
		{name: "encoded backslash", requestURI: "/a%5cb", wantErr: "encoded backslash"},
		{name: "backslash", requestURI: `/a\b`, wantErr: "backslash"},
		{name: "encoded NUL", requestURI: "/a%00", wantErr: "control character"},
		{name: "encoded unit separator", requestURI: "/a%1F", wantErr: "control character"},
		{name: "encoded DEL", requestURI: "/a%7f", wantErr: "control character"},
		{name: "encoded space is fine", requestURI: "/a%20b", wantPath: "/a b"},
		{name: "encoded UTF-8 is fine", requestURI: "/caf%C3%A9", wantPath: "/caf\u00e9"},
		{name: "decoded path not UTF-8", requestURI: "/%FF", wantErr: "not valid UTF-8"},
		{name: "overlong dot", requestURI: "/a/%c0%ae%c0%ae/b", wantErr: "not valid UTF-8"},
		{name: "hash", requestURI: "/a#b", wantErr: "'#'"},
		{name: "query not checked", requestURI: "/a?b=%2F%00#", wantPath: "/a"},
		{name: "asterisk", requestURI: "*", wantErr: "begin with '/'"},
		{name: "absolute form", requestURI: "http://example.com/a/../b", wantPath: "/b"},
		{name: "absolute form without path", requestURI: "http://example.com", wantPath: "/"},
		{name: "absolute form encoded slash", requestURI: "http://example.com/a%2Fb", wantErr: "encoded slash"},
		{name: "absolute form backslash", requestURI: `http://example.com/a\b`, wantErr: "backslash"},
		{name: "absolute form hash", requestURI: "http://example.com/a#b", wantErr: "'#'"},
		{name: "absolute form query", requestURI: "http://example.com/a?b=%2F#", wantPath: "/a"},
		{name: "absolute form query without path", requestURI: "http://example.com?b=/%2F#", wantPath: "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tc.requestURI)
			if err != nil {
				t.Fatal(err)
			}
			perr := normalizeURL(u, tc.requestURI, tc.allowAmbiguous)
			if tc.wantErr != "" {
				if perr == nil || perr.Status != 400 || !strings.Contains(perr.Detail, tc.wantErr) {
					t.Fatalf("normalizeURL(%q) = %v, want a 400 about %q", tc.requestURI, perr, tc.wantErr)
				}
				return
			}
			if perr != nil {
				t.Fatalf("normalizeURL(%q): %v", tc.requestURI, perr)
			}
			if u.Path != tc.wantPath || u.RawPath != tc.wantRaw {
				t.Fatalf("normalizeURL(%q): Path %q RawPath %q, want %q %q", tc.requestURI, u.Path, u.RawPath, tc.wantPath, tc.wantRaw)
			}
		})
	}
}

func TestAmbiguousInvalidEscapes(t *testing.T) {
	// net/http refuses these before the gateway sees them, but a request
	// built in process or by another front end may still carry them.
	tests := []struct{ raw, want string }{
		{"/a%", "truncated"},
		{"/a%4", "truncated"},
		{"/a%4g", "invalid"},
		{"/a%g4", "invalid"},
		{"/a%%41", "invalid"},
		{"/a\x00", "control character"},
		{"/a\x1b", "control character"},
		{"/a\x7f", "control character"},
		{"/a%41%42", ""},
		{"/a%e2%82%ac", ""},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got := ambiguous(tc.raw)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("ambiguous(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

// FuzzCleanPath checks the properties the router relies on: the result
// begins with '/', is clean (no empty, "." or ".." segment but a final empty
// one), cleaning it again changes nothing, and a clean input comes back
// unchanged.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "//", "/a/b/", "/a/./b/../c", "/../..", "/a/..", "/.", "/..a/.b/...",
		"", "a/../b", "/a//b///", "/%2e%2e/", `/a\..\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := cleanPath(p)
		if c == "" || c[0] != '/' {
			t.Fatalf("cleanPath(%q) = %q does not begin with '/'", p, c)
		}
		if strings.Contains(c, "//") {
			t.Fatalf("cleanPath(%q) = %q has an empty segment", p, c)
		}
		for _, seg := range strings.Split(c[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("cleanPath(%q) = %q has a %q segment", p, c, seg)
			}
		}
		if cc := cleanPath(c); cc != c {
			t.Fatalf("cleanPath is not idempotent: %q -> %q -> %q", p, c, cc)
		}
		if !isClean(c) {
			t.Fatalf("isClean(cleanPath(%q) = %q) is false", p, c)
		}
		if p != "" && p[0] == '/' && isClean(p) && c != p {
			t.Fatalf("clean path %q changed to %q", p, c)
		}
		// Resolving dot segments never adds a name, and a trailing slash
		// survives.
		if len(c) > len(p)+1 {
			t.Fatalf("cleanPath(%q) = %q grew", p, c)
		}
		if strings.HasSuffix(p, "/") && !strings.HasSuffix(c, "/") {
			t.Fatalf("cleanPath(%q) = %q lost the trailing slash", p, c)
		}
	})
}

// FuzzNormalize feeds request targets to normalizeURL: it must not panic,
// and a path it accepts must be clean and, unless ambiguous paths are
// allowed, free of what it promises to refuse.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/a/b", "//a/../b?c", "/%2e%2e/%2E%2e/x", "/a%2Fb", "/a%5c", `/a\b`, "/a%00", "/a#b",
		"http://h/a/../b", "http://h", "*", "/a%", "/a%zz", "/%41/./"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, target string, allowAmbiguous bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			// What net/http would refuse may still come from in process.
			path, _, _ := strings.Cut(target, "?")
			u = &url.URL{Path: path}
		}
		perr := normalizeURL(u, target, allowAmbiguous)
		if perr != nil {
			if perr.Status != 400 || perr.Detail == "" {
				t.Fatalf("normalizeURL(%q): %+v", target, perr)
			}
			return
		}
		if u.Path == "" || u.Path[0] != '/' || !isClean(u.Path) {
			t.Fatalf("normalizeURL(%q): path %q is not clean", target, u.Path)
		}
		if !allowAmbiguous {
			if u.RawPath != "" {
				t.Fatalf("normalizeURL(%q): RawPath %q kept", target, u.RawPath)
			}
			if bad := ambiguous(u.EscapedPath()); bad != "" {
				t.Fatalf("normalizeURL(%q): accepted path %q contains %s", target, u.EscapedPath(), bad)
			}
			// A '#' may arrive as %23; a backslash or a control character
			// may not arrive at all.
			if i := strings.IndexFunc(u.Path, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }); i >= 0 {
				t.Fatalf("normalizeURL(%q): accepted path %q", target, u.Path)
			}
		}
	})
}
