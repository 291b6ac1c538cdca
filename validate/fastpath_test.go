package validate

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// orderSchema is examples/loadtest/routes.OrderSchema.
const orderSchema = `{
  "type": "object",
  "required": ["customer", "sku", "quantity", "price", "currency"],
  "additionalProperties": false,
  "properties": {
    "customer": {"type": "string", "pattern": "^c-[0-9]{3,8}$"},
    "sku":      {"type": "string", "minLength": 3, "maxLength": 32},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
    "price":    {"type": "string", "pattern": "^[0-9]{1,9}\\.[0-9]{2}$"},
    "currency": {"enum": ["EUR", "GBP", "USD"]}
  }
}`

const orderBody = `{"customer":"c-100","sku":"SKU-12345","quantity":3,"price":"19.99","currency":"EUR"}`

// fastSchemas are eligible schemas that, between them, use every keyword
// of the subset.
var fastSchemas = []string{
	orderSchema,
	// numbers
	`{"type": "object", "minProperties": 1, "maxProperties": 3, "properties": {
		"n": {"type": "number", "exclusiveMinimum": -2.5, "exclusiveMaximum": 1e3},
		"m": {"multipleOf": 0.25, "maximum": 18446744073709551615},
		"i": {"type": ["integer", "null"], "minimum": -5, "maximum": 5},
		"k": {"const": 2},
		"e": {"enum": [1, 2.5, "x", true, null, -0.001]}
	}}`,
	// nesting, arrays, false, required without a property, extra allowed
	`{"type": "object", "required": ["z"], "additionalProperties": true, "maxProperties": 4, "properties": {
		"o": {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}, "required": ["a"], "additionalProperties": false},
		"arr": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
		"no": false,
		"s": {"type": "string", "pattern": "é|\\d", "minLength": 2},
		"z": true
	}}`,
	// names and strings beyond ASCII
	`{"additionalProperties": false, "properties": {
		"a": {"type": "boolean", "const": false},
		"é": {"type": "null"},
		"\ufffd": {"type": "string", "maxLength": 2},
		"a\"b": {"const": "\u00e9\ud83d\ude00"},
		"t": {"enum": ["\ufffd", "\ud83d\ude00x"]}
	}}`,
	// draft-04
	`{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "properties": {
		"x": {"type": "integer", "maximum": 10, "exclusiveMaximum": true, "multipleOf": 3}
	}}`,
	// not an object at the root
	`{"type": "array", "items": {"enum": ["a", "b", 1]}, "maxItems": 4}`,
}

func mustValidator(tb testing.TB, schema string) *Validator {
	tb.Helper()
	v, err := New(Config{Body: Schema{JSON: schema}})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// libAccepts is the library's verdict on b, as checkBody reaches it.
func libAccepts(v *Validator, b []byte) bool {
	if tooDeep(b, v.maxDepth) >= 0 {
		return false
	}
	doc, err := decodeJSON(b)
	if err != nil {
		return false
	}
	return v.body.Validate(doc) == nil
}

// agree fails t if the fast path's verdict on b contradicts the
// library's, or if Validate answers differently with and without it.
func agree(t *testing.T, v *Validator, b []byte) fastVerdict {
	t.Helper()
	if tooDeep(b, v.maxDepth) >= 0 {
		return fastUnsure // checkBody never asks the fast path
	}
	got := v.bodyFast.check(b, v.maxDepth)
	lib := libAccepts(v, b)
	if got == fastAccept && !lib || got == fastReject && lib {
		t.Fatalf("body %q: fast path says %v, library accepts: %v", b, got, lib)
	}
	slow := *v
	slow.bodyFast = nil
	if e1, e2 := v.checkBody(b), slow.checkBody(b); !reflect.DeepEqual(e1, e2) {
		t.Fatalf("body %q: with the fast path %#v, without %#v", b, e1, e2)
	}
	return got
}

func (f fastVerdict) String() string {
	return [...]string{"reject", "unsure", "accept"}[f]
}

func TestFastPathEligible(t *testing.T) {
	for i, s := range fastSchemas {
		if v := mustValidator(t, s); v.bodyFast == nil {
			t.Errorf("fastSchemas[%d] is not eligible", i)
		}
	}
	for _, tc := range []struct {
		name   string
		schema string
		want   bool
	}{
		{"empty", `{}`, true},
		{"true", `true`, true},
		{"false", `false`, true},
		{"unknown format", `{"format": "x-custom"}`, true},
		{"annotations", `{"title": "t", "description": "d", "default": 1, "examples": [1]}`, true},
		{"format", `{"properties": {"e": {"type": "string", "format": "email"}}}`, false},
		{"ref", `{"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}}`, false},
		{"allOf", `{"allOf": [{"type": "object"}]}`, false},
		{"anyOf", `{"anyOf": [{"type": "object"}]}`, false},
		{"oneOf", `{"oneOf": [{"type": "object"}]}`, false},
		{"not", `{"not": {"type": "string"}}`, false},
		{"if", `{"if": {"type": "string"}, "then": {"minLength": 1}}`, false},
		{"patternProperties", `{"patternProperties": {"^a": {}}}`, false},
		{"additionalProperties schema", `{"additionalProperties": {"type": "string"}}`, false},
		{"additionalProperties false schema", `{"additionalProperties": false}`, true},
		{"propertyNames", `{"propertyNames": {"maxLength": 3}}`, false},
		{"dependentRequired", `{"dependentRequired": {"a": ["b"]}}`, false},
		{"unevaluatedProperties", `{"unevaluatedProperties": false}`, false},
		{"uniqueItems", `{"uniqueItems": true}`, false},
		{"contains", `{"contains": {"type": "string"}}`, false},
		{"prefixItems", `{"prefixItems": [{"type": "string"}]}`, false},
		{"tuple items draft-07", `{"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}`, false},
		{"items draft-07", `{"$schema": "http://json-schema.org/draft-07/schema#", "items": {"type": "string"}}`, true},
		{"object enum", `{"enum": [{"a": 1}]}`, false},
		{"array const", `{"const": [1]}`, false},
		{"huge bound", `{"maximum": 1e30}`, false},
		{"tiny bound", `{"minimum": 1e-30}`, false},
		{"fractional bound", `{"minimum": 0.1, "maximum": 99.99}`, true},
		{"nested not eligible", `{"properties": {"a": {"properties": {"b": {"format": "uuid"}}}}}`, false},
		// New does not call AssertContent: content keywords are annotations.
		{"content", `{"contentMediaType": "application/json", "contentEncoding": "base64"}`, true},
		{"content draft-07", `{"$schema": "http://json-schema.org/draft-07/schema#", "contentMediaType": "application/json"}`, true},
		{"too many names", manyProps(65), false},
		{"64 names", manyProps(64), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustValidator(t, tc.schema).bodyFast != nil; got != tc.want {
				t.Errorf("eligible = %v, want %v", got, tc.want)
			}
		})
	}
}

