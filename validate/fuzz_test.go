package validate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/validate"
)

// FuzzValidateBody feeds arbitrary bytes to the body path (depth scan,
// decoder, schema) and checks that it never panics and always answers
// with the right kind of problem: 400 for what is not JSON or nests too
// deeply, 422 or nothing for JSON. Seeds are in testdata/fuzz.
func FuzzValidateBody(f *testing.F) {
	for _, seed := range []string{
		`{"a": [1, {"b": "c"}]}`,
		`[[[[[[]]]]]]`,
		`"\"[[[["`,
		`{"a":}`,
		"\xff\xfe",
		strings.Repeat("[", 100),
		``,
	} {
		f.Add([]byte(seed))
	}
	const maxDepth = 5
	v, err := validate.New(validate.Config{
		MaxDepth: maxDepth,
		Body: validate.Schema{JSON: `{
			"type": ["object", "array", "string", "number"],
			"properties": {"a": {"type": "array", "maxItems": 2}, "email": {"format": "email"}},
			"items": {"$ref": "#"}
		}`},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		err := v.Validate(context.Background(), gateway.NewRequest(r))
		var ge *gateway.Error
		if err != nil && !errors.As(err, &ge) {
			t.Fatalf("not a *gateway.Error: %v", err)
		}
		depth, valid := jsonDepth(body)
		switch {
		case len(bytes.TrimSpace(body)) == 0:
			if ge == nil || ge.Status != http.StatusBadRequest {
				t.Fatalf("empty body: %v", err)
			}
		case valid && depth > maxDepth:
			if ge == nil || ge.Status != http.StatusBadRequest || !strings.Contains(ge.Detail, "deeper") {
				t.Fatalf("depth %d: got %v, want the depth refusal", depth, err)
			}
		case valid:
			if ge != nil && ge.Status != http.StatusUnprocessableEntity {
				t.Fatalf("valid JSON of depth %d: got %v", depth, err)
			}
		default:
			if ge == nil || ge.Status != http.StatusBadRequest {
				t.Fatalf("invalid JSON: got %v", err)
			}
			if _, err := json.Marshal(ge); err != nil {
				t.Fatalf("problem does not encode: %v", err)
			}
		}
	})
}

// jsonDepth returns the nesting depth of b and whether b is one valid JSON
// value, using encoding/json's tokenizer, which does not recurse.
func jsonDepth(b []byte) (int, bool) {
	if !json.Valid(b) {
		return 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	depth, max := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return max, true
		}
		if err != nil {
			return 0, false
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			if depth > max {
				max = depth
			}
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}
