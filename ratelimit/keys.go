package ratelimit

import (
	"hash/maphash"
	"sync"
)

// A keyTable holds per-key state for at most a fixed number of keys: a map
// split into shards, each with its own lock and its own least-recently-used
// list. When a shard is full, the key used longest ago is forgotten, so a
// flood of distinct keys (a scan from many addresses) costs bounded memory
// and never a global lock.
type keyTable[T any] struct {
	seed     maphash.Seed
	perShard int
	shards   []keyShard[T]
}

type keyShard[T any] struct {
	mu    sync.Mutex
	m     map[string]*keyEntry[T]
	lru   keyEntry[T] // sentinel: lru.next is the most recent, lru.prev the oldest
	_     [40]byte    // keeps two shards' locks off one cache line
	count int
}

type keyEntry[T any] struct {
	key        string
	val        T
	prev, next *keyEntry[T]
}

// newKeyTable returns a table for up to capacity keys (at least one per
// shard).
func newKeyTable[T any](capacity int) *keyTable[T] {
	shards := 64
	for shards > 1 && capacity/shards < 64 {
		shards /= 2
	}
	t := &keyTable[T]{
		seed:     maphash.MakeSeed(),
		perShard: max(1, capacity/shards), // never more than capacity in all
		shards:   make([]keyShard[T], shards),
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = make(map[string]*keyEntry[T])
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return t
}

// with runs f on the state of key, made by init when the key is new (or
// was forgotten), under the lock of the key's shard. f must be quick.
func (t *keyTable[T]) with(key []byte, init func(*T), f func(*T)) {
	s := t.shard(key)
	s.mu.Lock()
	f(&s.entry(key, t.perShard, init).val)
	s.mu.Unlock()
}

// get returns the state of key, made by init when new. The state is
// shared: it must guard itself (a rate.Limiter does).
func (t *keyTable[T]) get(key []byte, init func(*T)) *T {
	s := t.shard(key)
	s.mu.Lock()
	v := &s.entry(key, t.perShard, init).val
	s.mu.Unlock()
	return v
}

func (t *keyTable[T]) shard(key []byte) *keyShard[T] {
	return &t.shards[maphash.Bytes(t.seed, key)&uint64(len(t.shards)-1)]
}

// entry returns the entry of key, made when new and moved to the front of
// the list; s.mu is held.
func (s *keyShard[T]) entry(key []byte, limit int, init func(*T)) *keyEntry[T] {
	e := s.m[string(key)] // no allocation: the compiler looks up without converting
	if e == nil {
		e = s.insert(string(key), limit)
		init(&e.val)
	} else if s.lru.next != e {
		e.unlink()
		s.pushFront(e)
	}
	return e
}

func (s *keyShard[T]) insert(key string, limit int) *keyEntry[T] {
	if s.count >= limit {
		// Forget the oldest key. Its entry is not reused: a caller of
		// get may still hold its state.
		old := s.lru.prev
		old.unlink()
		delete(s.m, old.key)
		s.count--
	}
	e := &keyEntry[T]{key: key}
	s.count++
	s.m[key] = e
	s.pushFront(e)
	return e
}

func (s *keyShard[T]) pushFront(e *keyEntry[T]) {
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}

func (e *keyEntry[T]) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// len returns the number of keys held.
func (t *keyTable[T]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}
