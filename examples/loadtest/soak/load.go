package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A kind is one sort of request in the mix, with the statuses it may
// rightly get. Anything else, a transport error or a 5xx is an error.
type kind struct {
	name   string
	weight int
	method string
	path   string
	token  string // "" sends no Authorization
	body   string
	expect []int
	// partial marks a dashboard: a 200 that lists a service as missing
	// hides an upstream failure, so it counts as an error.
	partial bool
}

// mix is the request mix. Every /v1 route shares one per-customer limit of
// the banking example (bursts of 10, then 30 a minute), so past the first
// seconds most /v1 requests are answered 429 by the limiter; the ones it
// admits go all the way to the services.
func mix(c100, c200, readOnly string) []kind {
	const transfer = `{"from":"acc-1001","to":"acc-2001","amount":"0.01","currency":"EUR","reference":"soak"}`
	return []kind{
		{name: "GET /v1/dashboard", weight: 30, method: "GET", path: "/v1/dashboard", token: c100, expect: []int{200, 429}, partial: true},
		{name: "GET /v1/loans", weight: 20, method: "GET", path: "/v1/loans", token: c200, expect: []int{200, 429}},
		{name: "POST /v1/transfers", weight: 4, method: "POST", path: "/v1/transfers", token: c100, body: transfer, expect: []int{201, 429}},
		{name: "POST /v1/transfers (invalid)", weight: 3, method: "POST", path: "/v1/transfers", token: c200, body: `{"from":"acc-2001","amount":"-5","currency":"XYZ"}`, expect: []int{422, 429}},
		{name: "POST /v1/transfers (read-only token)", weight: 3, method: "POST", path: "/v1/transfers", token: readOnly, body: transfer, expect: []int{403, 429}},
		{name: "GET /demo/token", weight: 10, method: "GET", path: "/demo/token?sub=c-200", expect: []int{200}},
		{name: "GET /v1/dashboard (no token)", weight: 20, method: "GET", path: "/v1/dashboard", expect: []int{401}},
		{name: "GET /v1/nope", weight: 10, method: "GET", path: "/v1/nope", token: c100, expect: []int{404}},
	}
}

// histogram is a log-linear latency histogram in microseconds: 64
// sub-buckets per power of two, so a quantile is within 1/64 (1.6%) of the
// truth, in fixed memory however long the run.
type histogram struct {
	counts [64 * 40]uint64
	n      uint64
	max    uint64
}

func bucketOf(us uint64) int {
	if us < 128 {
		return int(us)
	}
	shift := bits.Len64(us) - 7 // us>>shift is in [64, 128)
	return 64*(shift+1) + int(us>>shift) - 64
}

