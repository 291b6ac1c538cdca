package gateway_test

import (
	"context"
	"errors"
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

	"github.com/gatekit/gatekit/gateway"
)

// versionedRoutes is a route table whose every part (authenticator,
// upstream, reply stage) stamps version, so a reply shows whether one table
// served it from end to end. The two versions differ in shape too.
func versionedRoutes(version string) []gateway.Route {
	tag := gateway.TransformResponse(responseTransformerFunc(func(ctx context.Context, req *gateway.Request, resp *gateway.Response) error {
		resp.Header.Set("X-Table", version)
		return nil
	}))
	auth := gateway.Authenticate(gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		user := req.HTTP.Header.Get("X-User")
		if user == "" {
			return nil, gateway.ErrNotResponsible
		}
		return &gateway.Principal{Subject: user + "@" + version}, nil
	}))
	item := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body := version + " item " + req.Param("id") + " for " + req.Principal.Subject
		return gateway.NewResponse(http.StatusOK, http.Header{}, []byte(body)), nil
	})
	echo := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		b, err := req.Body()
		if err != nil {
			return nil, err
		}
		return gateway.NewResponse(http.StatusOK, http.Header{}, append([]byte(version+" echo "), b...)), nil
	})
	routes := []gateway.Route{
		{Name: "item", Methods: []string{"GET"}, Path: "/items/{id}", Handler: gateway.NewPipeline(item, auth, tag)},
		{Name: "echo", Methods: []string{"POST"}, Path: "/echo", Handler: gateway.NewPipeline(echo, tag)},
	}
	if version == "v2" {
		routes = append([]gateway.Route{{Name: "extra", PathPrefix: "/v2-only", Handler: gateway.NewPipeline(item)}}, routes...)
	}
	return routes
}

type responseTransformerFunc func(ctx context.Context, req *gateway.Request, resp *gateway.Response) error

func (f responseTransformerFunc) TransformResponse(ctx context.Context, req *gateway.Request, resp *gateway.Response) error {
	return f(ctx, req, resp)
}

// TestReloadUnderLoad serves real traffic from several clients while the
// route table is swapped back and forth: no request may fail, and every
// reply must come from one table, not a mix.
func TestReloadUnderLoad(t *testing.T) {
	const (
		workers  = 8
		swaps    = 200
		interval = 5 * time.Millisecond // about a second of swapping
	)
	tables := [2][]gateway.Route{versionedRoutes("v1"), versionedRoutes("v2")}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: tables[0], Options: gateway.Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	var (
		stop     = make(chan struct{})
		seen     [2]atomic.Int64 // replies by version
		failures atomic.Int64
		errMu    sync.Mutex
		errs     []string
	)
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 10 {
			errMu.Lock()
			errs = append(errs, fmt.Sprintf(format, args...))
			errMu.Unlock()
		}
	}
	// one sends request i of worker w and checks that the reply is whole
	// and from one table.
	one := func(w, i int) {
		var req *http.Request
		var want string // the body after "vN "
		if i%2 == 0 {
			id := strconv.Itoa(w*1_000_000 + i)
			req, _ = http.NewRequest("GET", srv.URL+"/items/"+id, nil)
			req.Header.Set("X-User", "ada")
			want = "item " + id + " for ada@"
		} else {
			payload := strings.Repeat("x", i%512) + strconv.Itoa(i)
			req, _ = http.NewRequest("POST", srv.URL+"/echo", strings.NewReader(payload))
			want = "echo " + payload
		}
		resp, err := client.Do(req)
		if err != nil {
			fail("%s %s: %v", req.Method, req.URL.Path, err)
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fail("%s %s: reading body: %v", req.Method, req.URL.Path, err)
			return
		}
		body, table := string(b), resp.Header.Get("X-Table")
		if resp.StatusCode != http.StatusOK {
			fail("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
			return
		}
		v, rest, _ := strings.Cut(body, " ")
		if i%2 == 0 {
			want += v // the authenticator's stamp
		}
		if v != table || rest != want || (v != "v1" && v != "v2") {
			fail("%s %s: table %q replied %q, want %q from one table", req.Method, req.URL.Path, table, body, want)
			return
		}
		seen[v[1]-'1'].Add(1)
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				one(w, i)
			}
		})
	}

	// Swap at a steady pace; go on past the planned swaps until both tables
	// have answered, which a loaded machine may take longer to show.
	ticker := time.NewTicker(interval)
	deadline := time.Now().Add(30 * time.Second)
	n := 0
	for ; n < swaps || seen[0].Load() == 0 || seen[1].Load() == 0; n++ {
		if time.Now().After(deadline) {
			break
		}
		<-ticker.C
		if err := router.Replace(tables[(n+1)%2]); err != nil {
			t.Errorf("swap %d: %v", n, err)
			break
		}
	}
	ticker.Stop()
	close(stop)
	wg.Wait()

	total := seen[0].Load() + seen[1].Load()
	t.Logf("%d swaps, %d requests (v1 %d, v2 %d), %d failures", n, total+failures.Load(), seen[0].Load(), seen[1].Load(), failures.Load())
	for _, e := range errs {
		t.Error(e)
	}
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d requests failed during reloads", f)
	}
	if seen[0].Load() == 0 || seen[1].Load() == 0 {
		t.Fatalf("replies by table: v1 %d, v2 %d; want both", seen[0].Load(), seen[1].Load())
	}
}

// Reloading routes while serving. In a main the reload runs on SIGHUP:
//
//	hup := make(chan os.Signal, 1)
//	signal.Notify(hup, syscall.SIGHUP)
//	go func() {
//		for range hup {
//			reload()
//		}
//	}()
//
// Requests already routed finish on the old table; new ones see the new one.
// A table that does not compile is refused and the old one keeps serving.
func ExampleRouter_Replace() {
	greeting := "hello" // in a main: read from the configuration file
	load := func() ([]gateway.Route, error) {
		if greeting == "" {
			return nil, errors.New("config: greeting is empty")
		}
		g := greeting
		hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			return gateway.NewResponse(http.StatusOK, nil, []byte(g+", "+req.Param("name"))), nil
		})
		return []gateway.Route{{Methods: []string{"GET"}, Path: "/greet/{name}", Handler: gateway.NewPipeline(hello)}}, nil
	}
	routes, err := load()
	if err != nil {
		panic(err)
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: routes})
	if err != nil {
		panic(err)
	}
	reload := func() {
		routes, err := load()
		if err == nil {
			err = router.Replace(routes)
		}
		if err != nil {
			fmt.Println("reload refused:", err) // in a main: log it
		}
	}
	greet := func() {
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest("GET", "/greet/ada", nil))
		fmt.Println(rec.Code, rec.Body.String())
	}

	greet()
	greeting = "bonjour"
	reload()
	greet()
	greeting = ""
	reload()
	greet()
	// Output:
	// 200 hello, ada
	// 200 bonjour, ada
	// reload refused: config: greeting is empty
	// 200 bonjour, ada
}
