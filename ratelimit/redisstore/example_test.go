package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/redisstore"
)

// Every replica of a gateway builds the same store on the same Redis, and
// they share the limit. (This example needs a Redis on localhost:6379, so
// it has no checked output.)
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// Required (New refuses a client without it): let the deadline of
		// each decision's ctx bound the wait for Redis.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	store, err := redisstore.New(redisstore.Config{Client: client})
	if err != nil {
		log.Fatal(err)
	}

	// 100 requests a minute per API key, in bursts of up to 20.
	perKey := ratelimit.Bucket{Interval: 600 * time.Millisecond, Burst: 20}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := store.Take(ctx, "apikey:k-123", perKey, 1)
	switch {
	case err != nil:
		fmt.Println("store unavailable:", err) // fail open or closed, as configured
	case !res.Allowed:
		fmt.Printf("429 Too Many Requests; retry in %v\n", res.RetryAfter.Round(time.Millisecond))
	default:
		fmt.Printf("admitted; %d of %d left\n", res.Remaining, res.Limit)
	}
}

// A bucket with a MaxDelay smooths bursts rather than refusing them: a
// request that would be refused is admitted if its tokens come within
// MaxDelay, and waits for them. (This example needs a Redis on
// localhost:6379.)
func Example_reservation() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redisstore.New(redisstore.Config{Client: client})
	if err != nil {
		log.Fatal(err)
	}

	// 10 requests a second to the upstream, queued for up to 2 seconds.
	upstream := ratelimit.Bucket{Interval: 100 * time.Millisecond, Burst: 1, MaxDelay: 2 * time.Second}

	ctx := context.Background()
	res, err := store.Take(ctx, "upstream:billing", upstream, 1)
	switch {
	case err != nil:
		fmt.Println("store unavailable:", err)
	case !res.Allowed:
		fmt.Printf("429 Too Many Requests; retry in %v\n", res.RetryAfter.Round(time.Millisecond))
	default:
		// The tokens are taken: wait out the delay, then go on. (A caller
		// that gives up while waiting does not get them back.)
		wait := time.NewTimer(res.Delay)
		defer wait.Stop()
		select {
		case <-ctx.Done():
			fmt.Println("gave up:", ctx.Err())
		case <-wait.C:
			fmt.Println("forwarded")
		}
	}
}
