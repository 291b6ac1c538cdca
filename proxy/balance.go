package proxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gatekit/gatekit/gateway"
	"github.com/sony/gobreaker/v2"
)

// A Balancer chooses the target of each request among the healthy targets
// of an HTTPUpstream. The zero value is RoundRobin. A target that is
// unhealthy (HealthCheck), ejected (PassiveHealth) or whose breaker is open
// (BreakerPolicy) is skipped by every balancer, and so is a target a request
// has already tried when it is retried and another one is left.
type Balancer struct {
	kind lbKind
	key  HashKey
}

type lbKind uint8

const (
	lbRoundRobin lbKind = iota
	lbWeighted
	lbLeast
	lbHash
)

// RoundRobin sends requests to the targets in turn, ignoring weights. It is
// the default. When the next target is unavailable, the one after it is
// taken.
func RoundRobin() Balancer { return Balancer{} }

// Weighted sends requests to the targets in proportion to their weights
// (Target.Weight), spread evenly in time: smooth weighted round-robin, as
// nginx does it, so weights 5:1:1 give a a b a c a a rather than a run of
// five a. The order is computed once per set of targets, so a pick is a
// counter increment and takes no lock.
func Weighted() Balancer { return Balancer{kind: lbWeighted} }

// LeastInFlight sends each request to the target with the fewest requests in
// flight relative to its weight; a request counts until its reply body is
// closed. Ties go round-robin. With up to 8 targets every target is
// compared; with more, two chosen at random are (the "power of two
// choices", which Envoy's least-request balancer also uses), so a pick stays
// cheap however many targets there are.
func LeastInFlight() Balancer { return Balancer{kind: lbLeast} }

// HashBy sends all requests with the same key to the same target, for sticky
// sessions and caches: consistent hashing on a ring with 160 points per unit
// of weight (ketama's count), so that when a target joins or leaves only
// about 1/N of the keys move. When a key's target is unavailable, its
// requests go to the next target on the ring and come back when it recovers.
// A request without the key (no such header or cookie) is sent round-robin.
// The hash is FNV-1a, the same in every process, so gateway replicas agree.
func HashBy(key HashKey) Balancer { return Balancer{kind: lbHash, key: key} }

// A HashKey names what HashBy hashes. Make one with HashHeader, HashCookie
// or HashClientIP.
type HashKey struct {
	kind lbKeyKind
	name string
}

type lbKeyKind uint8

const (
	lbKeyNone lbKeyKind = iota
	lbKeyHeader
	lbKeyCookie
	lbKeyClientIP
)

// HashHeader keys on the first value of a request header field, such as
// "X-Session-Id" or "X-Tenant".
func HashHeader(name string) HashKey {
	return HashKey{kind: lbKeyHeader, name: textproto.CanonicalMIMEHeaderKey(name)}
}

// HashCookie keys on the value of a request cookie.
func HashCookie(name string) HashKey { return HashKey{kind: lbKeyCookie, name: name} }

// HashClientIP keys on gateway.Request.ClientIP, the client's address as the
// gateway's trusted proxies let it see it.
func HashClientIP() HashKey { return HashKey{kind: lbKeyClientIP} }

func (b Balancer) check() error {
	if b.kind != lbHash {
		return nil
	}
	switch b.key.kind {
	case lbKeyHeader, lbKeyCookie:
		if !gateway.IsToken(b.key.name) {
			return fmt.Errorf("proxy: HTTPConfig.Balance: HashBy: %q is not a valid header or cookie name", b.key.name)
		}
	case lbKeyClientIP:
	default:
		return errors.New("proxy: HTTPConfig.Balance: HashBy needs a key from HashHeader, HashCookie or HashClientIP")
	}
	return nil
}

