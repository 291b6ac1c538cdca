package validate

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatekit/gatekit/gateway"
)

// A Type is the type every value of a parameter must have.
type Type string

// The parameter types.
const (
	// TypeString accepts any value; it is what "" means.
	TypeString Type = "string"
	// TypeInt accepts a base-10 integer that fits in 64 bits: "-12", "0".
	TypeInt Type = "int"
	// TypeNumber accepts a finite decimal number: "1.5", "-2", "1e3".
	TypeNumber Type = "number"
	// TypeBool accepts what strconv.ParseBool does: "true", "false",
	// "1", "0", "t", "f" and their upper-case forms.
	TypeBool Type = "bool"
	// TypeUUID accepts a UUID in its canonical 8-4-4-4-12 hexadecimal form,
	// in either case, and no other (RFC 9562).
	TypeUUID Type = "uuid"
	// TypeEnum accepts exactly one of the values in Param.Enum.
	TypeEnum Type = "enum"
)

// A Param is the rule for one path parameter, query parameter or header
// field. Every value the request carries must satisfy it; the zero rule
// (apart from Name) accepts anything, including absence.
type Param struct {
	// Name is the parameter's name: the pattern name of a path parameter
	// (without braces), the key of a query parameter (compared exactly,
	// after percent-decoding), or the name of a header field (any case).
	Name string

	// Required refuses a request without the parameter. A path parameter
	// whose value is empty counts as absent; a query parameter or header
	// field that is present with an empty value does not.
	Required bool

	// Type is the type of each value; "" means TypeString, or TypeEnum
	// when Enum is set.
	Type Type

	// Enum lists the accepted values, compared exactly. It is required
	// with TypeEnum and allowed only with it (or with "").
	Enum []string

	// Min and Max bound the value of a TypeInt or TypeNumber parameter,
	// inclusive; nil means unbounded. With Go 1.26: Min: new(1.0).
	Min, Max *float64

	// MinLength and MaxLength bound the length of each value in
	// characters; 0 means no bound.
	MinLength, MaxLength int

	// Pattern is a regular expression (package regexp, RE2 syntax) that
	// each value must match. It is not anchored: write ^ and $ to match
	// the whole value. It is compiled by New.
	Pattern string

	// Repeated allows more than one value: ?tag=a&tag=b, or a header field
	// sent on several lines. Without it a second value is refused, which
	// also shuts out parameter pollution (?limit=10&limit=100000, where the
	// gateway and the upstream might each believe a different one).
	// Path parameters are never repeated.
	Repeated bool

	// MinCount and MaxCount bound how many values a Repeated parameter may
	// have; 0 means no bound. A MinCount above 0 implies Required.
	MinCount, MaxCount int
}

// paramRule is a Param compiled by New.
type paramRule struct {
	Param
	in  string // "path", "query" or "header"
	key string // canonical header key, or Name
	re  *regexp.Regexp
	// Messages built once, so a refusal formats nothing per request.
	typeMsg, enumMsg, minMsg, maxMsg, minLenMsg, maxLenMsg, patternMsg string
}

func compileParams(ps []Param, in string) ([]paramRule, error) {
	rules := make([]paramRule, 0, len(ps))
	seen := make(map[string]bool, len(ps))
	for i, p := range ps {
		r, err := compileParam(p, in)
		if err != nil {
			if p.Name == "" {
				return nil, fmt.Errorf("%s parameter %d: %w", in, i, err)
			}
			return nil, fmt.Errorf("%s parameter %q: %w", in, p.Name, err)
		}
		if seen[r.key] {
			return nil, fmt.Errorf("%s parameter %q has two rules", in, p.Name)
		}
		seen[r.key] = true
		rules = append(rules, r)
	}
	return rules, nil
}

