// Package ratelimit protects upstreams and enforces plans: token buckets
// per client, API key, principal, claim, header or route (Limiter), quotas
// of N requests per minute, hour, day or calendar month (Quota), and a cap
// on requests in flight (Concurrency). Each is a gateway.Limiter; put it on
// a route with gateway.Limit, after the authenticator whose principal it
// keys by.
//
//	perClient, err := ratelimit.New(ratelimit.Config{
//		Name: "per-client", Rate: 100, Per: time.Minute, Burst: 20,
//		Key: ratelimit.ByClientIP(), Headers: true,
//	})
//	...
//	pipeline := gateway.Chain(gateway.Limit(perClient))(upstream)
//
// # Replies
//
// A refused request gets 429 problem+json with Retry-After in whole
// seconds, rounded up, so a client that waits that long is admitted (if
// nothing else takes its token first), and the fields of
// draft-ietf-httpapi-ratelimit-headers:
//
//	RateLimit-Policy: "per-client";q=20;w=12
//	RateLimit: "per-client";r=0;t=12
//
// q is the quota (a bucket's burst, a quota's limit), w the window in
// seconds (the time a bucket takes to fill from empty, the length of a
// quota's window), r what remains, t the seconds until it is whole again.
// With Headers set, admitted replies carry them too. Several limiters on
// a route each add their member to both fields.
//
// # Keys and memory
//
// A KeyFunc appends the request's key to a buffer, so that a key the
// limiter knows costs no allocation. Keys are held in a table split into
// shards, each with a lock and a least-recently-used list, bounded by
// MaxKeys: a flood of distinct keys costs bounded memory, and the keys
// used longest ago are forgotten first (a forgotten bucket comes back
// full, a forgotten quota count comes back at zero).
//
// # Many replicas
//
// With Config.Shared (or QuotaConfig.Shared), counts live in a Store that
// every replica of the gateway shares; the redisstore subpackage stores
// them in Redis, one atomic script and one round trip per decision. A
// decision is taken on the store's clock, never a replica's, so replicas
// whose clocks disagree still enforce one limit.
//
// Accuracy: while the store answers, the limit is exact across replicas:
// no more than Burst requests back to back and Rate per Per after that for
// a bucket, no more than Limit per window for a quota. Requests are
// admitted over the limit only in these cases:
//
//   - Shared.FailOpen: while the store cannot decide (unreachable, or
//     slower than Shared.Timeout), every request is admitted, counted in
//     Stats.FailedOpen and logged. Without FailOpen they are refused with
//     503, and nothing is admitted over the limit.
//   - The store itself loses counts: a Redis failover to a replica that
//     had not yet received the latest writes, or a restart without
//     persistence, forgets what was taken, so up to one more Burst (or one
//     more window's Limit) per key can be admitted after it.
//   - The store's clock jumps: after a failover the new primary's clock
//     rules. If it is ahead, each bucket can admit up to one more Burst
//     (the jump counts as time to earn tokens in); if it is behind by more
//     than a second across a window boundary, a quota's previous window
//     may have expired already and up to one more Limit per key can be
//     admitted.
//
// The optional pre-check (Shared.PreCheck) never admits: it refuses, with
// no round trip, a key the store refused, until the wait the store gave
// has passed, so it cannot let anything over the limit. It can refuse a
// request the store would have admitted only if the store's state was
// reset meanwhile; a request against a higher limit than the refused one
// (a plan upgraded) always asks the store.
//
// Limiters that share a store must have names of their own (Name is
// required with Shared): the name, and for a bucket its rate and burst,
// make the keys of its counts.
//
// In memory (no Shared), each replica counts alone: N replicas admit up
// to N times the limit.
package ratelimit
