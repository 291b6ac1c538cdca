package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// The header fields of draft-ietf-httpapi-ratelimit-headers: the policy a
// limiter enforces, and where the client stands in it.
const (
	PolicyHeader    = "RateLimit-Policy" // "name";q=100;w=60: quota q per window of w seconds
	RateLimitHeader = "RateLimit"        // "name";r=0;t=12: r units remain, reset in t seconds
)

// A policy names a limiter in the RateLimit fields and writes them.
type policy struct {
	name   string
	quoted string // name as a structured-field string
}

func newPolicy(name, def string) (policy, error) {
	if name == "" {
		name = def
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return policy{}, fmt.Errorf("Name %q: use letters, digits, '-', '_' and '.' only (it is sent in RateLimit header fields)", name)
		}
	}
	return policy{name: name, quoted: `"` + name + `"`}, nil
}

// policyField is the RateLimit-Policy member: quota q per window w.
func (p *policy) policyField(q int64, w time.Duration) string {
	b := make([]byte, 0, len(p.quoted)+32)
	b = append(b, p.quoted...)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, q, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, ceilSeconds(w), 10)
	return string(b)
}

// rateField is the RateLimit member: r units remain, the quota is whole
// again in t.
func (p *policy) rateField(r int64, t time.Duration) string {
	b := make([]byte, 0, len(p.quoted)+32)
	b = append(b, p.quoted...)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, max(r, 0), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(t), 10)
	return string(b)
}

// annotate adds the two fields to resp. Several limiters on one route
// each add their member, so the client sees every policy that applies.
func (p *policy) annotate(resp *gateway.Response, res Result, window time.Duration) {
	if resp.Header == nil {
		resp.Header = make(http.Header, 2)
	}
	p.addFields(resp.Header, res, window)
}

func (p *policy) addFields(h http.Header, res Result, window time.Duration) {
	h.Add(PolicyHeader, p.policyField(res.Limit, window))
	h.Add(RateLimitHeader, p.rateField(res.Remaining, res.Reset))
}

// refuse is the 429 for a refused request: Retry-After in whole seconds,
// rounded up so that a client that waits exactly that long is admitted,
// and the RateLimit fields.
func (p *policy) refuse(res Result, window time.Duration) *gateway.Error {
	retry := max(ceilSeconds(res.RetryAfter), 1)
	e := &gateway.Error{
		Status: http.StatusTooManyRequests,
		Detail: fmt.Sprintf("rate limit %q exceeded; retry in %d s", p.name, retry),
		Header: make(http.Header, 3),
	}
	e.Header.Set("Retry-After", strconv.FormatInt(retry, 10))
	p.addFields(e.Header, res, window)
	return e
}

// ceilSeconds is d in whole seconds, rounded up; never negative.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// decision names a limiter's decision in the note it leaves for the
// gateway's observers (access log, metrics): "<policy> <decision>".
func decision(res Result, err error) string {
	switch {
	case err != nil:
		return "error"
	case res.failedOpen:
		return "failed-open"
	case res.Allowed:
		return "admitted"
	}
	return "refused"
}
