package proxy

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// These tests are inside the package: they drive balancers directly and
// look at targets' state. Backends are real servers; the upstream is called
// in-process (Serve), which is what a gateway does.

// lbBackend starts a backend that answers with its name, unless h is set.
func lbBackend(t testing.TB, name string, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// lbUpstream builds an upstream, closed when the test ends.
func lbUpstream(t testing.TB, cfg HTTPConfig) *HTTPUpstream {
	t.Helper()
	u, err := HTTP(h1FromEnv(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// lbReply is what a client got: a status and body, or the problem.
type lbReply struct {
	status int
	body   string
	header http.Header
	err    error
}

// lbDo sends one request through u, as a pipeline would, and reads the
// reply; an error is turned into its problem's status.
func lbDo(t testing.TB, u *HTTPUpstream, r *http.Request) lbReply {
	t.Helper()
	return lbServe(t, u, gateway.NewRequest(r))
}

func lbServe(t testing.TB, u *HTTPUpstream, req *gateway.Request) lbReply {
	t.Helper()
	resp, err := u.Serve(req.HTTP.Context(), req)
	if err != nil {
		p, _ := gateway.ProblemFor(err)
		return lbReply{status: p.Status, header: p.Header, err: err}
	}
	defer resp.Close()
	b, err := io.ReadAll(resp.Body)
	return lbReply{status: resp.Status, body: string(b), header: resp.Header, err: err}
}

func lbGet(t testing.TB, u *HTTPUpstream) lbReply {
	t.Helper()
	return lbDo(t, u, httptest.NewRequest("GET", "/", nil))
}

// lbEventually polls cond until it holds or 10s pass: robust under load,
// and quick when the machine is idle.
func lbEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lbTestSet makes a set of n targets named t0, t1, … with weights.
func lbTestSet(b Balancer, weights ...int) *lbSet {
	ts := make([]*lbTarget, len(weights))
	for i := range ts {
		key := "http://t" + strconv.Itoa(i)
		ts[i] = &lbTarget{target: target{scheme: "http", host: key[7:]}, key: key}
	}
	return lbNewSet(b, ts, weights)
}

func lbOnes(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

func lbIndex(s *lbSet, t *lbTarget) int {
	for i, x := range s.targets {
		if x == t {
			return i
		}
	}
	return -1
}

func lbHeaderRequest(name, value string) *gateway.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if value != "" {
		r.Header.Set(name, value)
	}
	return gateway.NewRequest(r)
}

// TestBalancerDistribution counts 10,000 picks of each balancer.
func TestBalancerDistribution(t *testing.T) {
	const picks = 10_000
	tests := []struct {
		name    string
		b       Balancer
		weights []int
		want    []float64 // shares
		tol     float64   // ± percentage points
	}{
		{"round robin", RoundRobin(), []int{1, 1, 1}, []float64{1. / 3, 1. / 3, 1. / 3}, 0.001},
		{"round robin ignores weights", RoundRobin(), []int{1, 2, 7}, []float64{1. / 3, 1. / 3, 1. / 3}, 0.001},
		{"weighted 1:2:7", Weighted(), []int{1, 2, 7}, []float64{.1, .2, .7}, 0.03},
		{"weighted 3:1", Weighted(), []int{300, 100}, []float64{.75, .25}, 0.03},
		{"least in flight, idle", LeastInFlight(), []int{1, 1, 1, 1}, []float64{.25, .25, .25, .25}, 0.03},
		{"least in flight, 20 idle", LeastInFlight(), lbOnes(20), nil, 0.03},
		{"hash on a header", HashBy(HashHeader("X-User")), []int{1, 1, 1, 1}, []float64{.25, .25, .25, .25}, 0.06},
		{"hash, weighted 1:2:7", HashBy(HashHeader("X-User")), []int{1, 2, 7}, []float64{.1, .2, .7}, 0.04},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := lbTestSet(tc.b, tc.weights...)
			want := tc.want
			if want == nil {
				for range tc.weights {
					want = append(want, 1/float64(len(tc.weights)))
				}
			}
			counts := make([]int, len(tc.weights))
			for i := range picks {
				f := lbFilter{}
				tg := s.pick(lbHeaderRequest("X-User", "user-"+strconv.Itoa(i)), &f)
				counts[lbIndex(s, tg)]++
			}
			for i, c := range counts {
				if got := float64(c) / picks; math.Abs(got-want[i]) > tc.tol {
					t.Errorf("target %d got %.3f of requests, want %.3f ± %.3f (counts %v)", i, got, want[i], tc.tol, counts)
				}
			}
		})
	}
}

// TestWeightedIsSmooth: the heavy target's turns are spread out, as with
// nginx's smooth weighted round-robin.
func TestWeightedIsSmooth(t *testing.T) {
	s := lbTestSet(Weighted(), 5, 1, 1)
	var got strings.Builder
	for range 14 {
		got.WriteByte("abc"[lbIndex(s, s.pick(nil, &lbFilter{}))])
	}
	if want := "aabacaaaabacaa"; got.String() != want {
		t.Errorf("order %s, want %s", got.String(), want)
	}
}

func TestBalancersSkipUnavailable(t *testing.T) {
	for name, b := range lbBalancers() {
		for _, n := range []int{3, 20} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				s := lbTestSet(b, lbOnes(n)...)
				s.targets[0].hcDown.Store(true)
				s.targets[1].ejectedUntil.Store(math.MaxInt64)
				s.targets[2].cbOpenUntil.Store(math.MaxInt64)
				for i := range 1000 {
					tg := s.pick(lbHeaderRequest("X-User", strconv.Itoa(i)), &lbFilter{now: 1})
					if n == 3 && tg != nil {
						t.Fatalf("picked %s, though no target is available", tg.key)
					}
					if n > 3 && lbIndex(s, tg) < 3 {
						t.Fatalf("picked unavailable %v", tg)
					}
				}
				// And none that a request has tried.
				tried := []*lbTarget{s.targets[len(s.targets)-1]}
				if n > 3 {
					for i := range 100 {
						if tg := s.pick(lbHeaderRequest("X-User", strconv.Itoa(i)), &lbFilter{now: 1, tried: tried}); tg == tried[0] {
							t.Fatal("picked a target already tried")
						}
					}
				}
			})
		}
	}
}

