package validate

import (
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// message returns a readable message for the keyword a value broke. It is
// the library's own message (in English) except for the kinds whose
// message quotes the value: those are reworded so that a problem never
// echoes what the client sent, beyond property names cut short.
func (v *Validator) message(e *jsonschema.ValidationError) string {
	switch k := e.ErrorKind.(type) {
	case *kind.Format:
		msg := "must be a valid " + k.Want
		if k.Err != nil {
			// Some reasons ("missing @") help; some quote the value
			// (net/url's, net/netip's). Keep only those that do not.
			reason := k.Err.Error()
			if s, ok := k.Got.(string); len(reason) <= 80 && (!ok || len(s) < 4 || !strings.Contains(reason, s)) {
				msg += ": " + reason
			}
		}
		return msg
	case *kind.Pattern:
		return "must match the pattern " + k.Want
	case *kind.Minimum:
		return "must be at least " + ratString(k.Want)
	case *kind.Maximum:
		return "must be at most " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be greater than " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be less than " + ratString(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratString(k.Want)
	case *kind.MinLength:
		return "must be at least " + plural(k.Want, "character") + " long"
	case *kind.MaxLength:
		return "must be at most " + plural(k.Want, "character") + " long"
	case *kind.MinItems:
		return "must have at least " + plural(k.Want, "item")
	case *kind.MaxItems:
		return "must have at most " + plural(k.Want, "item")
	case *kind.MinProperties:
		return "must have at least " + plural(k.Want, "property")
	case *kind.MaxProperties:
		return "must have at most " + plural(k.Want, "property")
	case *kind.Type:
		return "must be " + strings.Join(k.Want, " or ") + ", not " + k.Got
	case *kind.AdditionalProperties:
		names := make([]string, 0, len(k.Properties))
		size := 0
		// The library lists them in map order; sort them so that the
		// same body always gets the same message.
		for _, p := range slices.Sorted(slices.Values(k.Properties)) {
			if size > 200 {
				names = append(names, "...")
				break
			}
			p = squote(truncate(p, 64))
			size += len(p)
			names = append(names, p)
		}
		if len(k.Properties) == 1 {
			return "property " + names[0] + " is not allowed"
		}
		return "properties " + strings.Join(names, ", ") + " are not allowed"
	case *kind.PropertyNames:
		return "property name " + squote(truncate(k.Property, 64)) + " is not allowed"
	case *kind.FalseSchema:
		return "is not allowed"
	case *kind.Const:
		if isPrimitive(k.Want) {
			return e.ErrorKind.LocalizedString(v.printer)
		}
		return "must be the value the schema gives in const"
	case *kind.ContentEncoding:
		return "must be encoded as " + k.Want
	case *kind.ContentMediaType:
		return "must be of media type " + k.Want
	}
	return e.ErrorKind.LocalizedString(v.printer)
}

func isPrimitive(x any) bool {
	switch x.(type) {
	case []any, map[string]any:
		return false
	}
	return true
}

// ratString writes an exact bound from the schema in decimal when it has
// a short decimal form, and as a fraction otherwise.
func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	if n, exact := r.FloatPrec(); exact {
		return r.FloatString(n)
	}
	return r.RatString()
}

// squote quotes s the way the library's messages do: 'name'.
func squote(s string) string {
	s = strconv.Quote(s)
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}
