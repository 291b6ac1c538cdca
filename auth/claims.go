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

// walkClaims follows a claim path through decoded claims. It understands
// the subset of gjson path syntax that claim paths use: members separated
// by '.', "\." for a dot inside a member name ("resource_access.my\.app"),
// and a number to index an array ("groups.0").
func walkClaims(claims map[string]any, path string) (any, bool) {
	var cur any = claims
	for path != "" {
		var key string
		key, path = nextPathPart(path)
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// nextPathPart splits the first member name off a claim path, unescaping
// "\." and "\\".
func nextPathPart(path string) (key, rest string) {
	i := 0
	escaped := false
	for ; i < len(path); i++ {
		if path[i] == '\\' && i+1 < len(path) {
			escaped = true
			i++
			continue
		}
		if path[i] == '.' {
			break
		}
	}
	key, rest = path[:i], ""
	if i < len(path) {
		rest = path[i+1:]
	}
	if escaped {
		var b strings.Builder
		for j := 0; j < len(key); j++ {
			if key[j] == '\\' && j+1 < len(key) {
				j++
			}
			b.WriteByte(key[j])
		}
		key = b.String()
	}
	return key, rest
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

// splitScopes splits a scope string on the space character alone, as RFC
// 6749 §3.3 delimits scopes; strings.Fields would also split on U+00A0 and
// other Unicode spaces, turning "profile\u00a0admin" into an admin scope.
func splitScopes(s string) []string {
	var out []string
	for s != "" {
		var tok string
		tok, s, _ = strings.Cut(s, " ")
		if tok != "" {
			out = append(out, tok)
		}
	}
	return out
}

// duplicateMembers reports whether any JSON object in data, at any depth,
// has two members with the same name. RFC 7519 §4 lets a JWT parser reject
// such claims, and it must: encoding/json keeps the last duplicate while
// gjson reads the first, so Principal.Claims and ClaimsJSON would disagree on
// who the caller is. data must be valid JSON.
func duplicateMembers(data []byte) bool {
	return dupIn(gjson.ParseBytes(data), 0)
}

func dupIn(v gjson.Result, depth int) bool {
	if depth > 64 {
		return true // deeper than any claim set; refuse rather than recurse on
	}
	switch {
	case v.IsObject():
		var small [16]string
		seen := small[:0]
		var big map[string]struct{}
		dup := false
		v.ForEach(func(k, e gjson.Result) bool {
			name := k.String()
			if big != nil {
				if _, ok := big[name]; ok {
					dup = true
					return false
				}
				big[name] = struct{}{}
			} else {
				for _, n := range seen {
					if n == name {
						dup = true
						return false
					}
				}
				if len(seen) < cap(seen) {
					seen = append(seen, name)
				} else {
					big = make(map[string]struct{}, 32)
					for _, n := range seen {
						big[n] = struct{}{}
					}
					big[name] = struct{}{}
				}
			}
			if dupIn(e, depth+1) {
				dup = true
				return false
			}
			return true
		})
		return dup
	case v.IsArray():
		dup := false
		v.ForEach(func(_, e gjson.Result) bool {
			if dupIn(e, depth+1) {
				dup = true
				return false
			}
			return true
		})
		return dup
	}
	return false
}