func lbBalancers() map[string]Balancer {
	return map[string]Balancer{
		"RoundRobin":    RoundRobin(),
		"Weighted":      Weighted(),
		"LeastInFlight": LeastInFlight(),
		"Hash":          HashBy(HashHeader("X-User")),
	}
}

func TestLeastInFlight(t *testing.T) {
	for _, n := range []int{3, 50} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			s := lbTestSet(LeastInFlight(), lbOnes(n)...)
			for i, tg := range s.targets {
				tg.inflight.Store(int64(10 + i))
			}
			busy := s.targets[n-1]
			counts := make([]int, n)
			for range 10_000 {
				counts[lbIndex(s, s.pick(nil, &lbFilter{}))]++
			}
			if n <= lbExactMax {
				if counts[0] != 10_000 {
					t.Errorf("the least loaded target got %d of 10000 picks: %v", counts[0], counts)
				}
				return
			}
			// Two random choices: the busiest target wins no comparison.
			if c := counts[lbIndex(s, busy)]; c != 0 {
				t.Errorf("the busiest target got %d picks", c)
			}
			if counts[0] < counts[n/2] {
				t.Errorf("less loaded targets should get more: %v", counts)
			}
		})
	}
	t.Run("weights", func(t *testing.T) {
		s := lbTestSet(LeastInFlight(), 1, 4)
		s.targets[0].inflight.Store(2)
		s.targets[1].inflight.Store(6) // 6/4 < 2/1
		if tg := s.pick(nil, &lbFilter{}); tg != s.targets[1] {
			t.Errorf("picked %s, want the one with fewer requests per unit of weight", tg.key)
		}
	})
}

