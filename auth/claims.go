package auth

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gatekit/gatekit/gateway"
	"github.com/tidwall/gjson"
)

// claimValues returns the values of the claim at path, a gjson path such as
// "sub", "tenant.id" or "realm_access.roles": one value for a string,
// number or boolean, one per element for an array of those, and the JSON
// text for an object. It reads ClaimsJSON with gjson when the principal has
// it, and walks Claims otherwise. The pseudo-claims "sub", "iss" and "scope"
// fall back to Subject, Issuer and Scopes.
func claimValues(p *gateway.Principal, path string) []string {
	if p == nil {
		return nil
	}
	if p.ClaimsJSON != nil {
		if r := gjson.GetBytes(p.ClaimsJSON, path); r.Exists() {
			return resultValues(r)
		}
	} else if v, ok := walkClaims(p.Claims, path); ok {
		return anyValues(v)
	}
	switch path {
	case "sub":
		if p.Subject != "" {
			return []string{p.Subject}
		}
	case "iss":
		if p.Issuer != "" {
			return []string{p.Issuer}
		}
	case "scope":
		if len(p.Scopes) > 0 {
			return []string{strings.Join(p.Scopes, " ")}
		}
	}
	return nil
}

func resultValues(r gjson.Result) []string {
	if r.IsArray() {
		var out []string
		for _, e := range r.Array() {
			if e.IsObject() || e.IsArray() {
				out = append(out, e.Raw)
			} else {
				out = append(out, e.String())
			}
		}
		return out
	}
	if r.IsObject() {
		return []string{r.Raw}
	}
	if r.Type == gjson.Null {
		return nil
	}
	return []string{r.String()}
}

// walkClaims follows a dotted path through nested maps. It understands the
// plain "a.b.c" form of gjson paths, which is what claim paths are.
func walkClaims(claims map[string]any, path string) (any, bool) {
	var cur any = claims
	for path != "" {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		key := path
		if i := strings.IndexByte(path, '.'); i >= 0 {
			key, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func anyValues(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case bool:
		return []string{strconv.FormatBool(v)}
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}
	case json.Number:
		return []string{v.String()}
	case int:
		return []string{strconv.Itoa(v)}
	case int64:
		return []string{strconv.FormatInt(v, 10)}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, anyValues(e)...)
		}
		return out
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return []string{string(b)}
	}
}
