package validate_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/validate"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type paramErr struct{ parameter, in, message string }

func TestQueryAndHeaderParams(t *testing.T) {
	tests := []struct {
		name   string
		query  []validate.Param
		header []validate.Param
		target string
		hdr    http.Header
		want   []paramErr // nil: accepted
	}{
		{"required present", []validate.Param{{Name: "q", Required: true}}, nil, "/?q=x", nil, nil},
		{"required missing", []validate.Param{{Name: "q", Required: true}}, nil, "/?other=1", nil, []paramErr{{"q", "query", "is required"}}},
		{"required present but empty", []validate.Param{{Name: "q", Required: true}}, nil, "/?q=", nil, nil},
		{"optional missing", []validate.Param{{Name: "q", Type: validate.TypeInt}}, nil, "/", nil, nil},
		{"int ok", []validate.Param{{Name: "n", Type: validate.TypeInt}}, nil, "/?n=-42", nil, nil},
		{"int bad", []validate.Param{{Name: "n", Type: validate.TypeInt}}, nil, "/?n=4.2", nil, []paramErr{{"n", "query", "must be an integer"}}},
		{"int empty", []validate.Param{{Name: "n", Type: validate.TypeInt}}, nil, "/?n=", nil, []paramErr{{"n", "query", "must be an integer"}}},
		{"int overflow", []validate.Param{{Name: "n", Type: validate.TypeInt}}, nil, "/?n=99999999999999999999", nil, []paramErr{{"n", "query", "must be an integer"}}},
		{"number ok", []validate.Param{{Name: "x", Type: validate.TypeNumber}}, nil, "/?x=1.5e3", nil, nil},
		{"number NaN", []validate.Param{{Name: "x", Type: validate.TypeNumber}}, nil, "/?x=NaN", nil, []paramErr{{"x", "query", "must be a number"}}},
		{"number Inf", []validate.Param{{Name: "x", Type: validate.TypeNumber}}, nil, "/?x=Inf", nil, []paramErr{{"x", "query", "must be a number"}}},
		{"number hex", []validate.Param{{Name: "x", Type: validate.TypeNumber}}, nil, "/?x=0x1p4", nil, []paramErr{{"x", "query", "must be a number"}}},
		{"bool ok", []validate.Param{{Name: "b", Type: validate.TypeBool}}, nil, "/?b=true", nil, nil},
		{"bool bad", []validate.Param{{Name: "b", Type: validate.TypeBool}}, nil, "/?b=yes", nil, []paramErr{{"b", "query", "must be true or false"}}},
		{"uuid ok", []validate.Param{{Name: "id", Type: validate.TypeUUID}}, nil, "/?id=123e4567-E89B-12d3-a456-426614174000", nil, nil},
		{"uuid bad", []validate.Param{{Name: "id", Type: validate.TypeUUID}}, nil, "/?id=123e4567e89b12d3a456426614174000", nil, []paramErr{{"id", "query", "must be a UUID"}}},
		{"enum ok", []validate.Param{{Name: "sort", Enum: []string{"asc", "desc"}}}, nil, "/?sort=desc", nil, nil},
		{"enum bad", []validate.Param{{Name: "sort", Type: validate.TypeEnum, Enum: []string{"asc", "desc"}}}, nil, "/?sort=ASC", nil, []paramErr{{"sort", "query", "must be one of asc, desc"}}},
		{"min", []validate.Param{{Name: "limit", Type: validate.TypeInt, Min: new(1.0), Max: new(100.0)}}, nil, "/?limit=0", nil, []paramErr{{"limit", "query", "must be at least 1"}}},
		{"max", []validate.Param{{Name: "limit", Type: validate.TypeInt, Min: new(1.0), Max: new(100.0)}}, nil, "/?limit=101", nil, []paramErr{{"limit", "query", "must be at most 100"}}},
		{"min max ok", []validate.Param{{Name: "limit", Type: validate.TypeInt, Min: new(1.0), Max: new(100.0)}}, nil, "/?limit=100", nil, nil},
		{"number max", []validate.Param{{Name: "r", Type: validate.TypeNumber, Max: new(0.5)}}, nil, "/?r=0.51", nil, []paramErr{{"r", "query", "must be at most 0.5"}}},
		{"minLength", []validate.Param{{Name: "s", MinLength: 3}}, nil, "/?s=%C3%A4b", nil, []paramErr{{"s", "query", "must be at least 3 characters long"}}},
		{"maxLength counts characters", []validate.Param{{Name: "s", MaxLength: 2}}, nil, "/?s=%C3%A4%C3%B6", nil, nil},
		{"maxLength", []validate.Param{{Name: "s", MaxLength: 2}}, nil, "/?s=abc", nil, []paramErr{{"s", "query", "must be at most 2 characters long"}}},
		{"pattern ok", []validate.Param{{Name: "c", Pattern: `^[A-Z]{3}$`}}, nil, "/?c=EUR", nil, nil},
		{"pattern bad", []validate.Param{{Name: "c", Pattern: `^[A-Z]{3}$`}}, nil, "/?c=eur", nil, []paramErr{{"c", "query", "must match the pattern ^[A-Z]{3}$"}}},
		{"pattern after decoding", []validate.Param{{Name: "c", Pattern: `^a b$`}}, nil, "/?c=a+b", nil, nil},
		{"not repeated", []validate.Param{{Name: "limit", Type: validate.TypeInt}}, nil, "/?limit=10&limit=100000", nil, []paramErr{{"limit", "query", "must not be repeated"}}},
		{"semicolon is not a separator", []validate.Param{{Name: "limit", Type: validate.TypeInt}}, nil, "/?limit=5;limit=9", nil, []paramErr{{"limit", "query", "must be an integer"}}},
		{"repeated ok", []validate.Param{{Name: "tag", Repeated: true, MaxCount: 3}}, nil, "/?tag=a&tag=b&tag=c", nil, nil},
		{"repeated each value checked", []validate.Param{{Name: "id", Type: validate.TypeInt, Repeated: true}}, nil, "/?id=1&id=x&id=y", nil, []paramErr{{"id", "query", "must be an integer"}}},
		{"max count", []validate.Param{{Name: "tag", Repeated: true, MaxCount: 2}}, nil, "/?tag=a&tag=b&tag=c", nil, []paramErr{{"tag", "query", "must be given at most 2 times"}}},
		{"min count", []validate.Param{{Name: "tag", Repeated: true, MinCount: 2}}, nil, "/?tag=a", nil, []paramErr{{"tag", "query", "must be given at least 2 times"}}},
		{"min count implies required", []validate.Param{{Name: "tag", Repeated: true, MinCount: 2}}, nil, "/", nil, []paramErr{{"tag", "query", "is required"}}},
		{"encoded key", []validate.Param{{Name: "a b", Type: validate.TypeInt}}, nil, "/?a%20b=x", nil, []paramErr{{"a b", "query", "must be an integer"}}},
		{"bad percent-encoding", []validate.Param{{Name: "q"}}, nil, "/?q=%zz", nil, []paramErr{{"q", "query", "is not properly percent-encoded"}}},
		{"header ok", nil, []validate.Param{{Name: "x-request-id", Type: validate.TypeUUID, Required: true}}, "/", http.Header{"X-Request-Id": {"123e4567-e89b-12d3-a456-426614174000"}}, nil},
		{"header missing", nil, []validate.Param{{Name: "X-Request-Id", Required: true}}, "/", nil, []paramErr{{"X-Request-Id", "header", "is required"}}},
		{"header bad", nil, []validate.Param{{Name: "X-Priority", Type: validate.TypeInt, Max: new(9.0)}}, "/", http.Header{"X-Priority": {"10"}}, []paramErr{{"X-Priority", "header", "must be at most 9"}}},
		{"header repeated", nil, []validate.Param{{Name: "X-Priority"}}, "/", http.Header{"X-Priority": {"1", "2"}}, []paramErr{{"X-Priority", "header", "must not be repeated"}}},
		{"header repeated allowed", nil, []validate.Param{{Name: "X-Tag", Repeated: true}}, "/", http.Header{"X-Tag": {"1", "2"}}, nil},
		{"every violation listed", []validate.Param{
			{Name: "limit", Type: validate.TypeInt, Max: new(100.0)},
			{Name: "sort", Enum: []string{"asc", "desc"}},
			{Name: "q", Required: true},
		}, []validate.Param{{Name: "X-Version", Required: true}}, "/?sort=up&limit=1000", nil, []paramErr{
			{"sort", "query", "must be one of asc, desc"},
			{"limit", "query", "must be at most 100"},
			{"q", "query", "is required"},
			{"X-Version", "header", "is required"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, validate.Config{Route: "search", Query: tc.query, Header: tc.header})
			r := httptest.NewRequest("GET", tc.target, nil)
			for k, vs := range tc.hdr {
				r.Header[k] = vs
			}
			rec, prob := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), r)
			if tc.want == nil {
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
				}
				return
			}
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			checkParamErrors(t, prob, tc.want)
		})
	}
}

