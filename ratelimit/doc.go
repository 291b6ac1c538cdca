// Package ratelimit will hold gatekit's limiters: token buckets
// (golang.org/x/time/rate) keyed by client, API key, principal or route,
// quotas per window, concurrency limits, the IETF RateLimit header fields,
// and a Store interface with a Redis implementation in a subpackage so that
// many gateway replicas share one limit. Each is a gateway.Limiter.
package ratelimit
