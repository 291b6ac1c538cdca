package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// ConcurrencyConfig configures a Concurrency limiter. A zero field means the
// documented default; NewConcurrency refuses values that cannot work.
type ConcurrencyConfig struct {
	// Name names the limiter in errors; "" means "concurrency".
	Name string
	// Max is the most requests in flight at once. Required, at least 1.
	Max int
	// Queue is the most requests that wait for a slot once Max are in
	// flight. 0 refuses a request at once when no slot is free.
	Queue int
	// MaxWait is the longest a queued request waits for a slot before it
	// is refused. Required when Queue is above 0; ignored when it is 0.
	MaxWait time.Duration
	// RetryAfter is the wait suggested to refused clients in the
	// Retry-After field of the 503. The field holds whole seconds, so the
	// value is rounded up, to at least 1; 0 means one second.
	RetryAfter time.Duration
}

// A Concurrency limiter bounds how many requests a pipeline serves at once,
// which protects an upstream that degrades under parallel load (a database
// behind it, a model server with a few workers) better than a rate does: a
// rate counts arrivals, this counts work in progress.
//
// A request holds its slot until its reply has been sent to the client, not
// merely until the upstream answered, because a slow reader keeps the
// upstream connection (and often the upstream's worker) busy as long. A
// 101 Switching Protocols reply, such as an accepted WebSocket handshake,
// therefore holds its slot until the upgraded connection ends: count
// long-lived connections separately from short requests, or give them a
// route with its own limiter.
//
// Requests beyond Max wait in FIFO order, up to Queue of them and each for
// up to MaxWait; the others are refused with 503 Service Unavailable and a
// Retry-After field. A freed slot is handed straight to the longest waiter,
// so a newcomer never overtakes the queue.
//
// Use NewConcurrency to make one; it is safe for concurrent use and takes
// no goroutine per request, only one mutex held for a few instructions.
type Concurrency struct {
	name       string
	max        int
	queue      int
	maxWait    time.Duration
	retryAfter string // the value of the Retry-After field

	// done is c.finish, made once so that Limit returns it without
	// allocating a method value per request.
	done func(*gateway.Response)

	mu       sync.Mutex
	inFlight int
	waiting  int
	// head and tail are the queued requests, oldest first. When anybody
	// waits, all Max slots are taken: release hands a freed slot to the
	// head rather than counting it free.
	head, tail *slotWaiter
}

var _ gateway.Limiter = (*Concurrency)(nil)

// slotWaiter is one request queued for a slot.
type slotWaiter struct {
	prev, next *slotWaiter
	// ready is closed once the waiter has been granted a slot.
	ready chan struct{}
	// granted is set, under the limiter's mutex, when release hands the
	// waiter a slot; a waiter that gives up checks it to learn whether it
	// owns a slot it must pass on.
	granted bool
}

// The details of the 503 problem: the same advice, with the reason.
const (
	concDetailFull    = "too many requests in flight; retry later"
	concDetailTimeout = "too many requests in flight, and none finished in time; retry later"
)

// NewConcurrency returns a concurrency limiter configured by cfg, or an error
// naming the field that is wrong.
func NewConcurrency(cfg ConcurrencyConfig) (*Concurrency, error) {
	name := cfg.Name
	if name == "" {
		name = "concurrency"
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: concurrency %q: %w", name, err)
	}
	retry := cfg.RetryAfter
	if retry == 0 {
		retry = time.Second
	}
	secs := int64((retry + time.Second - 1) / time.Second)
	c := &Concurrency{
		name:       name,
		max:        cfg.Max,
		queue:      cfg.Queue,
		maxWait:    cfg.MaxWait,
		retryAfter: strconv.FormatInt(max(secs, 1), 10),
	}
	c.done = c.finish
	return c, nil
}

func (cfg *ConcurrencyConfig) validate() error {
	switch {
	case cfg.Max < 1:
		return fmt.Errorf("Max must be at least 1; got %d", cfg.Max)
	case cfg.Queue < 0:
		return fmt.Errorf("Queue must not be negative; got %d", cfg.Queue)
	case cfg.MaxWait < 0:
		return fmt.Errorf("MaxWait must not be negative; got %v", cfg.MaxWait)
	case cfg.Queue > 0 && cfg.MaxWait == 0:
		// Waiting for ever would turn an overload into a pile of stuck
		// connections; waiting not at all is what Queue 0 says.
		return errors.New("MaxWait is required when Queue is above 0")
	case cfg.RetryAfter < 0:
		return fmt.Errorf("RetryAfter must not be negative; got %v", cfg.RetryAfter)
	}
	return nil
}

