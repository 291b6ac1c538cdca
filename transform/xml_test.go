package transform_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	. "github.com/gatekit/gatekit/transform"
)

// roundTripJSON are documents in canonical form (compact, escaped the way
// the package writes JSON) that must survive JSON→XML→JSON byte for byte,
// and whose XML must survive XML→JSON→XML byte for byte.
var roundTripJSON = []string{
	`{}`,
	`{"a":1}`,
	`{"name":"Ada","age":36,"admin":false,"ratio":0.25,"tiny":1e-7}`,
	`{"zip":"007","code":"42","flag":"true","neg":"-1.5","word":"null"}`,
	`{"big":12345678901234567890,"bigString":"12345678901234567890"}`,
	`{"nothing":null,"empty":"","obj":{},"arr":[]}`,
	`{"one":[1],"two":[1,2],"objs":[{"a":1}],"nested":[[1,2],[3]]}`,
	`[1,"two",true,null,{"x":1},[]]`,
	`"just a string"`,
	`42`,
	`null`,
	`true`,
	`{"@id":"7","@lang":"en","#text":"hello"}`,
	`{"@id":7,"@flag":true,"@none":null,"@s":"8","child":{"@x":"1.0"}}`,
	`{"ns:order":{"@xmlns:ns":"urn:example:orders","ns:line":[{"ns:sku":"A"},{"ns:sku":"B"}]}}`,
	`{"@xmlns":"urn:example:default","item":{"name":"x"}}`,
	`{"text":"line1\nline2\ttab\r\nCRLF","attr":{"@v":"a\nb\tc\rd\"q'"}}`,
	`{"unicode":"Grüße 😀 ✓","ключ":"значение","名前":"太郎"}`,
	`{"mixed":{"#text":"before","b":1},"after":{"b":2,"#text":"after"}}`,
	`{"deep":{"a":{"b":{"c":{"d":{"e":[{"f":1}]}}}}}}`,
	`{"orders":{"order":[{"@id":"1","line":[{"sku":"A","qty":2},{"sku":"B","qty":1}]},{"@id":"2","line":[{"sku":"C","qty":5}]}]}}`,
	`{"ws":"  padded  ","onlyWS":" ","wsObj":{"@a":"1","#text":" "},"padObj":{"#text":" x ","b":1}}`,
	`{"numText":{"@unit":"kg","#text":12.5},"strText":{"@unit":"kg","#text":"12.5"},"nullText":{"@u":"x","#text":null}}`,
	`{"a":[null,"",{},[],[null]]}`,
	`{"escapes":"\u003ctag\u003e \u0026 \u2028"}`,
	`{"neg":-0,"exp":2.5E+10,"frac":0.000001,"int":-42}`,
	`{"item":[1,2],"list":{"item":"x"}}`,
	`[[[]]]`,
	`{"emptyText":{"#text":""},"emptyWithAttr":{"@a":"x","#text":""}}`,
	`{"under_score":1,"dash-ed":2,"dot.ted":3,"_lead":4}`,
}