// hash returns the hash of the request's key, or false when it has none.
func (k HashKey) hash(req *gateway.Request) (uint64, bool) {
	switch k.kind {
	case lbKeyHeader:
		if vs := req.HTTP.Header[k.name]; len(vs) > 0 && vs[0] != "" {
			return lbHashString(vs[0]), true
		}
	case lbKeyCookie:
		if v, ok := lbCookie(req.HTTP.Header, k.name); ok {
			return lbHashString(v), true
		}
	case lbKeyClientIP:
		if ip := req.ClientIP(); ip.IsValid() {
			b := ip.As16()
			h := uint64(lbFNVOffset)
			for _, c := range b {
				h = (h ^ uint64(c)) * lbFNVPrime
			}
			return lbMix(h), true
		}
	}
	return 0, false
}

// lbCookie returns the value of cookie name in h's Cookie fields, without
// the allocations of http.Request.Cookie.
func lbCookie(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v != "" {
				return v, true
			}
		}
	}
	return "", false
}

const (
	lbFNVOffset = 14695981039346656037
	lbFNVPrime  = 1099511628211
)

func lbHashString(s string) uint64 {
	h := uint64(lbFNVOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * lbFNVPrime
	}
	return lbMix(h)
}

// lbMix is murmur3's finaliser: FNV alone leaves similar keys (user-1,
// user-2) close together on the ring.
func lbMix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9a64e5a6bd3
	h ^= h >> 33
	return h
}

// An lbTarget is one target with its live state. It outlives the target sets
// it belongs to: a discovery update that keeps a URL keeps its health, its
// breaker and its in-flight count.
type lbTarget struct {
	target
	key string // the target's URL, its identity across updates

	inflight atomic.Int64

	// Active health checks (health.go).
	hcDown        atomic.Bool
	hcOK, hcFails atomic.Int32 // consecutive probe results

	// Passive health (health.go), on the upstream's clock (nanoseconds).
	fails        atomic.Int32
	ejectedUntil atomic.Int64

	// Circuit breaker (breaker.go); nil without a BreakerPolicy.
	breaker     *gobreaker.TwoStepCircuitBreaker[struct{}]
	cbOpenUntil atomic.Int64
}

// An lbSet is an immutable set of targets with what its balancer needs;
// a discovery update replaces it as a whole, so the request path takes no
// lock.
type lbSet struct {
	targets []*lbTarget
	weights []int // ≥ 1 each
	kind    lbKind
	key     HashKey
	next    atomic.Uint64
	sched   []uint32  // Weighted: target indexes in smooth round-robin order
	ring    []lbPoint // HashBy: sorted by hash
}

type lbPoint struct {
	hash uint64
	idx  uint32
}

const (
	lbMaxSchedule = 1 << 16 // longest Weighted order; larger weights are scaled down
	lbPointsPer   = 160     // ring points per unit of weight
	lbMaxPoints   = 1 << 18 // most ring points in all
	lbExactMax    = 8       // LeastInFlight compares all targets up to this many
)

func lbNewSet(b Balancer, targets []*lbTarget, weights []int) *lbSet {
	s := &lbSet{targets: targets, weights: weights, kind: b.kind, key: b.key}
	switch b.kind {
	case lbWeighted:
		s.sched = lbSchedule(weights)
	case lbHash:
		s.ring = lbRing(targets, weights)
	}
	return s
}