// TestHashStickyAndMinimalRemap: keys keep their target, and removing one
// of N targets moves only the keys it had, about 1/N of them.
func TestHashStickyAndMinimalRemap(t *testing.T) {
	const keys, n = 10_000, 10
	before := lbTestSet(HashBy(HashHeader("X-User")), lbOnes(n)...)
	owner := make([]string, keys)
	for i := range keys {
		req := lbHeaderRequest("X-User", "user-"+strconv.Itoa(i))
		owner[i] = before.pick(req, &lbFilter{}).key
		if again := before.pick(req, &lbFilter{}).key; again != owner[i] {
			t.Fatalf("key %d went to %s, then %s", i, owner[i], again)
		}
	}
	// The same URLs in another set (another replica, or after an update)
	// place keys the same way.
	removed := before.targets[3].key
	after := lbNewSet(before.balancer(), append(append([]*lbTarget(nil), before.targets[:3]...), before.targets[4:]...), lbOnes(n-1))
	moved, onRemoved := 0, 0
	for i := range keys {
		got := after.pick(lbHeaderRequest("X-User", "user-"+strconv.Itoa(i)), &lbFilter{}).key
		if owner[i] == removed {
			onRemoved++
			continue
		}
		if got != owner[i] {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d keys of the remaining targets moved", moved)
	}
	if f := float64(onRemoved) / keys; f < 0.5/n || f > 1.5/n {
		t.Errorf("the removed target had %.3f of the keys, want about %.3f", f, 1.0/n)
	}

	// A target that is down hands its keys to the next on the ring and
	// gets them back when it recovers.
	victim := before.targets[5]
	victim.hcDown.Store(true)
	for i := range keys {
		got := before.pick(lbHeaderRequest("X-User", "user-"+strconv.Itoa(i)), &lbFilter{}).key
		if got == victim.key || (owner[i] != victim.key && got != owner[i]) {
			t.Fatalf("key %d went to %s while %s was down (owner %s)", i, got, victim.key, owner[i])
		}
	}
	victim.hcDown.Store(false)
	for i := range keys {
		if got := before.pick(lbHeaderRequest("X-User", "user-"+strconv.Itoa(i)), &lbFilter{}).key; got != owner[i] {
			t.Fatalf("key %d went to %s after recovery, want %s", i, got, owner[i])
		}
	}
}

func (s *lbSet) balancer() Balancer { return Balancer{kind: s.kind, key: s.key} }

func TestHashKeys(t *testing.T) {
	cookie := func(v string) *gateway.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", v)
		return gateway.NewRequest(r)
	}
	ip := func(addr string) *gateway.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		return gateway.NewRequest(r)
	}
	tests := []struct {
		name   string
		key    HashKey
		a, b   *gateway.Request // same key
		c      *gateway.Request // no key, or another one
		cHasNo bool
	}{
		{"header", HashHeader("x-session"), lbHeaderRequest("X-Session", "s1"), lbHeaderRequest("X-Session", "s1"), lbHeaderRequest("X-Session", ""), true},
		{"cookie", HashCookie("sid"), cookie("a=1; sid=abc; b=2"), cookie(`sid="abc"`), cookie("sidx=abc; other=sid"), true},
		{"client IP", HashClientIP(), ip("10.1.2.3:1000"), ip("10.1.2.3:2000"), ip("10.1.2.4:1000"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ha, oka := tc.key.hash(tc.a)
			hb, okb := tc.key.hash(tc.b)
			if !oka || !okb || ha != hb {
				t.Errorf("same key hashed to %x (%v) and %x (%v)", ha, oka, hb, okb)
			}
			hc, okc := tc.key.hash(tc.c)
			if tc.cHasNo && okc {
				t.Errorf("a request without the key hashed to %x", hc)
			}
			if !tc.cHasNo && (!okc || hc == ha) {
				t.Errorf("another key hashed to %x (%v), like the first", hc, okc)
			}
		})
	}
	// Without a key, requests go round-robin rather than all to one target.
	s := lbTestSet(HashBy(HashHeader("X-User")), 1, 1)
	seen := map[string]bool{}
	for range 4 {
		seen[s.pick(lbHeaderRequest("X-User", ""), &lbFilter{}).key] = true
	}
	if len(seen) != 2 {
		t.Errorf("requests without a key went to %v", seen)
	}
}