func manyProps(n int) string {
	var b strings.Builder
	b.WriteString(`{"properties": {`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"p` + strings.Repeat("x", i) + `": {"type": "string"}`)
	}
	b.WriteString(`}}`)
	return b.String()
}

// TestFastPathSchemaFields fails when the library's Schema gains a field,
// which the eligibility check must then consider.
func TestFastPathSchemaFields(t *testing.T) {
	var got []string
	typ := reflect.TypeFor[jsonschema.Schema]()
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() {
			got = append(got, f.Name)
		}
	}
	want := strings.Fields(`DraftVersion Location Bool ID Ref Anchor RecursiveRef RecursiveAnchor
		DynamicRef DynamicAnchor Types Enum Const Not AllOf AnyOf OneOf If Then Else Format
		MaxProperties MinProperties Required PropertyNames Properties PatternProperties
		AdditionalProperties Dependencies DependentRequired DependentSchemas UnevaluatedProperties
		MinItems MaxItems UniqueItems Contains MinContains MaxContains Items AdditionalItems
		PrefixItems Items2020 UnevaluatedItems MinLength MaxLength Pattern ContentEncoding
		ContentMediaType ContentSchema Maximum Minimum ExclusiveMaximum ExclusiveMinimum
		MultipleOf Extensions Title Description Default Comment ReadOnly WriteOnly Examples Deprecated`)
	if !slices.Equal(got, want) {
		t.Errorf("jsonschema.Schema fields changed: review fastCompile\ngot  %v\nwant %v", got, want)
	}
}

func TestFastPathVerdicts(t *testing.T) {
	A, R, U := fastAccept, fastReject, fastUnsure
	for _, tc := range []struct {
		name   string
		schema int // index into fastSchemas
		body   string
		want   fastVerdict
	}{
		{"order", 0, orderBody, A},
		{"whitespace", 0, " \t\r\n" + orderBody + "\n\t ", A},
		{"BOM", 0, "\ufeff" + orderBody, R},
		{"empty", 0, ``, R},
		{"only whitespace", 0, "  \n", R},
		{"trailing data", 0, orderBody + `{}`, R},
		{"trailing comma", 0, strings.TrimSuffix(orderBody, "}") + `,}`, R},
		{"missing required", 0, `{"customer":"c-100","sku":"SKU-12345","quantity":3,"price":"19.99"}`, R},
		{"extra property", 0, strings.TrimSuffix(orderBody, "}") + `,"x":1}`, R},
		{"null for string", 0, strings.Replace(orderBody, `"SKU-12345"`, `null`, 1), R},
		{"quantity 1.0", 0, strings.Replace(orderBody, `:3,`, `:1.0,`, 1), A},
		{"quantity 1e2", 0, strings.Replace(orderBody, `:3,`, `:1e2,`, 1), A},
		{"quantity 10E+2", 0, strings.Replace(orderBody, `:3,`, `:10E+2,`, 1), A},
		{"quantity 1e3+1", 0, strings.Replace(orderBody, `:3,`, `:1.001e3,`, 1), R},
		{"quantity 2.5", 0, strings.Replace(orderBody, `:3,`, `:2.5,`, 1), R},
		{"quantity -0", 0, strings.Replace(orderBody, `:3,`, `:-0,`, 1), R},
		{"quantity huge", 0, strings.Replace(orderBody, `:3,`, `:123456789012345678901234567890,`, 1), U},
		{"quantity 01", 0, strings.Replace(orderBody, `:3,`, `:01,`, 1), R},
		{"quantity 1.", 0, strings.Replace(orderBody, `:3,`, `:1.,`, 1), R},
		{"quantity +1", 0, strings.Replace(orderBody, `:3,`, `:+1,`, 1), R},
		{"escaped key", 0, strings.Replace(orderBody, `"sku"`, `"\u0073ku"`, 1), A},
		{"escaped value", 0, strings.Replace(orderBody, `"EUR"`, `"\u0045UR"`, 1), A},
		{"duplicate key", 0, strings.Replace(orderBody, `{`, `{"sku":"x",`, 1), U},
		{"sku too short", 0, strings.Replace(orderBody, `SKU-12345`, `SK`, 1), R},
		{"sku 3 code points", 0, strings.Replace(orderBody, `SKU-12345`, `éé€`, 1), A},
		{"sku bad UTF-8", 0, strings.Replace(orderBody, `SKU-12345`, "\xff\xfe\xfd", 1), A},
		{"sku lone surrogate", 0, strings.Replace(orderBody, `SKU-12345`, `\ud800ab`, 1), A},
		{"control character", 0, strings.Replace(orderBody, `SKU-12345`, "SKU\t1", 1), R},
		{"bad escape", 0, strings.Replace(orderBody, `SKU-12345`, `SKU\'1`, 1), R},
		{"pattern", 0, strings.Replace(orderBody, `c-100`, `c-1x0`, 1), R},
		{"enum", 0, strings.Replace(orderBody, `EUR`, `eur`, 1), R},
		{"number bounds", 1, `{"n": -2.4999, "i": -5, "k": 2.0}`, A},
		{"exclusive bound", 1, `{"n": -2.5}`, R},
		{"exclusive max", 1, `{"n": 999.99999999999999999}`, U},
		{"exclusive max exact", 1, `{"n": 1000}`, R},
		{"multipleOf", 1, `{"m": 0.75}`, A},
		{"multipleOf not", 1, `{"m": 0.7}`, R},
		{"multipleOf big", 1, `{"m": 18446744073709551615}`, A},
		{"multipleOf 0.1", 1, `{"m": 0.1}`, R},
		{"maximum big", 1, `{"m": 18446744073709551616}`, U},
		{"integer or null", 1, `{"i": null}`, A},
		{"integer 2.5", 1, `{"i": 2.5}`, R},
		{"const", 1, `{"k": 3}`, R},
		{"enum number", 1, `{"e": 25e-1}`, A},
		{"enum -0.001", 1, `{"e": -1e-3}`, A},
		{"enum null", 1, `{"e": null}`, A},
		{"enum false", 1, `{"e": false}`, R},
		{"enum object", 1, `{"e": {}}`, R},
		{"minProperties", 1, `{}`, R},
		{"maxProperties", 1, `{"n": 1, "i": 1, "k": 2, "x": 1}`, R},
		{"maxProperties dup extra", 1, `{"n": 1, "i": 1, "x": 1, "x": 2}`, U},
		{"nested", 2, `{"z": 0, "o": {"a": "abc"}, "arr": [1, 2.0, -3]}`, A},
		{"nested missing", 2, `{"z": 0, "o": {}}`, R},
		{"nested extra", 2, `{"z": 0, "o": {"a": "", "b": 1}}`, R},
		{"items", 2, `{"z": 0, "arr": [1, "2"]}`, R},
		{"minItems", 2, `{"z": 0, "arr": []}`, R},
		{"maxItems", 2, `{"z": 0, "arr": [1, 2, 3, 4]}`, R},
		{"false schema", 2, `{"z": 0, "no": null}`, R},
		{"required only", 2, `{"x": 1}`, R},
		{"extra allowed", 2, `{"z": [{"deep": [1, {"a": null}]}], "x": "y"}`, A},
		{"pattern é", 2, `{"z": 1, "s": "aé"}`, A},
		{"pattern escaped é", 2, `{"z": 1, "s": "a\u00e9"}`, A},
		{"pattern bad UTF-8", 2, "{\"z\": 1, \"s\": \"a\xc3\"}", R},
		{"unicode names", 3, `{"a": false, "é": null, "\ufffd": "ab", "a\"b": "é😀", "t": "😀x"}`, A},
		{"escaped unicode names", 3, `{"\u00e9": null, "\uFFFD": "\ud83d\ude00", "a\u0022b": "\u00e9\ud83d\ude00"}`, A},
		{"bad UTF-8 name", 3, "{\"\xff\": \"abc\"}", R},
		{"bad UTF-8 name is U+FFFD", 3, "{\"\xff\": \"ab\"}", A},
		{"lone surrogate is U+FFFD", 3, `{"t": "\udc00"}`, A},
		{"string too long for const", 3, `{"a\"b": "` + strings.Repeat(`\u00e9`, 200) + `"}`, U},
		{"draft-04 exclusive", 4, `{"x": 9}`, A},
		{"draft-04 exclusive max", 4, `{"x": 10}`, R},
		{"draft-04 integer 9.0", 4, `{"x": 9.0}`, A},
		{"root array", 5, `["a", 1, "b"]`, A},
		{"root array bad", 5, `["a", 2]`, R},
		{"root object", 5, `{}`, R},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustValidator(t, fastSchemas[tc.schema])
			if got := agree(t, v, []byte(tc.body)); got != tc.want {
				t.Errorf("verdict %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzFastPathAgrees is the fast path's differential test: on any body
// and each schema of fastSchemas, a verdict it gives (accept or reject) is
// the library's, and Validate answers the same with it and without.
func FuzzFastPathAgrees(f *testing.F) {
	for _, seed := range []string{
		orderBody,
		`{"customer":"c-100","sku":"\u0053KU","quantity":1.0e1,"price":"0.00","currency":"USD","sku":"x"}`,
		`{"n": -2.4999, "i": -5, "k": 2.0, "m": 1.25e0, "e": 25e-1}`,
		`{"z": 0, "o": {"a": "abc"}, "arr": [1, 2.0, -3], "s": "\u00e9"}`,
		`{"a": false, "é": null, "\ufffd": "ab", "a\"b": "é😀", "t": "😀x"}`,
		"{\"\xff\": \"\xc3\", \"t\": \"\\udc00\"}",
		`["a", 1, "b"]`,
		`{"x": 9, "x": 10}`,
		`{"a":}`,
		` [1e400, -0.0, 0e-5] `,
	} {
		f.Add([]byte(seed))
	}
	vs := make([]*Validator, len(fastSchemas))
	for i, s := range fastSchemas {
		vs[i] = mustValidator(f, s)
		vs[i].maxDepth = 8
		if vs[i].bodyFast == nil {
			f.Fatalf("fastSchemas[%d] is not eligible", i)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range vs {
			agree(t, v, body)
		}
	})
}

// BenchmarkFastPath compares the fast path with the library's path on the
// same eligible schema and 1 KiB body.
//
// Target: no allocation on the fast path, and a small fraction of the
// library's time (measured in the issue note).
func BenchmarkFastPath(b *testing.B) {
	const schema = `{
		"type": "object",
		"required": ["id", "amount", "currency", "payee"],
		"additionalProperties": false,
		"properties": {
			"id": {"type": "string", "pattern": "^[0-9a-f-]{36}$"},
			"amount": {"type": "integer", "minimum": 1},
			"currency": {"enum": ["EUR", "USD", "GBP"]},
			"payee": {
				"type": "object",
				"required": ["name", "email"],
				"properties": {"name": {"type": "string", "maxLength": 100}, "email": {"type": "string", "maxLength": 254}}
			},
			"reference": {"type": "string", "maxLength": 140},
			"urgent": {"type": "boolean"},
			"rate": {"type": "number", "exclusiveMinimum": 0},
			"tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z-]+$"}, "maxItems": 20},
			"note": {"type": "string"}
		}
	}`
	body := []byte(`{"id": "123e4567-e89b-12d3-a456-426614174000", "amount": 125000, "currency": "EUR",
"payee": {"name": "Ada Lovelace", "email": "ada@example.com"},
"reference": "Invoice 2024-0042 for consulting services rendered in February", "urgent": false, "rate": 1.0825,
"tags": ["consulting", "february", "invoice", "priority-normal", "eu", "sepa"],
"note": "`)
	for len(body) < 1024-2 {
		body = append(body, 'x')
	}
	body = append(body, `"}`...)
	fast := mustValidator(b, schema)
	if fast.bodyFast == nil {
		b.Fatal("schema not eligible")
	}
	slow := *fast
	slow.bodyFast = nil
	for _, bc := range []struct {
		name string
		v    *Validator
	}{{"fast", fast}, {"library", &slow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.v.checkBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
