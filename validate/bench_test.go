package validate_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/validate"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// benchSchema has ten properties of the usual kinds.
const benchSchema = `{
	"type": "object",
	"required": ["id", "amount", "currency", "payee", "created"],
	"properties": {
		"id": {"type": "string", "format": "uuid"},
		"amount": {"type": "integer", "minimum": 1},
		"currency": {"enum": ["EUR", "USD", "GBP"]},
		"payee": {
			"type": "object",
			"required": ["name", "email"],
			"properties": {"name": {"type": "string", "maxLength": 100}, "email": {"type": "string", "format": "email"}}
		},
		"created": {"type": "string", "format": "date-time"},
		"reference": {"type": "string", "maxLength": 140},
		"urgent": {"type": "boolean"},
		"rate": {"type": "number", "exclusiveMinimum": 0},
		"tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z-]+$"}, "maxItems": 20},
		"note": {"type": "string"}
	},
	"additionalProperties": false
}`

// benchPayload is a valid 1 KiB body for benchSchema.
var benchPayload = func() []byte {
	b := []byte(`{"id": "123e4567-e89b-12d3-a456-426614174000", "amount": 125000, "currency": "EUR",
"payee": {"name": "Ada Lovelace", "email": "ada@example.com"}, "created": "2024-02-29T12:30:00Z",
"reference": "Invoice 2024-0042 for consulting services rendered in February", "urgent": false, "rate": 1.0825,
"tags": ["consulting", "february", "invoice", "priority-normal", "eu", "sepa"],
"note": "`)
	for len(b) < 1024-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}()

// BenchmarkValidateBody compares the validator on a 1 KiB body with the
// bare jsonschema call on the same bytes (UnmarshalJSON + Validate).
//
// Target: the validator's overhead, which is the media-type check and the
// depth scan (the body is decoded once, by the same decoder), stays under
// 10% of the bare call. The "overhead" sub-benchmark times both in the
// same loop and reports it as overhead-%.
func BenchmarkValidateBody(b *testing.B) {
	if len(benchPayload) != 1024 {
		b.Fatalf("payload is %d bytes", len(benchPayload))
	}
	v := mustNew(b, validate.Config{Body: validate.Schema{JSON: benchSchema}})
	sch := bareSchema(b)
	req := benchRequest()
	ctx := context.Background()
	validator := func() {
		if err := v.Validate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(benchPayload))
		if err != nil {
			b.Fatal(err)
		}
		if err := sch.Validate(doc); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("validator", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			validator()
		}
	})
	b.Run("jsonschema", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bare()
		}
	})
	b.Run("overhead", func(b *testing.B) {
		var tv, tb time.Duration
		for b.Loop() {
			t0 := time.Now()
			validator()
			t1 := time.Now()
			bare()
			tb += time.Since(t1)
			tv += t1.Sub(t0)
		}
		b.ReportMetric(100*(float64(tv)-float64(tb))/float64(tb), "overhead-%")
	})
}

// BenchmarkValidatePipeline is the whole path for context: a request
// through a pipeline with the validator, body read included.
func BenchmarkValidatePipeline(b *testing.B) {
	v := mustNew(b, validate.Config{
		Body:  validate.Schema{JSON: benchSchema},
		Query: []validate.Param{{Name: "dry_run", Type: validate.TypeBool}},
	})
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, nil
	}), gateway.Validate(v))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/payments?dry_run=true", bytes.NewReader(benchPayload))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		if rec.Code != http.StatusNoContent {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

func bareSchema(tb testing.TB) *jsonschema.Schema {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(benchSchema)))
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.AddResource("file:///bench.json", doc); err != nil {
		tb.Fatal(err)
	}
	sch, err := c.Compile("file:///bench.json")
	if err != nil {
		tb.Fatal(err)
	}
	return sch
}

// benchRequest is a request whose body a previous stage already buffered,
// so that Validate's cost is compared with the library's on equal terms.
func benchRequest() *gateway.Request {
	r := httptest.NewRequest("POST", "/payments", bytes.NewReader(benchPayload))
	r.Header.Set("Content-Type", "application/json")
	req := gateway.NewRequest(r)
	req.SetBody(benchPayload)
	return req
}

// TestValidateAllocs guards the hot path: validating a valid body costs
// no allocation beyond the library's own decode and validation.
func TestValidateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are noisy under -race")
	}
	v := mustNew(t, validate.Config{
		Body:   validate.Schema{JSON: benchSchema},
		Query:  []validate.Param{{Name: "dry_run", Type: validate.TypeBool}, {Name: "limit", Type: validate.TypeInt, Max: new(100.0)}},
		Header: []validate.Param{{Name: "X-Request-Id", Type: validate.TypeUUID}},
	})
	sch := bareSchema(t)
	req := benchRequest()
	req.HTTP.URL.RawQuery = "dry_run=true&limit=10"
	req.HTTP.Header.Set("X-Request-Id", "123e4567-e89b-12d3-a456-426614174000")
	ctx := context.Background()
	got := testing.AllocsPerRun(100, func() {
		if err := v.Validate(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	want := testing.AllocsPerRun(100, func() {
		doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(benchPayload))
		if err := sch.Validate(doc); err != nil {
			t.Fatal(err)
		}
	})
	if got > want {
		t.Errorf("Validate allocates %.0f times, the bare library call %.0f: the validator adds %.0f", got, want, got-want)
	}
	t.Logf("allocations: validator %.0f, jsonschema %.0f", got, want)
}

// TestFastPathAllocs guards the point of the fast path: a valid body for
// an eligible schema (the load test's order schema) is checked without
// allocating.
func TestFastPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are noisy under -race")
	}
	v := mustNew(t, validate.Config{Body: validate.Schema{JSON: `{
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
	}`}})
	body := []byte(`{"customer":"c-100","sku":"SKU-12345","quantity":3,"price":"19.99","currency":"EUR"}`)
	r := httptest.NewRequest("POST", "/orders", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	req := gateway.NewRequest(r)
	req.SetBody(body)
	ctx := context.Background()
	got := testing.AllocsPerRun(100, func() {
		if err := v.Validate(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	if got != 0 {
		t.Errorf("Validate allocates %.0f times on the fast path, want 0", got)
	}
}