func checkParamErrors(t *testing.T, prob problem, want []paramErr) {
	t.Helper()
	if len(prob.Errors) != len(want) {
		t.Fatalf("errors = %v, want %v", prob.Errors, want)
	}
	for i, w := range want {
		e := prob.Errors[i]
		if e["parameter"] != w.parameter || e["in"] != w.in || e["message"] != w.message {
			t.Errorf("error %d = %v, want %+v", i, e, w)
		}
	}
	if len(want) == 1 && prob.Detail != want[0].in+` parameter "`+want[0].parameter+`" `+want[0].message {
		t.Errorf("detail = %q", prob.Detail)
	}
}

func TestPathParams(t *testing.T) {
	v := mustNew(t, validate.Config{Path: []validate.Param{
		{Name: "id", Type: validate.TypeUUID, Required: true},
		{Name: "page", Type: validate.TypeInt, Min: new(1.0)},
	}})
	p := gateway.NewPipeline(echo, gateway.Validate(v))
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "user", Path: "/users/{id}/pages/{page}", Handler: p},
		{Name: "user-no-page", Path: "/users/{id}", Handler: p},
		{Name: "other", Path: "/other", Handler: p},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target string
		want   []paramErr
	}{
		{"/users/123e4567-e89b-12d3-a456-426614174000/pages/2", nil},
		{"/users/123e4567-e89b-12d3-a456-426614174000", nil},
		{"/users/42/pages/2", []paramErr{{"id", "path", "must be a UUID"}}},
		{"/users/42/pages/0", []paramErr{{"id", "path", "must be a UUID"}, {"page", "path", "must be at least 1"}}},
		{"/other", []paramErr{{"id", "path", "is required"}}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			rec, prob := send(t, router, httptest.NewRequest("GET", tc.target, nil))
			if tc.want == nil {
				if rec.Code != 200 {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				return
			}
			if rec.Code != 400 {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			checkParamErrors(t, prob, tc.want)
		})
	}
}

func TestParamsBeforeBody(t *testing.T) {
	v := mustNew(t, validate.Config{
		Query: []validate.Param{{Name: "dry_run", Type: validate.TypeBool}},
		Body:  validate.Schema{JSON: `{"type": "object"}`},
	})
	body := &countingBody{Reader: strings.NewReader(`not json`)}
	r := httptest.NewRequest("POST", "/?dry_run=maybe", nil)
	r.Header.Set("Content-Type", "text/plain")
	r.Body, r.ContentLength = body, 8
	rec, prob := send(t, gateway.NewPipeline(echo, gateway.Validate(v)), r)
	if rec.Code != 400 || body.reads != 0 {
		t.Fatalf("status %d after %d body reads, want 400 before any", rec.Code, body.reads)
	}
	checkParamErrors(t, prob, []paramErr{{"dry_run", "query", "must be true or false"}})
}