func compileParam(p Param, in string) (paramRule, error) {
	r := paramRule{Param: p, in: in, key: p.Name}
	if p.Name == "" {
		return r, fmt.Errorf("no name")
	}
	if in == "header" {
		r.key = http.CanonicalHeaderKey(p.Name)
	}
	switch p.Type {
	case "":
		r.Type = TypeString
		if len(p.Enum) > 0 {
			r.Type = TypeEnum
		}
	case TypeString, TypeInt, TypeNumber, TypeBool, TypeUUID, TypeEnum:
	default:
		return r, fmt.Errorf("unknown type %q", p.Type)
	}
	switch {
	case r.Type == TypeEnum && len(p.Enum) == 0:
		return r, fmt.Errorf("type enum needs Enum values")
	case r.Type != TypeEnum && len(p.Enum) > 0:
		return r, fmt.Errorf("Enum is for type enum, not %s", r.Type)
	case (p.Min != nil || p.Max != nil) && r.Type != TypeInt && r.Type != TypeNumber:
		return r, fmt.Errorf("Min and Max are for types int and number, not %s", r.Type)
	case p.Min != nil && (math.IsNaN(*p.Min) || math.IsInf(*p.Min, 0)),
		p.Max != nil && (math.IsNaN(*p.Max) || math.IsInf(*p.Max, 0)):
		return r, fmt.Errorf("Min and Max must be finite")
	case p.Min != nil && p.Max != nil && *p.Min > *p.Max:
		return r, fmt.Errorf("Min %v is above Max %v", *p.Min, *p.Max)
	case p.MinLength < 0 || p.MaxLength < 0:
		return r, fmt.Errorf("MinLength and MaxLength must not be negative")
	case p.MaxLength > 0 && p.MinLength > p.MaxLength:
		return r, fmt.Errorf("MinLength %d is above MaxLength %d", p.MinLength, p.MaxLength)
	case p.MinCount < 0 || p.MaxCount < 0:
		return r, fmt.Errorf("MinCount and MaxCount must not be negative")
	case (p.MinCount > 0 || p.MaxCount > 0) && !p.Repeated:
		return r, fmt.Errorf("MinCount and MaxCount are for Repeated parameters")
	case p.MaxCount > 0 && p.MinCount > p.MaxCount:
		return r, fmt.Errorf("MinCount %d is above MaxCount %d", p.MinCount, p.MaxCount)
	case p.Repeated && in == "path":
		return r, fmt.Errorf("a path parameter cannot be Repeated")
	}
	if p.MinCount > 0 {
		r.Required = true
	}
	if p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return r, fmt.Errorf("pattern: %w", err)
		}
		r.re = re
		r.patternMsg = "must match the pattern " + p.Pattern
	}
	switch r.Type {
	case TypeInt:
		r.typeMsg = "must be an integer"
	case TypeNumber:
		r.typeMsg = "must be a number"
	case TypeBool:
		r.typeMsg = "must be true or false"
	case TypeUUID:
		r.typeMsg = "must be a UUID"
	case TypeEnum:
		r.enumMsg = "must be one of " + strings.Join(p.Enum, ", ")
	}
	if p.Min != nil {
		r.minMsg = "must be at least " + strconv.FormatFloat(*p.Min, 'g', -1, 64)
	}
	if p.Max != nil {
		r.maxMsg = "must be at most " + strconv.FormatFloat(*p.Max, 'g', -1, 64)
	}
	if p.MinLength > 0 {
		r.minLenMsg = "must be at least " + plural(p.MinLength, "character") + " long"
	}
	if p.MaxLength > 0 {
		r.maxLenMsg = "must be at most " + plural(p.MaxLength, "character") + " long"
	}
	return r, nil
}

// check returns what is wrong with one value, or "". The message never
// quotes the value.
func (r *paramRule) check(v string) string {
	if r.MinLength > 0 || r.MaxLength > 0 {
		n := utf8.RuneCountInString(v)
		if n < r.MinLength {
			return r.minLenMsg
		}
		if r.MaxLength > 0 && n > r.MaxLength {
			return r.maxLenMsg
		}
	}
	switch r.Type {
	case TypeInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return r.typeMsg
		}
		if msg := r.bounds(float64(n)); msg != "" {
			return msg
		}
	case TypeNumber:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil && !isRangeErr(err) || math.IsNaN(f) || math.IsInf(f, 0) || !isDecimal(v) {
			return r.typeMsg
		}
		if msg := r.bounds(f); msg != "" {
			return msg
		}
	case TypeBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return r.typeMsg
		}
	case TypeUUID:
		if !isUUID(v) {
			return r.typeMsg
		}
	case TypeEnum:
		found := false
		for _, e := range r.Enum {
			if e == v {
				found = true
				break
			}
		}
		if !found {
			return r.enumMsg
		}
	}
	if r.re != nil && !r.re.MatchString(v) {
		return r.patternMsg
	}
	return ""
}