func TestXMLRoundTrip(t *testing.T) {
	if len(roundTripJSON) < 20 {
		t.Fatalf("the round-trip table has %d documents; keep at least 20", len(roundTripJSON))
	}
	configs := map[string]XMLConfig{
		"default":      {},
		"keep strings": {KeepStrings: true},
		"named":        {Root: "ns:Envelope", Item: "entry", Declaration: true},
	}
	for cname, cfg := range configs {
		c, err := NewXMLCodec(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range roundTripJSON {
			t.Run(cname+"/"+strconv.Itoa(i), func(t *testing.T) {
				x, err := c.JSONToXML(nil, []byte(doc))
				if err != nil {
					t.Fatalf("JSONToXML(%s): %v", doc, err)
				}
				wellFormed(t, x)
				j, err := c.XMLToJSON(nil, x)
				if err != nil {
					t.Fatalf("XMLToJSON(%s): %v", x, err)
				}
				if string(j) != doc {
					t.Errorf("JSON→XML→JSON\n in   %s\n xml  %s\n out  %s", doc, x, j)
				}
				if !jsonEqual(t, j, []byte(doc)) {
					t.Errorf("values differ")
				}
				x2, err := c.JSONToXML(nil, j)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(x, x2) {
					t.Errorf("XML→JSON→XML\n in  %s\n out %s", x, x2)
				}
			})
		}
	}
}

// canonicalXML are documents as an XML backend would send them (no hints)
// in canonical form, with the JSON they read as.
var canonicalXML = []struct {
	xml, json string
	arrays    []string
}{
	{`<root><id>42</id><customer><name>Ada</name><vip>true</vip></customer><line><sku>A</sku></line><line><sku>B</sku></line></root>`,
		`{"id":42,"customer":{"name":"Ada","vip":true},"line":[{"sku":"A"},{"sku":"B"}]}`, nil},
	{`<root><line><sku>A</sku><qty>1</qty></line></root>`, `{"line":[{"sku":"A","qty":1}]}`, []string{"line"}},
	{`<root><order id="7"><line n="1">x</line></order></root>`, `{"order":{"@id":7,"line":[{"@n":1,"#text":"x"}]}}`, []string{"order/line"}},
	{`<root xmlns="urn:a" xmlns:b="urn:b"><b:item b:kind="x">v</b:item></root>`, `{"@xmlns":"urn:a","@xmlns:b":"urn:b","b:item":{"@b:kind":"x","#text":"v"}}`, nil},
	{`<root><a/><b>0012</b><c>1.50</c><d>-3e2</d><e>12345678901234567</e></root>`, `{"a":"","b":"0012","c":1.50,"d":-3e2,"e":"12345678901234567"}`, nil},
	{`<root>text &amp; more &lt;tag&gt;</root>`, `"text \u0026 more \u003ctag\u003e"`, nil},
	{`<root><p>one<br/>two</p></root>`, `{"p":{"#text":"onetwo","br":""}}`, nil},
	{`<root attr="a&quot;b&#xA;c"/>`, `{"@attr":"a\"b\nc"}`, nil},
	{`<root><x>a</x><y>b</y><x>c</x></root>`, `{"x":["a","c"],"y":"b"}`, nil},
	{`<root><TRUE>True</TRUE><f>false</f></root>`, `{"TRUE":"True","f":false}`, nil},
}

func TestXMLToJSON(t *testing.T) {
	for i, tc := range canonicalXML {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			c, err := NewXMLCodec(XMLConfig{Arrays: tc.arrays, NoHints: true})
			if err != nil {
				t.Fatal(err)
			}
			j, err := c.XMLToJSON(nil, []byte(tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			if string(j) != tc.json {
				t.Errorf("XMLToJSON\n in   %s\n got  %s\n want %s", tc.xml, j, tc.json)
			}
			// Documents whose JSON inference reads back exactly also go
			// back to the same XML, without hints.
			if i == 6 || i == 8 {
				return // mixed content and interleaved names are not canonical
			}
			x, err := c.JSONToXML(nil, j)
			if err != nil {
				t.Fatal(err)
			}
			if string(x) != tc.xml {
				t.Errorf("XML→JSON→XML\n in  %s\n out %s", tc.xml, x)
			}
		})
	}
}

// TestXMLToJSONLenient reads XML as servers write it: declaration,
// indentation, comments, CDATA, processing instructions.
func TestXMLToJSONLenient(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<!-- an order -->
<order xmlns:json="urn:gatekit:json">
  <id>42</id>
  <note><![CDATA[a < b & c]]></note>
  <?render fast?>
  <tags json:type="array">x</tags>
  <empty json:type="list"/>
  <text>
    indented text
    <b>1</b>
  </text>
</order>
`
	c, _ := NewXMLCodec(XMLConfig{})
	j, err := c.XMLToJSON(nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":42,"note":"a \u003c b \u0026 c","tags":["x"],"empty":[],"text":{"#text":"indented text","b":1}}`
	if string(j) != want {
		t.Errorf("got  %s\nwant %s", j, want)
	}
}

func TestXMLToJSONHostile(t *testing.T) {
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`
	tests := []struct {
		name string
		cfg  XMLConfig
		in   string
	}{
		{"billion laughs", XMLConfig{}, laughs},
		{"external entity", XMLConfig{}, `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>`},
		{"doctype alone", XMLConfig{}, `<!DOCTYPE r SYSTEM "http://example.com/r.dtd"><r/>`},
		{"undefined entity", XMLConfig{}, `<r>&xxe;</r>`},
		{"deep nesting", XMLConfig{}, strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000)},
		{"deep nesting, unclosed", XMLConfig{}, strings.Repeat("<a>", 100000)},
		{"depth limit", XMLConfig{MaxDepth: 3}, `<a><b><c><d/></c></b></a>`},
		{"size limit", XMLConfig{MaxBytes: 16}, `<a>01234567890123456789</a>`},
		{"element limit", XMLConfig{MaxElements: 3}, `<a><b/><b/><b/></a>`},
		{"many attributes", XMLConfig{}, `<a ` + manyAttrs(5000) + ` a0="dup"/>`},
		{"mismatched end", XMLConfig{}, `<a></b>`},
		{"two roots", XMLConfig{}, `<a/><b/>`},
		{"text outside", XMLConfig{}, `<a/>text`},
		{"no root", XMLConfig{}, `<!-- nothing -->`},
		{"empty", XMLConfig{}, ``},
		{"unclosed", XMLConfig{}, `<a><b></b>`},
		{"latin-1", XMLConfig{}, `<?xml version="1.0" encoding="ISO-8859-1"?><a>caf` + "\xe9" + `</a>`},
		{"invalid utf-8", XMLConfig{}, "<a>\xff</a>"},
		{"nul reference", XMLConfig{}, `<a>&#0;</a>`},
		{"duplicate attribute", XMLConfig{}, `<a x="1" x="2"/>`},
		{"bad number hint", XMLConfig{}, `<a xmlns:json="urn:gatekit:json" json:type="number">abc</a>`},
		{"bad boolean hint", XMLConfig{}, `<a xmlns:json="urn:gatekit:json" json:type="boolean">yes</a>`},
		{"unknown hint", XMLConfig{}, `<a xmlns:json="urn:gatekit:json" json:type="date">x</a>`},
		{"not xml", XMLConfig{}, `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewXMLCodec(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.XMLToJSON(nil, []byte(tc.in))
			if !errors.Is(err, ErrNotXML) {
				t.Fatalf("err = %v (output %.100s), want ErrNotXML", err, out)
			}
		})
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(" a" + strconv.Itoa(i) + `="v"`)
	}
	return b.String()
}

func TestJSONToXMLErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  XMLConfig
		in   string
		err  error
	}{
		{"invalid json", XMLConfig{}, `{"a":`, ErrNotJSON},
		{"key starting with a digit", XMLConfig{}, `{"1a":1}`, ErrMismatch},
		{"key with space", XMLConfig{}, `{"a b":1}`, ErrMismatch},
		{"empty key", XMLConfig{}, `{"":1}`, ErrMismatch},
		{"two colons", XMLConfig{}, `{"a:b:c":1}`, ErrMismatch},
		{"letter outside encoding/xml's name classes", XMLConfig{}, `{"Ѝ":""}`, ErrMismatch},
		{"hash key", XMLConfig{}, `{"#comment":1}`, ErrMismatch},
		{"object attribute", XMLConfig{}, `{"@x":{"y":1}}`, ErrMismatch},
		{"array attribute", XMLConfig{}, `{"@x":[1]}`, ErrMismatch},
		{"duplicate attribute", XMLConfig{}, `{"@x":1,"@x":2}`, ErrMismatch},
		{"duplicate text", XMLConfig{}, `{"#text":1,"#text":2}`, ErrMismatch},
		{"object text", XMLConfig{}, `{"#text":{}}`, ErrMismatch},
		{"control character", XMLConfig{}, `{"a":"\u0001"}`, ErrMismatch},
		{"noncharacter", XMLConfig{}, `{"a":"\uffff"}`, ErrMismatch},
		{"reserved hint attribute", XMLConfig{}, `{"@json:type":"x"}`, ErrMismatch},
		{"reserved prefix", XMLConfig{}, `{"json:a":1}`, ErrMismatch},
		{"reserved declaration", XMLConfig{}, `{"@xmlns:json":"urn:x"}`, ErrMismatch},
		{"too deep", XMLConfig{MaxDepth: 4}, `{"a":{"b":{"c":{"d":{"e":1}}}}}`, ErrMismatch},
		{"deep arrays", XMLConfig{}, strings.Repeat("[", 5000) + strings.Repeat("]", 5000), ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewXMLCodec(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.JSONToXML([]byte("prefix"), []byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if string(out) != "prefix" {
				t.Errorf("dst changed on error: %q", out)
			}
		})
	}
}

func TestXMLConfigErrors(t *testing.T) {
	for _, cfg := range []XMLConfig{
		{Root: "1root"}, {Root: "json:root"}, {Item: "a b"}, {Arrays: []string{""}}, {Arrays: []string{"a//b"}}, {Arrays: []string{"a/b c"}}, {MaxDepth: -1},
	} {
		if _, err := NewXMLCodec(cfg); err == nil {
			t.Errorf("NewXMLCodec(%+v) succeeded", cfg)
		}
	}
}

// TestXMLBackend puts an XML backend behind a JSON API: the client sends and
// receives JSON.
func TestXMLBackend(t *testing.T) {
	in := mustRequest(t, Set("source", String("api")), JSONToXML(XMLConfig{Root: "order"}))
	out := mustResponse(t, Config{Ops: []Op{XMLToJSON(XMLConfig{Arrays: []string{"line"}}), Delete("internal")}})
	var saw upstreamSaw
	reply := `<?xml version="1.0" encoding="UTF-8"?><result><id>9</id><line><sku>A</sku></line><internal>x</internal></result>`
	up := echoUpstream(&saw, 200, http.Header{"Content-Type": {"text/xml; charset=UTF-8"}}, reply)
	rec := do(pipe(up, in.Stage(), out.Stage()), "POST", "/", `{"sku":"A","qty":2}`, http.Header{"Content-Type": {"application/json"}})
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	wantXML := `<order><sku>A</sku><qty>2</qty><source>api</source></order>`
	if string(saw.body) != wantXML {
		t.Errorf("upstream got %s, want %s", saw.body, wantXML)
	}
	if ct := saw.header.Get("Content-Type"); ct != "application/xml; charset=utf-8" {
		t.Errorf("upstream Content-Type %q", ct)
	}
	if saw.contentLength != int64(len(wantXML)) {
		t.Errorf("upstream Content-Length %d, want %d", saw.contentLength, len(wantXML))
	}
	wantJSON := `{"id":9,"line":[{"sku":"A"}]}`
	if rec.Body.String() != wantJSON {
		t.Errorf("client got %s, want %s", rec.Body, wantJSON)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("client Content-Type %q", ct)
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(wantJSON)) {
		t.Errorf("client Content-Length %s, want %d", cl, len(wantJSON))
	}
}

func TestXMLBackendErrors(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		status            int
	}{
		{"html reply", "text/html", `<html><body>down</body></html>`, 502},
		{"latin-1 reply", "application/xml; charset=iso-8859-1", `<a/>`, 502},
		{"doctype reply", "application/xml", `<!DOCTYPE a [<!ENTITY x "secret-entity">]><a>&x;</a>`, 502},
		{"broken reply", "application/xml", `<a><b></a>`, 502},
		{"xml without content type", "", `<a>1</a>`, 200},
		{"vendor xml", "application/vnd.acme+xml", `<a>1</a>`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := mustResponse(t, Config{Ops: []Op{XMLToJSON(XMLConfig{})}})
			var saw upstreamSaw
			hdr := http.Header{}
			if tc.ctype != "" {
				hdr.Set("Content-Type", tc.ctype)
			}
			rec := do(pipe(echoUpstream(&saw, 200, hdr, tc.body), out.Stage()), "GET", "/", "", nil)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 502 {
				p := decodeProblem(t, rec)
				if strings.Contains(rec.Body.String(), "secret") || strings.Contains(p.Detail, "<") {
					t.Errorf("problem leaks the reply: %s", rec.Body)
				}
			}
		})
	}
	// A request body that is not JSON cannot become XML.
	in := mustRequest(t, JSONToXML(XMLConfig{}))
	var saw upstreamSaw
	rec := do(pipe(echoUpstream(&saw, 200, nil, ""), in.Stage()), "POST", "/", `a=1`, nil)
	if rec.Code != 400 || saw.called {
		t.Errorf("status %d, upstream called %v", rec.Code, saw.called)
	}
	// JSON that has no XML form is the client's mistake too.
	rec = do(pipe(echoUpstream(&saw, 200, nil, ""), in.Stage()), "POST", "/", `{"1":2}`, nil)
	if rec.Code != 400 {
		t.Errorf("status %d", rec.Code)
	}
}

// wellFormed fails the test if b is not well-formed XML with one root.
func wellFormed(t testing.TB, b []byte) {
	t.Helper()
	if err := checkWellFormed(b); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, b)
	}
}

func checkWellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		return errors.New("not exactly one complete root element")
	}
	return nil
}

// TestXMLLargeObjects checks that objects and elements with many members
// convert in linear time and keep their rules (no duplicate attributes).
func TestXMLLargeObjects(t *testing.T) {
	c, _ := NewXMLCodec(XMLConfig{})
	var b strings.Builder
	b.WriteString(`{"x":{`)
	for i := range 50000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"@a` + strconv.Itoa(i) + `":"v","e` + strconv.Itoa(i%100) + `":1`)
	}
	b.WriteString(`},"y":{`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"@a` + strconv.Itoa(i) + `":"v"`)
	}
	b.WriteString(`}}`)
	x, err := c.JSONToXML(nil, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.XMLToJSON(nil, x)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(j) {
		t.Fatal("invalid JSON")
	}
	dup := strings.Replace(b.String(), `"@a49999"`, `"@a0"`, 1)
	if _, err := c.JSONToXML(nil, []byte(dup)); !errors.Is(err, ErrMismatch) {
		t.Errorf("duplicate attribute in a large object: err = %v", err)
	}
}