// TestWeightedRealServers spreads requests over real backends by weight.
func TestWeightedRealServers(t *testing.T) {
	const requests = 1000
	var list []Target
	names := []string{"a", "b", "c"}
	for i, w := range []int{1, 2, 7} {
		list = append(list, Target{URL: lbBackend(t, names[i], nil).URL, Weight: w})
	}
	u := lbUpstream(t, HTTPConfig{Discovery: StaticTargets(list...), Balance: Weighted()})
	counts := map[string]int{}
	for range requests {
		r := lbGet(t, u)
		if r.status != 200 {
			t.Fatalf("status %d: %v", r.status, r.err)
		}
		counts[r.body]++
	}
	for i, want := range []float64{.1, .2, .7} {
		if got := float64(counts[names[i]]) / requests; math.Abs(got-want) > 0.03 {
			t.Errorf("%s got %.3f of requests, want %.2f (%v)", names[i], got, want, counts)
		}
	}
}

// TestLeastInFlightRealServers: while a backend holds requests, new ones go
// to the idle one.
func TestLeastInFlightRealServers(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{}, 8)
	slow := lbBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		held <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	})
	fast := lbBackend(t, "fast", nil)
	u := lbUpstream(t, HTTPConfig{Targets: []string{slow.URL, fast.URL}, Balance: LeastInFlight()})
	done := make(chan lbReply)
	go func() { done <- lbGet(t, u) }() // the first pick is the slow one
	<-held
	for range 20 {
		if r := lbGet(t, u); r.body != "fast" {
			t.Fatalf("got %d %q while the slow backend was busy", r.status, r.body)
		}
	}
	close(release)
	if r := <-done; r.body != "slow" {
		t.Errorf("held request got %q", r.body)
	}
}

func TestBalancerConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"hash without key", HTTPConfig{Targets: []string{"http://a"}, Balance: HashBy(HashKey{})}, "HashBy needs a key"},
		{"hash on a bad header", HTTPConfig{Targets: []string{"http://a"}, Balance: HashBy(HashHeader("a b"))}, "not a valid header"},
		{"negative weight", HTTPConfig{Discovery: StaticTargets(Target{URL: "http://a", Weight: -1})}, "weight -1"},
		{"weights that would overflow", HTTPConfig{Balance: Weighted(), Discovery: StaticTargets(
			Target{URL: "http://a", Weight: 1 << 62}, Target{URL: "http://b", Weight: 1 << 62}, Target{URL: "http://c", Weight: 3})},
			`StaticTargets[0] "http://a": weight 4611686018427387904 is not between 0 and 1048576 (MaxWeight)`},
		{"weight over MaxWeight", HTTPConfig{Discovery: StaticTargets(Target{URL: "http://a", Weight: 1 << 48}, Target{URL: "http://b", Weight: 1})}, "MaxWeight"},
		{"duplicates over MaxWeight", HTTPConfig{Discovery: StaticTargets(Target{URL: "http://a", Weight: MaxWeight}, Target{URL: "http://a/", Weight: 1})},
			`StaticTargets[1] "http://a/": the weights of this URL add up to 1048577`},
		{"bad static URL", HTTPConfig{Discovery: StaticTargets(Target{URL: "ftp://a"})}, `StaticTargets[0] "ftp://a": scheme`},
		{"no static targets", HTTPConfig{Discovery: StaticTargets()}, "at least one target"},
		{"both", HTTPConfig{Targets: []string{"http://a"}, Discovery: StaticTargets(Target{URL: "http://b"})}, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := HTTP(tc.cfg)
			if err == nil {
				u.Close()
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "proxy: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestWeightsAtMaxWeight: the largest weights scale down without overflow,
// keeping every target at least 1 and the proportions as far as the limit
// allows.
func TestWeightsAtMaxWeight(t *testing.T) {
	many := make([]int, 1000)
	for i := range many {
		many[i] = MaxWeight - i
	}
	for _, tc := range []struct {
		name    string
		weights []int
		limit   int
		want    []int // nil: only the invariants are checked
	}{
		{"max and 1", []int{MaxWeight, 1}, lbMaxSchedule, []int{lbMaxSchedule - 1, 1}},
		{"max and max", []int{MaxWeight, MaxWeight}, lbMaxSchedule, []int{1, 1}},
		{"common divisor", []int{MaxWeight, MaxWeight / 2}, lbMaxSchedule, []int{2, 1}},
		{"ring", []int{MaxWeight, MaxWeight / 4 * 3}, lbMaxPoints / lbPointsPer, []int{4, 3}},
		{"many near max", many, lbMaxSchedule, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lbReduce(tc.weights, tc.limit)
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("lbReduce = %v, want %v", got, tc.want)
			}
			sum := 0
			for i, w := range got {
				if w < 1 || w > tc.weights[i] {
					t.Fatalf("weight %d became %d", tc.weights[i], w)
				}
				sum += w
			}
			if sum > tc.limit+len(got) {
				t.Errorf("weights sum to %d, over %d", sum, tc.limit+len(got))
			}
		})
	}
	// Sets at the bound build, for every balancer.
	for _, b := range []Balancer{Weighted(), HashBy(HashHeader("X-User")), LeastInFlight()} {
		s := lbTestSet(b, MaxWeight, 1, MaxWeight)
		if len(s.sched) > lbMaxSchedule || len(s.ring) > lbMaxPoints {
			t.Errorf("%v: %d steps, %d points", b, len(s.sched), len(s.ring))
		}
		if s.pick(lbHeaderRequest("X-User", "u"), &lbFilter{}) == nil {
			t.Errorf("%v: no target", b)
		}
	}
}

// BenchmarkPick is the cost of choosing a target, health checks included.
// Target: 0 allocations; well under 100 ns for 2 targets and under 1 µs
// for 100.
func BenchmarkPick(b *testing.B) {
	balancers := []struct {
		name string
		b    Balancer
	}{
		{"RoundRobin", RoundRobin()},
		{"Weighted", Weighted()},
		{"LeastInFlight", LeastInFlight()},
		{"Hash", HashBy(HashHeader("X-User"))},
	}
	for _, bc := range balancers {
		for _, n := range []int{2, 100} {
			b.Run(fmt.Sprintf("%s/%d", bc.name, n), func(b *testing.B) {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1 + i%7
				}
				s := lbTestSet(bc.b, weights...)
				req := lbHeaderRequest("X-User", "user-12345")
				var tried [4]*lbTarget
				b.ReportAllocs()
				for b.Loop() {
					f := lbFilter{now: 1, tried: tried[:0]}
					if s.pick(req, &f) == nil {
						b.Fatal("no target")
					}
				}
			})
		}
	}
}

func TestPickAllocs(t *testing.T) {
	for _, b := range []Balancer{RoundRobin(), Weighted(), LeastInFlight(), HashBy(HashHeader("X-User")), HashBy(HashCookie("sid")), HashBy(HashClientIP())} {
		s := lbTestSet(b, lbOnes(100)...)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User", "u1")
		r.Header.Set("Cookie", "a=b; sid=xyz")
		req := gateway.NewRequest(r)
		req.ClientIP()
		if n := testing.AllocsPerRun(100, func() { s.pick(req, &lbFilter{}) }); n != 0 {
			t.Errorf("balancer %d: %.0f allocations per pick, want 0", b.kind, n)
		}
	}
}