// lbReduce divides weights, each between 1 and MaxWeight, by their greatest
// common divisor and scales them down so that they sum to at most limit,
// keeping each at least 1. Sums and products are taken in uint64, where
// len(weights)·MaxWeight·limit cannot overflow.
func lbReduce(weights []int, limit int) []int {
	g := 0
	for _, w := range weights {
		a, b := w, g
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	w := make([]int, len(weights))
	var sum uint64
	for i, x := range weights {
		w[i] = x / g
		sum += uint64(w[i])
	}
	if sum > uint64(limit) {
		for i := range w {
			w[i] = max(1, int(uint64(w[i])*uint64(limit)/sum))
		}
	}
	return w
}

// lbSchedule returns the order of smooth weighted round-robin over one
// period: each step adds every target's weight to its current value, picks
// the largest and takes the total from it.
func lbSchedule(weights []int) []uint32 {
	w := lbReduce(weights, lbMaxSchedule)
	total := 0
	for _, x := range w {
		total += x
	}
	cur := make([]int, len(w))
	sched := make([]uint32, total)
	for k := range sched {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		sched[k] = uint32(best)
	}
	return sched
}

// lbRing returns the hash ring: lbPointsPer points per unit of weight, each
// the hash of the target's URL and the point's number.
func lbRing(targets []*lbTarget, weights []int) []lbPoint {
	w := lbReduce(weights, lbMaxPoints/lbPointsPer)
	var ring []lbPoint
	var buf []byte
	for i, t := range targets {
		for j := range w[i] * lbPointsPer {
			buf = append(append(buf[:0], t.key...), '#')
			buf = strconv.AppendInt(buf, int64(j), 10)
			ring = append(ring, lbPoint{hash: lbHashString(string(buf)), idx: uint32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b lbPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx) - int(b.idx)
	})
	return ring
}

// An lbFilter says which targets a pick may return: those available now,
// not yet tried by this request and not refused by their breakers.
type lbFilter struct {
	now     int64 // the upstream's clock
	tried   []*lbTarget
	refused []*lbTarget
}

func (f *lbFilter) available(t *lbTarget) bool {
	return !t.hcDown.Load() && t.ejectedUntil.Load() <= f.now && t.cbOpenUntil.Load() <= f.now
}

func (f *lbFilter) usable(t *lbTarget) bool {
	if !f.available(t) {
		return false
	}
	for _, x := range f.tried {
		if x == t {
			return false
		}
	}
	for _, x := range f.refused {
		if x == t {
			return false
		}
	}
	return true
}

// pick returns the target for req, or nil when none is usable.
func (s *lbSet) pick(req *gateway.Request, f *lbFilter) *lbTarget {
	switch len(s.targets) {
	case 0:
		return nil
	case 1:
		if t := s.targets[0]; f.usable(t) {
			return t
		}
		return nil
	}
	switch s.kind {
	case lbWeighted:
		return s.pickWeighted(f)
	case lbLeast:
		return s.pickLeast(f)
	case lbHash:
		if h, ok := s.key.hash(req); ok {
			return s.pickRing(h, f)
		}
	}
	return s.pickRoundRobin(f)
}

func (s *lbSet) pickRoundRobin(f *lbFilter) *lbTarget {
	n := uint64(len(s.targets))
	start := s.next.Add(1) - 1
	for i := range n {
		if t := s.targets[(start+i)%n]; f.usable(t) {
			return t
		}
	}
	return nil
}

func (s *lbSet) pickWeighted(f *lbFilter) *lbTarget {
	n := uint64(len(s.sched))
	start := s.next.Add(1) - 1
	for i := range n {
		if t := s.targets[s.sched[(start+i)%n]]; f.usable(t) {
			return t
		}
	}
	return nil
}

func (s *lbSet) pickLeast(f *lbFilter) *lbTarget {
	n := len(s.targets)
	if n > lbExactMax {
		a, b := rand.IntN(n), rand.IntN(n-1)
		if b >= a {
			b++
		}
		ta, tb := s.targets[a], s.targets[b]
		switch ua, ub := f.usable(ta), f.usable(tb); {
		case ua && ub:
			if tb.inflight.Load()*int64(s.weights[a]) < ta.inflight.Load()*int64(s.weights[b]) {
				return tb
			}
			return ta
		case ua:
			return ta
		case ub:
			return tb
		}
		// Both unusable: compare all.
	}
	i := int(s.next.Add(1)-1) % n
	var best *lbTarget
	var bestLoad, bestWeight int64
	for range n {
		if t := s.targets[i]; f.usable(t) {
			load, w := t.inflight.Load(), int64(s.weights[i])
			if best == nil || load*bestWeight < bestLoad*w {
				best, bestLoad, bestWeight = t, load, w
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return best
}

func (s *lbSet) pickRing(h uint64, f *lbFilter) *lbTarget {
	ring := s.ring
	lo, hi := 0, len(ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	last := uint32(len(s.targets)) // no target: check the first point
	for range ring {
		if lo == len(ring) {
			lo = 0
		}
		if p := ring[lo]; p.idx != last {
			if t := s.targets[p.idx]; f.usable(t) {
				return t
			}
			last = p.idx
		}
		lo++
	}
	return nil
}
