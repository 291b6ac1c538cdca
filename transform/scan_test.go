package transform

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// scanCases are documents scanJSON must judge as gjson.Valid does, chosen
// at the edges of the grammar and of the eight-byte string loop.
var scanCases = []string{
	``, ` `, `{}`, `[]`, ` { } `, `{`, `}`, `[`, `]`, `[}`, `{]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `[,1]`,
	`{"a"}`, `{"a":}`, `{a:1}`, `{"a" : 1 , "b" : [ 1 , 2 ] }`, "\t\r\n{\"a\":\n1}\n",
	`0`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `1x`, `[1 2]`,
	`true`, `false`, `null`, `tru`, `nul`, `truee`, `[true,false,null]`, `nulll`,
	`""`, `"a"`, `"abcdefgh"`, `"abcdefghi"`, `"abcdefg\"h"`, `"abcdefghijklmnop\\"`, `"\u00e9"`, `"\u00eg"`, `"\u00e"`,
	`"\x"`, `"\/\b\f\n\r\t"`, "\"a\x01b\"", "\"abcdefgh\x1fijk\"", "\"tab\there\"", `"unterminated`, `"abcdefghijklmnop`,
	"\"caf\xc3\xa9\"", "\"\xff\xfe\"", `"€ and ☃ and 🎉"`,
	`{"a":{"b":{"c":[1,{"d":null}]}}}`, `{"a":1}{"b":2}`, `{"a":1} x`, `[[[[]]]]`, `[[[[]]]`,
	`{"\"k\\\\":1,"plain":2}`,
}

func TestScanJSONMatchesGJSON(t *testing.T) {
	cases := append([]string(nil), scanCases...)
	cases = append(cases, strings.Repeat("[", 10000)+strings.Repeat("]", 10000))
	cases = append(cases, strings.Repeat(`{"a":`, 200)+"1"+strings.Repeat("}", 200))
	cases = append(cases, strings.Repeat("[", 10000)+strings.Repeat("]", 9999))
	for _, doc := range cases {
		checkScan(t, []byte(doc))
	}
}

func FuzzScanJSON(f *testing.F) {
	for _, doc := range scanCases {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkScan(t, doc)
	})
}

// checkScan compares scanJSON with gjson.ValidBytes on doc and, for an
// object, its index with the members gjson finds.
func checkScan(t *testing.T, doc []byte) {
	t.Helper()
	want := gjson.ValidBytes(doc)
	if got := scanJSON(doc, nil); got != want {
		t.Fatalf("scanJSON(%q) = %v, gjson.Valid says %v", trunc(doc), got, want)
	}
	var ix rootIndex
	if got := scanJSON(doc, &ix); got != want {
		t.Fatalf("scanJSON(%q, ix) = %v, gjson.Valid says %v", trunc(doc), got, want)
	}
	if !want {
		return
	}
	r := root(doc)
	if ix.ok != r.IsObject() {
		t.Fatalf("index of %q: ok %v, want %v", trunc(doc), ix.ok, r.IsObject())
	}
	if !ix.ok {
		return
	}
	if got := ix.root(doc); got.Raw != r.Raw || got.Index != r.Index {
		t.Fatalf("index of %q: root %q at %d, want %q at %d", trunc(doc), got.Raw, got.Index, r.Raw, r.Index)
	}
	if ix.close != r.Index+len(r.Raw)-1 || doc[ix.close] != '}' {
		t.Fatalf("index of %q: close at %d, want %d", trunc(doc), ix.close, r.Index+len(r.Raw)-1)
	}
	i := 0
	r.ForEach(func(k, v gjson.Result) bool {
		if i >= len(ix.members) {
			t.Fatalf("index of %q: %d members, gjson finds more", trunc(doc), len(ix.members))
		}
		m := ix.members[i]
		want := rootMember{kStart: k.Index, kEnd: k.Index + len(k.Raw), vStart: v.Index, vEnd: v.Index + len(v.Raw), esc: strings.Contains(k.Raw, `\`)}
		if m != want {
			t.Fatalf("index of %q: member %d is %+v, want %+v", trunc(doc), i, m, want)
		}
		i++
		return true
	})
	if i != len(ix.members) {
		t.Fatalf("index of %q: %d members, gjson finds %d", trunc(doc), len(ix.members), i)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// BenchmarkScanJSON checks and indexes the 1 KiB document of
// BenchmarkBodyApply in one pass; compare BenchmarkBaselineValid.
func BenchmarkScanJSON(b *testing.B) {
	doc := []byte(`{"id":"ord-8412","customer":{"name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},"internal":{"shard":7,"trace":"a1b2c3"},"items":[`)
	for i := 0; len(doc) < 1<<10-120; i++ {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = append(doc, `{"sku":"SKU-00012","name":"Widget number 12","qty":3,"price":42.99}`...)
	}
	doc = append(doc, `],"note":"leave at the door","createdAt":"2025-11-25T13:50:00Z"}`...)
	var ix rootIndex
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if !scanJSON(doc, &ix) {
			b.Fatal("invalid")
		}
	}
}
