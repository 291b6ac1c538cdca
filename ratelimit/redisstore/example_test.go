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
		// Let the deadline of each decision's ctx bound the wait for Redis.
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