func bucketValue(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	shift := i/64 - 1
	return uint64(i%64+64)<<shift + (1<<shift)/2 // the bucket's middle
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	i := min(bucketOf(us), len(h.counts)-1)
	h.counts[i]++
	h.n++
	h.max = max(h.max, us)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketValue(i), h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

// stats are what one kind of request got.
type stats struct {
	statuses  map[int]uint64
	transport uint64 // transport errors (connection refused, reset, timeout)
	partial   uint64 // dashboards answered without a service
	all, ok   histogram
	examples  []string // the first few errors, for the report
}

func (s *stats) merge(o *stats) {
	if s.statuses == nil {
		s.statuses = map[int]uint64{}
	}
	for code, n := range o.statuses {
		s.statuses[code] += n
	}
	s.transport += o.transport
	s.partial += o.partial
	s.all.merge(&o.all)
	s.ok.merge(&o.ok)
	for _, e := range o.examples {
		if len(s.examples) < 5 {
			s.examples = append(s.examples, e)
		}
	}
}

func (s *stats) requests() uint64 {
	n := s.transport
	for _, c := range s.statuses {
		n += c
	}
	return n
}

// errors counts transport errors, 5xx, unexpected statuses and partial
// dashboards.
func (s *stats) errors(k kind) uint64 {
	n := s.transport + s.partial
	for code, c := range s.statuses {
		if code >= 500 || !expected(k, code) {
			n += c
		}
	}
	return n
}

func expected(k kind, code int) bool {
	for _, e := range k.expect {
		if e == code {
			return true
		}
	}
	return false
}

func (s *stats) statusList() string {
	codes := make([]int, 0, len(s.statuses))
	for c := range s.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var b strings.Builder
	for _, c := range codes {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d×%d", c, s.statuses[c])
	}
	if s.transport > 0 {
		fmt.Fprintf(&b, ", transport×%d", s.transport)
	}
	return b.String()
}

// loadResult is what one load phase did.
type loadResult struct {
	kinds   []stats // by index into the mix
	elapsed time.Duration
	missed  uint64 // ticks no worker was free for: the generator fell behind
}

// load sends the mix from conns workers for d, at rate requests a second in
// all (0: as fast as they can), and calls tick(elapsed) every interval.
func load(ctx context.Context, client *http.Client, base string, kinds []kind, conns int, rate float64, d, interval time.Duration, tick func(time.Duration)) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		ticks  chan struct{}
		missed atomic.Uint64
	)
	if rate > 0 {
		ticks = make(chan struct{}, conns)
		go func() {
			// A ticker drops ticks when this goroutine runs late (a busy
			// machine); counting what is due since the start keeps the
			// rate.
			t := time.NewTicker(max(time.Duration(float64(time.Second)/rate), time.Millisecond))
			defer t.Stop()
			begin := time.Now()
			var sent uint64
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				for due := uint64(time.Since(begin).Seconds() * rate); sent < due; sent++ {
					select {
					case ticks <- struct{}{}:
					default:
						missed.Add(1)
					}
				}
			}
		}()
	}
	// Each worker cycles through a shuffled sequence holding every kind
	// as often as its weight.
	var seq []int
	for i, k := range kinds {
		for range k.weight {
			seq = append(seq, i)
		}
	}
	per := make([][]stats, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		order := append([]int(nil), seq...)
		r := rand.New(rand.NewPCG(uint64(w), 1))
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		per[w] = make([]stats, len(kinds))
		wg.Go(func() {
			var buf bytes.Buffer
			for n := 0; ; n++ {
				if ticks != nil {
					select {
					case <-ctx.Done():
						return
					case <-ticks:
					}
				} else if ctx.Err() != nil {
					return
				}
				i := order[n%len(order)]
				do(client, base, kinds[i], &per[w][i], &buf)
			}
		})
	}
	if tick != nil {
		t := time.NewTicker(interval)
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-t.C:
				tick(time.Since(start))
			}
		}
		t.Stop()
	}
	wg.Wait()
	res := loadResult{kinds: make([]stats, len(kinds)), elapsed: time.Since(start), missed: missed.Load()}
	for _, p := range per {
		for i := range p {
			res.kinds[i].merge(&p[i])
		}
	}
	return res
}

// do sends one request of kind k and records what came back in s. It does
// not take the load's context: a request that started finishes, so that
// stopping the load never counts as an error.
func do(client *http.Client, base string, k kind, s *stats, buf *bytes.Buffer) {
	if s.statuses == nil {
		s.statuses = map[int]uint64{}
	}
	var body io.Reader
	if k.body != "" {
		body = strings.NewReader(k.body)
	}
	req, err := http.NewRequest(k.method, base+k.path, body)
	if err != nil {
		panic(err) // the mix is fixed: a bad request is a bug here
	}
	if k.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)
	if err != nil {
		s.transport++
		s.note(fmt.Sprintf("%s: %v", k.name, err))
		return
	}
	s.statuses[resp.StatusCode]++
	s.all.record(took)
	if resp.StatusCode < 300 {
		s.ok.record(took)
	}
	switch {
	case resp.StatusCode >= 500 || !expected(k, resp.StatusCode):
		s.note(fmt.Sprintf("%s: %d %.200s", k.name, resp.StatusCode, buf.Bytes()))
	case k.partial && resp.StatusCode == 200 && bytes.Contains(buf.Bytes(), []byte(`"missing"`)):
		s.partial++
		s.note(fmt.Sprintf("%s: partial: %.300s", k.name, buf.Bytes()))
	}
}

func (s *stats) note(e string) {
	if len(s.examples) < 5 {
		s.examples = append(s.examples, e)
	}
}
