package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	. "github.com/gatekit/gatekit/transform"
)

// The seed corpora live in testdata/fuzz/<FuzzName>; the f.Add seeds below
// are the smallest cases, kept in code so they run without the files.

func FuzzJSONToXML(f *testing.F) {
	for _, doc := range roundTripJSON {
		f.Add([]byte(doc))
	}
	f.Add([]byte(`{"@a":{"b":1}}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	c, err := NewXMLCodec(XMLConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := c.JSONToXML(nil, in)
		if err != nil {
			if !json.Valid(in) && !errors.Is(err, ErrNotJSON) {
				t.Fatalf("invalid JSON gave %v, want ErrNotJSON", err)
			}
			if json.Valid(in) && !errors.Is(err, ErrMismatch) {
				t.Fatalf("JSON %q that XML cannot carry gave %v, want ErrMismatch", in, err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("invalid JSON %q was converted", in)
		}
		if err := checkWellFormed(x); err != nil {
			t.Fatalf("JSONToXML(%q) = %q, not well-formed: %v", in, x, err)
		}
		j, err := c.XMLToJSON(nil, x)
		if err != nil {
			t.Fatalf("XMLToJSON cannot read JSONToXML's output %q: %v", x, err)
		}
		if !json.Valid(j) {
			t.Fatalf("XMLToJSON(%q) = %q, not JSON", x, j)
		}
		// The rules promise an exact round trip: the same values, numbers
		// written as they were. Repeated keys read back as an array, and
		// strings as encoding/json reads them (a lone surrogate is U+FFFD).
		want, ok := jsonValue(in)
		if !ok {
			return
		}
		if got, _ := jsonValue(j); !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON→XML→JSON\n in   %s\n xml  %s\n out  %s", in, x, j)
		}
	})
}

// jsonValue decodes doc keeping numbers as written; ok is false when an
// object repeats a key.
func jsonValue(doc []byte) (v any, ok bool) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var walk func() (any, bool)
	walk = func() (any, bool) {
		tok, err := d.Token()
		if err != nil {
			return nil, false
		}
		switch tok {
		case json.Delim('{'):
			m := map[string]any{}
			for d.More() {
				k, _ := d.Token()
				key, _ := k.(string)
				if _, dup := m[key]; dup {
					return nil, false
				}
				if m[key], ok = walk(); !ok {
					return nil, false
				}
			}
			d.Token()
			return m, true
		case json.Delim('['):
			a := []any{}
			for d.More() {
				e, ok := walk()
				if !ok {
					return nil, false
				}
				a = append(a, e)
			}
			d.Token()
			return a, true
		}
		return tok, true
	}
	return walk()
}

func FuzzXMLToJSON(f *testing.F) {
	for _, tc := range canonicalXML {
		f.Add([]byte(tc.xml))
	}
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`))
	f.Add([]byte(`<a xmlns:json="urn:gatekit:json" json:type="array list @b:number #text:null"><b/></a>`))
	c, err := NewXMLCodec(XMLConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		j, err := c.XMLToJSON(nil, in)
		if err != nil {
			if !errors.Is(err, ErrNotXML) {
				t.Fatalf("error %v does not wrap ErrNotXML", err)
			}
			return
		}
		if !json.Valid(j) {
			t.Fatalf("XMLToJSON(%q) = %q, not JSON", in, j)
		}
		if err := checkWellFormed(in); err != nil {
			t.Fatalf("accepted XML %q that encoding/xml finds not well-formed: %v", in, err)
		}
		// Whatever XMLToJSON makes, JSONToXML turns into well-formed XML
		// or refuses.
		x, err := c.JSONToXML(nil, j)
		if err != nil {
			return
		}
		if err := checkWellFormed(x); err != nil {
			t.Fatalf("JSONToXML(%q) = %q, not well-formed: %v", j, x, err)
		}
		// What XMLToJSON writes is canonical JSON, which survives
		// JSON→XML→JSON byte for byte.
		if j2, err := c.XMLToJSON(nil, x); err != nil || string(j2) != string(j) {
			t.Fatalf("XMLToJSON(%q) = %s;\n back to XML %s\n and to JSON %s (%v)", in, j, x, j2, err)
		}
	})
}

// fuzzOps is the fixed set of operations FuzzApplyOps applies.
var fuzzOps = [][]Op{
	{
		Set("z", JSON(`1`)),
		Rename("a", "b"),
		Delete("c"),
		Set("b.x", String("y")),
		Rename("d", "z"),
		Default("e", JSON(`[]`)),
		Delete("z", "b.x"),
		Set("items.#.n", JSON(`0`)),
		Set("f", Field("items")),
		Rename("f", "g.h"),
		Set(`k\.1`, Field("g")),
		Delete("a"),
	},
	{
		Set("a.b", JSON(`{"x":[1,"two"]}`)),
		Default("c", String("d")),
		Rename("name", "person.fullName"),
		Delete("secret", "items.#.cost"),
		Set("items.#.total", Field("items.#.price")),
		Set("items.#.cur", String("EUR")),
		Rename("items.#.qty", "items.#.quantity"),
		Set(`esc\.aped`, Field("a")),
	},
	{Keep("id", "items.#.sku", "a.b"), Wrap("data")},
	{Unwrap("data")},
	{Set("0.x", JSON(`1`)), Keep("#.x")},
}

func FuzzApplyOps(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `"s"`, `{"a":1}`,
		`{"name":"Ada","secret":1,"items":[{"sku":"a","price":2,"cost":1,"qty":3},{"sku":"b"},7,[1]]}`,
		`{"data":{"id":1}}`, `[{"x":0},{"y":1}]`, `{"a":{"b":"str"}}`, `{"a":"str"}`,
		`{"items":{"0":{"price":1}}}`, `{"a":`, `{"a":1}}`, "\xff", ` {"a" : [ 1 , 2 ] } `,
	} {
		f.Add([]byte(s))
	}
	bodies := make([]*Body, len(fuzzOps))
	singles := make([][]*Body, len(fuzzOps)) // the same operations one by one
	for i, ops := range fuzzOps {
		b, err := NewBody(ops...)
		if err != nil {
			f.Fatal(err)
		}
		bodies[i] = b
		for _, op := range ops {
			singles[i] = append(singles[i], mustBody(f, op))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := string(in)
		valid := json.Valid(in)
		for i, b := range bodies {
			out, err := b.Apply(nil, in)
			if string(in) != orig {
				t.Fatalf("ops %d changed their input", i)
			}
			if !valid {
				if !errors.Is(err, ErrNotJSON) {
					t.Fatalf("ops %d on invalid JSON %q: err = %v, want ErrNotJSON", i, in, err)
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrMismatch) {
					t.Fatalf("ops %d on %q: unexpected error %v", i, in, err)
				}
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("ops %d on %q gave invalid JSON %q", i, in, out)
			}
			// A run of operations shares an index of the top-level
			// members; one at a time, they do without: same result.
			one := in
			for _, sb := range singles[i] {
				if one, err = sb.Apply(nil, one); err != nil {
					t.Fatalf("ops %d one by one on %q: %v", i, in, err)
				}
			}
			if string(one) != string(out) {
				t.Fatalf("ops %d on %q:\n together   %s\n one by one %s", i, in, out, one)
			}
		}
	})
}
