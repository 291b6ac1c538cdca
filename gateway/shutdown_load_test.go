package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/gateway"
)

// TestShutdownUnderLoad shuts a server down while clients keep sending
// requests to a router whose upstream takes a few milliseconds. Every
// request whose handler began must complete with 200; the others may only
// fail to connect or find their kept-alive connection closed (counted, not
// failures); readiness turns 503 while requests are still in flight; Serve
// returns nil; no goroutine is left.
func TestShutdownUnderLoad(t *testing.T) {
	tests := []struct {
		name       string
		drainDelay time.Duration
	}{
		{"no drain delay", 0},
		{"drain delay", 200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after the shutdown
			const (
				clients = 8
				work    = 2 * time.Millisecond // what the upstream takes
				// The request that starts the shutdown: the load is well
				// under way by then.
				cancelAt = 200
			)
			var (
				started, finished, inFlight atomic.Int64
				startedIDs                  sync.Map
				draining                    atomic.Bool // readiness was seen 503
				duringDrain                 atomic.Int64
				reached                     = make(chan struct{})
				release                     = make(chan struct{})
				releaseHeld                 = sync.OnceFunc(func() { close(release) })
				inFlightAtCancel            int64
			)
			upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				startedIDs.Store(req.HTTP.Header.Get("Load-Id"), true)
				inFlight.Add(1)
				defer inFlight.Add(-1)
				if draining.Load() {
					duringDrain.Add(1)
				}
				if started.Add(1) == cancelAt {
					// Held until readiness answered 503, so that at least
					// this request is in flight through the shutdown.
					close(reached)
					<-release
				}
				timer := time.NewTimer(work)
				defer timer.Stop()
				select {
				case <-timer.C:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				finished.Add(1)
				return gateway.NewResponse(http.StatusOK, nil, []byte("ok")), nil
			})
			router, err := gateway.NewRouter(gateway.RouterConfig{
				Options: gateway.Options{Logger: quietLogger()},
				Routes:  []gateway.Route{{Name: "work", Methods: []string{"GET", "POST"}, Path: "/work", Handler: gateway.NewPipeline(upstream)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			health, err := gateway.NewHealth(gateway.HealthConfig{CacheFor: -1, Logger: quietLogger(), Checks: []gateway.ReadinessCheck{
				{Name: "upstream", Check: func(context.Context) error { return nil }},
			}})
			if err != nil {
				t.Fatal(err)
			}
			admin := httptest.NewServer(health.Ready())
			t.Cleanup(admin.Close)
			srv := &gateway.Server{Handler: router, Health: health, DrainDelay: tc.drainDelay, Logger: quietLogger()}
			addr, shutdown := startServer(t, srv)
			probe := &http.Client{Transport: &http.Transport{}}
			t.Cleanup(probe.CloseIdleConnections)

			// The clients send until told to stop, then once more: that
			// last request finds the server gone.
			type tally struct {
				ok       int
				errored  map[string]error // transport errors by request id
				failures []string         // replies other than 200 "ok"
			}
			transport := &http.Transport{MaxIdleConnsPerHost: clients}
			client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
			t.Cleanup(transport.CloseIdleConnections)
			stop := make(chan struct{})
			stopClients := sync.OnceFunc(func() { close(stop) })
			tallies := make([]tally, clients)
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					r := &tallies[c]
					r.errored = map[string]error{}
					for i := 0; ; i++ {
						last := false
						select {
						case <-stop:
							last = true
						default:
						}
						id := strconv.Itoa(c) + "-" + strconv.Itoa(i)
						// Half the clients POST: the transport retries a GET
						// that met a closed connection, never a POST.
						method, body := "GET", io.Reader(nil)
						if c%2 == 1 {
							method, body = "POST", strings.NewReader(`{"amount":"1.00"}`)
						}
						req, err := http.NewRequest(method, "http://"+addr+"/work", body)
						if err != nil {
							panic(err)
						}
						req.Header.Set("Load-Id", id)
						resp, err := client.Do(req)
						var reply []byte
						if err == nil {
							reply, err = io.ReadAll(resp.Body)
							resp.Body.Close()
						}
						switch {
						case err != nil:
							r.errored[id] = err
						case resp.StatusCode != http.StatusOK || string(reply) != "ok":
							r.failures = append(r.failures, fmt.Sprintf("request %s: %d %q", id, resp.StatusCode, reply))
						case last:
							r.failures = append(r.failures, fmt.Sprintf("request %s: served after Serve returned", id))
						default:
							r.ok++
						}
						if last {
							return
						}
					}
				})
			}

			// On an early failure: let the clients and the held request go
			// before the server is shut down.
			t.Cleanup(func() { releaseHeld(); stopClients(); wg.Wait() })
			select {
			case <-reached:
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d requests began in 10s", started.Load())
			}
			inFlightAtCancel = inFlight.Load()
			shutErr := make(chan error, 1)
			go func() { shutErr <- shutdown() }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				status, body, err := fetchText(probe, admin.URL)
				if err != nil {
					t.Fatal(err)
				}
				if status == http.StatusServiceUnavailable {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("readiness still %d %s 10s after the shutdown began", status, body)
				}
				time.Sleep(time.Millisecond) // polling for the shutdown goroutine to run
			}
			draining.Store(true)
			releaseHeld()
			serveErr := <-shutErr
			stopClients()
			wg.Wait()
			if serveErr != nil {
				t.Errorf("Serve: %v", serveErr)
			}
			if status, _, _ := fetchText(probe, admin.URL); status != http.StatusServiceUnavailable {
				t.Errorf("readiness after shutdown: %d, want 503", status)
			}

			// Every handler has returned: a transport error on a request
			// whose handler began is a failure, any other was refused.
			var ok, refused int
			var failures []string
			examples := map[string]bool{}
			for _, r := range tallies {
				ok += r.ok
				failures = append(failures, r.failures...)
				for id, err := range r.errored {
					if _, began := startedIDs.Load(id); began {
						failures = append(failures, fmt.Sprintf("request %s: handler began, client got %v", id, err))
						continue
					}
					refused++
					if len(examples) < 3 {
						examples[err.Error()] = true
					}
				}
			}
			t.Logf("started %d, completed 200 %d, refused or closed %d, in flight at cancel %d, started after readiness was 503: %d",
				started.Load(), ok, refused, inFlightAtCancel, duringDrain.Load())
			for e := range examples {
				t.Logf("refused, for example: %s", e)
			}
			for _, f := range failures[:min(len(failures), 10)] {
				t.Error(f)
			}
			if len(failures) > 0 {
				t.Fatalf("%d failures", len(failures))
			}
			if int64(ok) != started.Load() || finished.Load() != started.Load() {
				t.Errorf("handlers started %d, finished %d, clients got 200 %d times: want all equal", started.Load(), finished.Load(), ok)
			}
			if refused < clients {
				t.Errorf("refused %d, want at least one a client (each sent once after Serve returned)", refused)
			}
			if tc.drainDelay > 0 && duringDrain.Load() == 0 {
				t.Errorf("no request began while readiness answered 503 during a %v drain delay", tc.drainDelay)
			}
		})
	}
}
