package transform_test

import (
	"strings"
	"testing"

	. "github.com/gatekit/gatekit/transform"
)

// TestConfigErrors checks that every mistake fails at construction, naming
// the operation's index and kind and what is wrong.
func TestConfigErrors(t *testing.T) {
	ok := Set("ok", JSON(`1`))
	tests := []struct {
		name     string
		response bool
		ops      []Op
		want     []string
	}{
		{"empty path", false, []Op{ok, Set("", JSON(`1`))}, []string{"op 1 (Set)", "empty path"}},
		{"empty segment", false, []Op{Set("a..b", JSON(`1`))}, []string{"op 0 (Set)", `"a..b"`, "empty segment"}},
		{"trailing dot", false, []Op{Delete("a.")}, []string{"op 0 (Delete)", "empty segment"}},
		{"wildcard", false, []Op{Set("a.b*", JSON(`1`))}, []string{"op 0 (Set)", `'*' is reserved`, `\*`}},
		{"query", false, []Op{Delete(`items.#(price>5)`)}, []string{"op 0 (Delete)", "'#'"}},
		{"modifier", false, []Op{Keep("@reverse")}, []string{"op 0 (Keep)", "'@' is reserved"}},
		{"pipe", false, []Op{Unwrap("a|b")}, []string{"op 0 (Unwrap)", "'|' is reserved"}},
		{"dangling escape", false, []Op{Set(`a\`, JSON(`1`))}, []string{"op 0 (Set)", "escapes nothing"}},
		{"write ends in #", false, []Op{Set("items.#", JSON(`1`))}, []string{"op 0 (Set)", "cannot end in '#'"}},
		{"just #", false, []Op{Delete("#")}, []string{"op 0 (Delete)", "just '#'"}},
		{"zero value", false, []Op{Set("a", Value{})}, []string{"op 0 (Set)", "zero Value"}},
		{"bad constant", false, []Op{ok, ok, Set("a", JSON(`{bad`))}, []string{"op 2 (Set)", "not valid JSON"}},
		{"bad field path", false, []Op{Set("a", Field("x..y"))}, []string{"op 0 (Set)", "transform.Field", `"x..y"`}},
		{"bad claim path", false, []Op{SetHeader("X-A", Claim(""))}, []string{"op 0 (SetHeader)", "transform.Claim"}},
		{"rename across scopes", false, []Op{Rename("a.#.b", "c.#.d")}, []string{"op 0 (Rename)", "same '#' prefix"}},
		{"rename to itself", false, []Op{Rename("a", "a")}, []string{"op 0 (Rename)", "same path"}},
		{"delete nothing", false, []Op{Delete()}, []string{"op 0 (Delete)", "no paths"}},
		{"keep nothing", false, []Op{Keep()}, []string{"op 0 (Keep)", "no paths"}},
		{"keep object and array", false, []Op{Keep("a.#.b", "a.c")}, []string{"op 0 (Keep)", `"a.c"`, "both"}},
		{"wrap with #", false, []Op{Wrap("a.#")}, []string{"op 0 (Wrap)", "'#'"}},
		{"bad header name", false, []Op{SetHeader("Bad Name", String("x"))}, []string{"op 0 (SetHeader)", `"Bad Name"`}},
		{"framing header", false, []Op{DeleteHeader("X-Ok", "Content-Length")}, []string{"op 0 (DeleteHeader)", "Content-Length"}},
		{"bad header value source", false, []Op{SetHeader("X-A", Header("a b"))}, []string{"op 0 (SetHeader)", "transform.Header"}},
		{"reply header in a request", false, []Op{SetHeader("X-A", ReplyHeader("Server"))}, []string{"op 0 (SetHeader)", "only in a response"}},
		{"pattern without slash", false, []Op{RewritePath("a/{id}", "/b")}, []string{"op 0 (RewritePath)", "begin with '/'"}},
		{"template param not in pattern", false, []Op{RewritePath("/a/{id}", "/b/{other}")}, []string{"op 0 (RewritePath)", `"other"`, "not in the pattern"}},
		{"duplicate pattern param", false, []Op{RewritePath("/a/{id}/{id}", "/b")}, []string{"op 0 (RewritePath)", "twice"}},
		{"rest not last", false, []Op{RewritePath("/a/{r...}/x", "/b")}, []string{"op 0 (RewritePath)", "last segment"}},
		{"partial segment", false, []Op{RewritePath("/a/x{id}", "/b")}, []string{"op 0 (RewritePath)", "whole segment"}},
		{"unclosed template", false, []Op{RewritePath("", "/b/{id")}, []string{"op 0 (RewritePath)", "unclosed"}},
		{"prefix not clean", false, []Op{ReplacePathPrefix("/a/../b", "/c")}, []string{"op 0 (ReplacePathPrefix)", "clean path"}},
		{"prefix without slash", false, []Op{ReplacePathPrefix("api", "/c")}, []string{"op 0 (ReplacePathPrefix)"}},
		{"empty query name", false, []Op{SetQuery("", String("x"))}, []string{"op 0 (SetQuery)", "empty query"}},
		{"rename query to itself", false, []Op{RenameQuery("a", "a")}, []string{"op 0 (RenameQuery)", "same name"}},
		{"status in a request", false, []Op{MapStatus(404, 204)}, []string{"op 0 (MapStatus)", "only in a response"}},
		{"query in a response", true, []Op{SetQuery("a", String("x"))}, []string{"op 0 (SetQuery)", "cannot be in a response"}},
		{"path in a response", true, []Op{RewritePath("", "/x")}, []string{"op 0 (RewritePath)", "cannot be in a response"}},
		{"request ID in a response", true, []Op{AssignRequestID(RequestIDConfig{})}, []string{"op 0 (AssignRequestID)"}},
		{"bad request ID header", false, []Op{AssignRequestID(RequestIDConfig{Header: "a b"})}, []string{"op 0 (AssignRequestID)", "Header"}},
		{"bad status", true, []Op{MapStatus(404, 99)}, []string{"op 0 (MapStatus)", "status 99"}},
		{"bad status when", true, []Op{StatusWhen("a", 600)}, []string{"op 0 (StatusWhen)", "status 600"}},
		{"bad status path", true, []Op{StatusWhen("a*", 502)}, []string{"op 0 (StatusWhen)", `"a*"`}},
		{"template parse error", false, []Op{Template(`{"a": {{.Param "a"}`, nil)}, []string{"op 0 (Template)", "unexpected"}},
		{"template bad body path", false, []Op{Template(`{"a": {{.Body "a..b"}}}`, nil)}, []string{"op 0 (Template)", `.Body "a..b"`}},
		{"template unknown function", false, []Op{Template(`{{nope}}`, nil)}, []string{"op 0 (Template)", "nope"}},
		{"bad xml config", false, []Op{JSONToXML(XMLConfig{Root: "1x"})}, []string{"op 0 (JSONToXML)", "Root"}},
		{"json op after JSONToXML", false, []Op{JSONToXML(XMLConfig{}), Set("a", JSON(`1`))}, []string{"op 1 (Set)", "XML at this point"}},
		{"field value after JSONToXML", false, []Op{JSONToXML(XMLConfig{}), SetHeader("X-A", Field("a"))}, []string{"op 1 (SetHeader)", "XML at this point"}},
		{"XMLToJSON after a JSON op", true, []Op{Delete("a"), XMLToJSON(XMLConfig{})}, []string{"op 1 (XMLToJSON)", "JSON at this point"}},
		{"zero Op", false, []Op{ok, {}}, []string{"op 1", "zero Op"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.response {
				_, err = Response(Config{Ops: tc.ops})
			} else {
				_, err = Request(Config{Ops: tc.ops})
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewBodyErrors(t *testing.T) {
	if _, err := NewBody(Set("a", JSON(`1`)), SetHeader("X-A", String("x"))); err == nil || !strings.Contains(err.Error(), "op 1 (SetHeader)") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewBody(Rename("a", "b.")); err == nil || !strings.Contains(err.Error(), "op 0 (Rename)") {
		t.Errorf("err = %v", err)
	}
}

// TestValidConfigs builds a few transforms that must be accepted.
func TestValidConfigs(t *testing.T) {
	for _, ops := range [][]Op{
		nil,
		{XMLToJSON(XMLConfig{}), Set("a", JSON(`1`)), JSONToXML(XMLConfig{})},
		{Template(`{}`, nil), Set("a", JSON(`1`))},
		{JSONToXML(XMLConfig{}), Template(`{}`, nil), Delete("a")},
		{Set(`a\.b.\#.c\\d`, Field(`x\*`))},
	} {
		if _, err := Request(Config{Ops: ops}); err != nil {
			t.Errorf("Request: %v", err)
		}
	}
}