// Limit admits req when a slot is free, queues it when the queue has room,
// and refuses it with a 503 *gateway.Error otherwise or when its wait runs
// out. If ctx ends while req waits, Limit returns at once with an error
// that wraps ctx.Err() and req loses its place.
//
// The done function it returns keeps the slot until the reply's body is
// closed (see Concurrency); the gateway's Limit stage calls it.
func (c *Concurrency) Limit(ctx context.Context, req *gateway.Request) (func(*gateway.Response), error) {
	c.mu.Lock()
	if c.inFlight < c.max {
		c.inFlight++
		c.mu.Unlock()
		return c.done, nil
	}
	if c.waiting >= c.queue {
		c.mu.Unlock()
		return nil, c.refuse(concDetailFull)
	}
	if err := ctx.Err(); err != nil { // a client already gone takes no place in the queue
		c.mu.Unlock()
		return nil, c.gaveUp(err)
	}
	w := &slotWaiter{ready: make(chan struct{})}
	c.enqueue(w)
	c.mu.Unlock()
	t := time.NewTimer(c.maxWait)
	defer t.Stop()
	return c.wait(ctx, w, t.C)
}

// wait blocks until w is granted a slot, expired fires, or ctx ends. A
// grant can race with either of the others; whichever wins, the slot is
// used or passed on, never lost.
func (c *Concurrency) wait(ctx context.Context, w *slotWaiter, expired <-chan time.Time) (func(*gateway.Response), error) {
	select {
	case <-w.ready:
		return c.done, nil
	case <-expired:
		if !c.leave(w) {
			return c.done, nil // granted as the wait ran out: serve it
		}
		return nil, c.refuse(concDetailTimeout)
	case <-ctx.Done():
		if !c.leave(w) {
			c.release() // granted as the client left: pass the slot on
		}
		return nil, c.gaveUp(ctx.Err())
	}
}

// refuse returns the 503 that answers a request without a slot. It carries
// no Err, so the gateway does not log every refusal of an overload.
func (c *Concurrency) refuse(detail string) error {
	return &gateway.Error{
		Status: http.StatusServiceUnavailable,
		Detail: detail,
		Header: http.Header{"Retry-After": {c.retryAfter}},
	}
}

// gaveUp wraps the reason a waiting request's context ended. The gateway
// writes nothing for a client that went away, and 504 for a deadline.
func (c *Concurrency) gaveUp(err error) error {
	return fmt.Errorf("ratelimit: concurrency %q: gave up waiting for a slot: %w", c.name, err)
}

// enqueue appends w to the queue; c.mu must be held.
func (c *Concurrency) enqueue(w *slotWaiter) {
	w.prev = c.tail
	if c.tail != nil {
		c.tail.next = w
	} else {
		c.head = w
	}
	c.tail = w
	c.waiting++
}

// unlink removes w from the queue; c.mu must be held.
func (c *Concurrency) unlink(w *slotWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		c.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		c.tail = w.prev
	}
	w.prev, w.next = nil, nil
	c.waiting--
}

// leave takes w out of the queue and reports whether it was still there;
// false means it has been granted a slot, which it now owns.
func (c *Concurrency) leave(w *slotWaiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.granted {
		return false
	}
	c.unlink(w)
	return true
}

// release frees one slot, handing it to the oldest waiter if there is one.
func (c *Concurrency) release() {
	c.mu.Lock()
	if w := c.head; w != nil {
		c.unlink(w)
		w.granted = true
		close(w.ready)
	} else {
		c.inFlight--
	}
	c.mu.Unlock()
}

// finish is the done function of an admitted request: it frees the slot now
// if there is no body to send, or else when the body is closed, which the
// gateway does once it has written it (or the upgraded connection ended).
func (c *Concurrency) finish(resp *gateway.Response) {
	if resp == nil || resp.Body == nil || resp.Body == http.NoBody {
		c.release()
		return
	}
	// A 101 reply's body is the upgraded connection, which the gateway
	// also writes to: keep it a Writer.
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = &slotConn{ReadWriteCloser: rwc, slotHold: slotHold{c: c}}
		return
	}
	resp.Body = &slotBody{ReadCloser: resp.Body, slotHold: slotHold{c: c}}
}

// InFlight returns how many requests hold a slot now, replies still being
// sent included.
func (c *Concurrency) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// Waiting returns how many requests are queued for a slot now.
func (c *Concurrency) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}

// slotHold is a slot owned by a reply body, released on the first Close:
// whoever consumes a body closes it, and some close it twice.
type slotHold struct {
	c        *Concurrency
	released atomic.Bool
}

func (h *slotHold) release() {
	if h.released.CompareAndSwap(false, true) {
		h.c.release()
	}
}

// slotBody is a reply body that holds a slot until it is closed.
type slotBody struct {
	io.ReadCloser
	slotHold
}

// Close closes the body and frees its slot.
func (b *slotBody) Close() error {
	defer b.release()
	return b.ReadCloser.Close()
}

// slotConn is the body of a 101 reply, an upgraded connection, that holds a
// slot until it is closed.
type slotConn struct {
	io.ReadWriteCloser
	slotHold
}

// Close closes the connection and frees its slot.
func (b *slotConn) Close() error {
	defer b.release()
	return b.ReadWriteCloser.Close()
}
