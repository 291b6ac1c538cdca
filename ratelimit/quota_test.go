package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
)

func TestQuotaWindows(t *testing.T) {
	tests := []struct {
		name   string
		window ratelimit.Window
		start  time.Time // a moment inside a window
		end    time.Time // when that window ends
	}{
		{"minute", ratelimit.Minute, time.Date(2026, 11, 25, 10, 0, 42, 0, time.UTC), time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC)},
		{"hour", ratelimit.Hour, time.Date(2026, 11, 25, 10, 59, 59, 0, time.UTC), time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)},
		{"day", ratelimit.Day, time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{"month", ratelimit.Month, time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"February of a leap year", ratelimit.Month, time.Date(2028, 2, 28, 12, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"90 s from the epoch", ratelimit.Every(90 * time.Second), time.Unix(1000, 0), time.Unix(1080, 0)},
		{"a time zone does not move a day", ratelimit.Day, time.Date(2026, 11, 25, 23, 30, 0, 0, time.FixedZone("X", -5*3600)), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: tc.start}
			q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "q", Limit: 3, Window: tc.window, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 3 {
				res, _ := q.Allow(ctx, []byte("k"), 3)
				if !res.Allowed || res.Remaining != int64(2-i) || res.Reset != tc.end.Sub(tc.start) {
					t.Fatalf("request %d: %+v", i, res)
				}
			}
			res, _ := q.Allow(ctx, []byte("k"), 3)
			if res.Allowed || res.RetryAfter != tc.end.Sub(tc.start) || res.Remaining != 0 {
				t.Fatalf("past the quota: %+v, want refused until the window ends in %v", res, tc.end.Sub(tc.start))
			}
			// A refusal is not counted, and the last instant of the window
			// still belongs to it.
			clk.Advance(tc.end.Sub(tc.start) - time.Nanosecond)
			if res, _ := q.Allow(ctx, []byte("k"), 3); res.Allowed {
				t.Fatal("admitted before the window ended")
			}
			clk.Advance(time.Nanosecond)
			for i := range 3 {
				if res, _ := q.Allow(ctx, []byte("k"), 3); !res.Allowed {
					t.Fatalf("new window: request %d refused", i)
				}
			}
			if res, _ := q.Allow(ctx, []byte("k"), 3); res.Allowed {
				t.Fatal("new window admitted more than its limit")
			}
		})
	}
}

func TestQuotaPlans(t *testing.T) {
	q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{
		Name: "plan", Limit: 1, Window: ratelimit.Month, Key: ratelimit.ByAPIKey(), Headers: true,
		LimitFor: ratelimit.LimitByClaim("plan", map[string]int64{"gold": 3, "free": 1}),
	})
	if err != nil {
		t.Fatal(err)
	}
	principal := func(id, plan string) *gateway.Principal {
		return &gateway.Principal{Subject: id, Issuer: ratelimit.APIKeyIssuer, Claims: map[string]any{ratelimit.APIKeyIDClaim: id, "plan": plan}}
	}
	for _, tc := range []struct {
		p    *gateway.Principal
		want int
	}{{principal("k1", "gold"), 3}, {principal("k2", "free"), 1}, {principal("k3", "unknown"), 1}} {
		admitted := 0
		for range 5 {
			req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
			req.Principal = tc.p
			done, err := q.Limit(context.Background(), req)
			if err == nil {
				admitted++
				resp := gateway.NewResponse(http.StatusOK, nil, nil)
				done(resp)
				if pol := resp.Header.Get(ratelimit.PolicyHeader); !strings.HasPrefix(pol, `"plan";q=`+strconv.Itoa(tc.want)+";w=") {
					t.Fatalf("RateLimit-Policy %q, want q=%d", pol, tc.want)
				}
				continue
			}
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Status != http.StatusTooManyRequests || ge.Header.Get("Retry-After") == "" {
				t.Fatalf("refusal %v", err)
			}
		}
		if admitted != tc.want {
			t.Errorf("%s plan %v: admitted %d, want %d", tc.p.Subject, tc.p.Claims["plan"], admitted, tc.want)
		}
	}
}

func TestQuotaConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  ratelimit.QuotaConfig
		want string
	}{
		{ratelimit.QuotaConfig{Limit: 1}, `quota "quota": Window is required`},
		{ratelimit.QuotaConfig{Name: "d", Window: ratelimit.Day}, `quota "d": Limit must be at least 1`},
		{ratelimit.QuotaConfig{Name: "d", Limit: -1, Window: ratelimit.Day}, "Limit must not be negative"},
		{ratelimit.QuotaConfig{Name: "d", Limit: 1, Window: ratelimit.Every(1500 * time.Millisecond)}, "whole number of seconds"},
		{ratelimit.QuotaConfig{Name: "d", Limit: 1, Window: ratelimit.Day, Shared: &ratelimit.Shared{}}, "Shared.Store is required"},
	} {
		_, err := ratelimit.NewQuota(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewQuota(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}