func (r *paramRule) bounds(f float64) string {
	if r.Min != nil && f < *r.Min {
		return r.minMsg
	}
	if r.Max != nil && f > *r.Max {
		return r.maxMsg
	}
	return ""
}

// checkCount returns what is wrong with the number of values, or "".
func (r *paramRule) checkCount(n int) string {
	switch {
	case n == 0 && r.Required:
		return "is required"
	case n > 1 && !r.Repeated:
		return "must not be repeated"
	case n > 0 && n < r.MinCount:
		return "must be given at least " + plural(r.MinCount, "time")
	case r.MaxCount > 0 && n > r.MaxCount:
		return "must be given at most " + plural(r.MaxCount, "time")
	}
	return ""
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// isDecimal reports whether s is a plain decimal number, which ParseFloat
// accepts along with hexadecimal, underscores, "Inf" and "NaN".
func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// queryValue returns s with its percent-encoding and '+' decoded as
// url.ParseQuery does; it allocates only when there is something to decode.
func queryValue(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// checkParams checks the path, query and header rules, and returns a 400
// *gateway.Error listing every parameter that breaks one, or nil.
func (v *Validator) checkParams(req *gateway.Request) error {
	if len(v.path) == 0 && len(v.query) == 0 && len(v.header) == 0 {
		return nil
	}
	var vs []Violation
	add := func(r *paramRule, msg string) {
		for _, x := range vs {
			if x.Parameter == r.Name && x.In == r.in && x.Message == msg {
				return
			}
		}
		vs = append(vs, Violation{Parameter: r.Name, In: r.in, Message: msg})
	}
	for i := range v.path {
		r := &v.path[i]
		val := req.Param(r.Name)
		n := 0
		if val != "" {
			n = 1
		}
		if msg := r.checkCount(n); msg != "" {
			add(r, msg)
		} else if n == 1 {
			if msg := r.check(val); msg != "" {
				add(r, msg)
			}
		}
	}
	if len(v.query) > 0 {
		v.checkQuery(req.HTTP.URL.RawQuery, add)
	}
	for i := range v.header {
		r := &v.header[i]
		vals := req.HTTP.Header[r.key]
		if msg := r.checkCount(len(vals)); msg != "" {
			add(r, msg)
		}
		for _, val := range vals {
			if msg := r.check(val); msg != "" {
				add(r, msg)
				break
			}
		}
	}
	if len(vs) == 0 {
		return nil
	}
	detail := "the request has " + plural(len(vs), "invalid parameter")
	if len(vs) == 1 {
		detail = vs[0].In + " parameter " + strconv.Quote(vs[0].Parameter) + " " + vs[0].Message
	}
	return &gateway.Error{
		Status:     http.StatusBadRequest,
		Detail:     detail,
		Extensions: map[string]any{"errors": vs},
	}
}

// checkQuery checks the query rules in one pass over the raw query,
// decoding only the keys and values that need it. Unlike url.ParseQuery it
// does not split on ';', so "limit=5;limit=9" is one (invalid) value, not
// one that the gateway and an upstream might read differently.
func (v *Validator) checkQuery(raw string, add func(*paramRule, string)) {
	var buf [16]int
	var counts []int
	if len(v.query) <= len(buf) {
		counts = buf[:len(v.query)]
	} else {
		counts = make([]int, len(v.query))
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err := queryValue(k)
		if err != nil {
			continue
		}
		i := -1
		for j := range v.query {
			if v.query[j].Name == k {
				i = j
				break
			}
		}
		if i < 0 {
			continue
		}
		r := &v.query[i]
		counts[i]++
		if counts[i] > 1 && !r.Repeated {
			continue // reported by the count check below
		}
		val, err = queryValue(val)
		if err != nil {
			add(r, "is not properly percent-encoded")
			continue
		}
		if msg := r.check(val); msg != "" {
			add(r, msg)
		}
	}
	for i := range v.query {
		if msg := v.query[i].checkCount(counts[i]); msg != "" {
			add(&v.query[i], msg)
		}
	}
}
