// Package redisstore keeps gatekit's rate limits and quotas in Redis, so
// that every replica of a gateway counts against the same limits. It
// implements ratelimit.Store:
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	store, err := redisstore.New(redisstore.Config{Client: client})
//	...
//	res, err := store.Take(ctx, "client-42", ratelimit.Bucket{Interval: 600 * time.Millisecond, Burst: 20}, 1)
//
// # Algorithms
//
// Take is a token bucket computed with GCRA, the generic cell rate
// algorithm. The whole state of a bucket is one number, its theoretical
// arrival time (TAT): the moment it would be full again. Taking n tokens
// moves the TAT n intervals later, from now if it was in the past; the
// request is admitted if the TAT stays within burst intervals of now. So
// a fresh bucket admits burst tokens back to back and then one token per
// interval, and the reply tells exactly how long until n tokens are there.
//
// A bucket with a MaxDelay also takes reservations: a request whose TAT
// lands up to MaxDelay beyond burst intervals of now is admitted at once,
// the TAT moves on as for any admitted request, and Result.Delay is the
// time by which the TAT overshoots, which the caller waits before going
// on. Reservations queue up in the TAT: past the burst, the k-th request
// for one token waits k intervals. A request that would wait longer than
// MaxDelay is refused and takes nothing, as without MaxDelay. Remaining is
// 0 while reservations are queued, and Reset counts the queue in.
//
// Count is a fixed-window counter: windows of a fixed length aligned to
// the Unix epoch (a day runs from midnight to midnight UTC), or calendar
// months in UTC, computed in the script. A request is admitted if the
// window's count plus n stays within the limit; a refused request is not
// counted, so the count is of admitted requests only.
//
// # One round trip, on the Redis clock
//
// Each decision is one Lua script: read, decide and write happen in one
// atomic step on the server, in one round trip. Scripts run with EVALSHA;
// the first decision of each kind that reaches a server that has not seen
// the script (after a start, a restart, a failover or SCRIPT FLUSH) gets
// NOSCRIPT and is sent again with EVAL, one extra round trip per server
// and script. New does not preload the scripts: it takes no context and
// does not contact Redis, and a restart would forget a preload anyway.
//
// The scripts read the time with the Redis TIME command and never take it
// from the caller, so gateway replicas whose clocks disagree still agree
// on every limit. The Redis server's clock is the one that matters: if it
// steps forward, buckets refill and windows end early; after a failover
// the new primary's clock takes over. Times are integer microseconds; a
// bucket's interval and maximum delay are rounded up to whole
// microseconds, so it may refill slightly slower than asked, never faster.
// Counts and times are bounded by ratelimit.MaxUnits (2^50 µs, about 35
// years; for a bucket, its burst intervals plus its maximum delay), which
// keeps the scripts' arithmetic exact.
//
// Redis 5 or later is required (scripts that read TIME and then write
// need effects replication, the default since 5.0); the tests run against
// Redis 7.
//
// # Keys and expiry
//
// With the default prefix, a bucket lives at
//
//	gatekit:rl:{b:<key>}
//
// and the count of one window at
//
//	gatekit:rl:{w:<key>}:<length in seconds, or "month">:<window start in Unix seconds>
//
// A new window is a new key, and the length in the key keeps, say, a
// per-minute and a per-hour quota on the same key apart. The braces are a
// Redis Cluster hash tag: the cluster places a key by the part between
// the first "{" and the next "}" only, so all keys of one limit key are in
// one slot, and different limit keys spread over the cluster. That also
// makes the window keys safe in a cluster: the script names them from the
// Redis clock, so they cannot be declared to Redis in advance, but they
// are always in the slot of the declared key. (A "}" inside a limit key
// ends the tag early, the same way for all of that key's keys, so it does
// no harm.) A bucket's key expires when the bucket is full again, a
// window's a second after the window ends, so Redis holds only the keys
// that are in use.
//
// # Accuracy and failure
//
// While Redis answers, the limits are exact: every decision is atomic on
// one server, so no number of replicas, goroutines or clock skews between
// them can admit more than a bucket or a window allows. What can go wrong
// comes from Redis itself:
//
//   - An error does not mean that nothing was taken: the script may have
//     run and its reply been lost. go-redis resends a command whose reply
//     timed out (Options.MaxRetries), which then counts the decision twice
//     and errs on the side of refusing. Whether a request is admitted when
//     the store errs is the caller's choice (ratelimit's Shared fails open
//     or closed as configured).
//   - Redis replicates asynchronously. If the primary fails and a replica
//     that had not yet received the latest writes is promoted, those
//     writes are lost: a bucket can look fuller than it was and a window's
//     count lower, so each limit key can admit up to one extra burst (for
//     a bucket) or one extra window's limit (for a quota) around the
//     failover. A Redis restarted without persistence forgets all limits
//     the same way. Nothing here waits for replicas (WAIT), which would
//     cost a round trip on every request.
//   - A context deadline bounds a call only if the client honours it on
//     its sockets (Options.ContextTimeoutEnabled); New refuses the
//     go-redis clients that do not (see Config.Client), because otherwise
//     a stalled Redis holds every request for the client's ReadTimeout,
//     past the limiter's timeout.
package redisstore
