package gateway_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// startServer serves h on a loopback listener until the test ends, and
// returns the address and a function that starts the shutdown and waits for
// Serve to return.
func startServer(t *testing.T, srv *gateway.Server) (addr string, shutdown func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	var done bool
	var serveErr error
	shutdown = func() error {
		if !done {
			cancel()
			serveErr, done = <-errc, true
		}
		return serveErr
	}
	t.Cleanup(func() { shutdown() })
	return ln.Addr().String(), shutdown
}

func TestGracefulShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	srv := &gateway.Server{Handler: slow, Logger: quietLogger()}
	addr, shutdown := startServer(t, srv)

	type result struct {
		body string
		err  error
	}
	resc := make(chan result, 1)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	go func() {
		resp, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{string(b), err}
	}()
	<-started

	shutErr := make(chan error, 1)
	go func() { shutErr <- shutdown() }()

	// New connections are refused once the listener closes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepts connections during shutdown")
		}
		time.Sleep(5 * time.Millisecond) // polling for the listener to close
	}
	select {
	case err := <-shutErr:
		t.Fatalf("shutdown returned (%v) before the in-flight request finished", err)
	default:
	}

	close(release)
	res := <-resc
	if res.err != nil || res.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", res.body, res.err)
	}
	if err := <-shutErr; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestShutdownTimeoutCutsStragglers(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := &gateway.Server{Handler: h, ShutdownTimeout: 50 * time.Millisecond, Logger: quietLogger()}
	addr, shutdown := startServer(t, srv)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + addr)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	if err := shutdown(); err == nil {
		t.Fatal("shutdown with a stuck request returned nil")
	}
	if err := <-errc; err == nil {
		t.Fatal("the stuck request was not cut")
	}
}

func TestServerConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		srv  gateway.Server
	}{
		{"no handler", gateway.Server{}},
		{"tls without certificate", gateway.Server{Handler: http.NotFoundHandler(), TLSConfig: &tls.Config{}}},
		{"missing cert file", gateway.Server{Handler: http.NotFoundHandler(), CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.srv.Serve(context.Background(), ln); err == nil {
				t.Fatal("Serve accepted a bad configuration")
			}
		})
	}
}

func TestServerDefaultsRejectHugeHeaders(t *testing.T) {
	srv := &gateway.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Logger: quietLogger()}
	addr, _ := startServer(t, srv)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+addr, nil)
	// Twice the gateway's default, far below net/http's own 1 MiB, so the
	// test fails if the default is not applied.
	for range 2 * gateway.DefaultMaxHeaderBytes / 100 {
		req.Header.Add("X-Many", strings.Repeat("a", 100))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", resp.StatusCode)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, made fresh for each test.
type testPKI struct {
	pool       *x509.CertPool
	serverCert tls.Certificate
	clientCert tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatekit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, cn string) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		pool:       pool,
		serverCert: leaf(2, x509.ExtKeyUsageServerAuth, "server"),
		clientCert: leaf(3, x509.ExtKeyUsageClientAuth, "client"),
	}
}

func TestServerTLSAndMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "anonymous"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		io.WriteString(w, r.Proto+" "+name)
	})
	tlsAddr, _ := startServer(t, &gateway.Server{Handler: whoami, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}, Logger: quietLogger()})
	mtlsAddr, _ := startServer(t, &gateway.Server{Handler: whoami, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}, ClientCAs: pki.pool, Logger: quietLogger()})

	tests := []struct {
		name    string
		addr    string
		client  *tls.Config
		want    string
		wantErr bool
	}{
		{"tls", tlsAddr, &tls.Config{RootCAs: pki.pool}, "HTTP/1.1 anonymous", false},
		{"tls offers http2", tlsAddr, &tls.Config{RootCAs: pki.pool, NextProtos: []string{"h2"}}, "HTTP/2.0 anonymous", false},
		{"tls 1.1 refused", tlsAddr, &tls.Config{RootCAs: pki.pool, MaxVersion: tls.VersionTLS11}, "", true},
		{"mtls with client certificate", mtlsAddr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.clientCert}}, "HTTP/1.1 client", false},
		{"mtls without client certificate", mtlsAddr, &tls.Config{RootCAs: pki.pool}, "", true},
		{"mtls with certificate from another CA", mtlsAddr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{other.clientCert}}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: tc.client, ForceAttemptHTTP2: len(tc.client.NextProtos) > 0}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("https://" + tc.addr + "/")
			if tc.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request succeeded, want a TLS failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
}

// TestShutdownClosesUpgradedConnections switches a connection to a toy echo
// protocol through the gateway's Server and checks that a shutdown ends it
// and that Serve waits for its relay to stop.
func TestShutdownClosesUpgradedConnections(t *testing.T) {
	echo := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		gwEnd, backendEnd := net.Pipe()
		go func() {
			defer backendEnd.Close()
			io.Copy(backendEnd, backendEnd)
		}()
		h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"echo"}}
		return &gateway.Response{Status: http.StatusSwitchingProtocols, Header: h, Body: gwEnd}, nil
	})
	srv := &gateway.Server{Handler: gateway.NewPipeline(echo), Logger: quietLogger()}
	addr, shutdown := startServer(t, srv)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}

	if err := shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("upgraded connection still open after shutdown: %v", err)
	}
}

// TestUpgradedConnectionOutlivesReadTimeout: ReadTimeout bounds reading a
// request, not the life of a connection switched to another protocol (a
// WebSocket idles for minutes between messages).
func TestUpgradedConnectionOutlivesReadTimeout(t *testing.T) {
	echo := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		gwEnd, backendEnd := net.Pipe()
		go func() {
			defer backendEnd.Close()
			io.Copy(backendEnd, backendEnd)
		}()
		h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"echo"}}
		return &gateway.Response{Status: http.StatusSwitchingProtocols, Header: h, Body: gwEnd}, nil
	})
	const timeout = 200 * time.Millisecond
	srv := &gateway.Server{Handler: gateway.NewPipeline(echo), ReadTimeout: timeout, ReadHeaderTimeout: timeout, WriteTimeout: timeout, Logger: quietLogger()}
	addr, _ := startServer(t, srv)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	for i := range 2 {
		time.Sleep(3 * timeout) // idle past every server timeout
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "ping\n")
		if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("echo %d after idling: %q %v", i, line, err)
		}
	}
}

// fetchText fetches url with client and returns the status and body.
func fetchText(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// TestReadinessFlipsWhileDraining starts a shutdown with a request in
// flight: readiness, served by a separate admin server, answers 503
// "draining" while that request is still running, and the request then
// completes.
func TestReadinessFlipsWhileDraining(t *testing.T) {
	health, err := gateway.NewHealth(gateway.HealthConfig{CacheFor: -1, Checks: []gateway.ReadinessCheck{
		{Name: "upstream", Check: func(context.Context) error { return nil }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(health.Ready())
	defer admin.Close()

	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	srv := &gateway.Server{Handler: slow, Health: health, Logger: quietLogger()}
	addr, shutdown := startServer(t, srv)

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		status, body, err := fetchText(client, "http://"+addr+"/slow")
		resc <- result{status, body, err}
	}()
	<-started

	if status, body, err := fetchText(client, admin.URL); err != nil || status != http.StatusOK {
		t.Fatalf("readiness before shutdown: %d %s %v", status, body, err)
	}

	shutErr := make(chan error, 1)
	go func() { shutErr <- shutdown() }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body, err := fetchText(client, admin.URL)
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusServiceUnavailable {
			if body != `{"status":"draining"}` {
				t.Fatalf("readiness while draining: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readiness still 200 10s after the shutdown began")
		}
		time.Sleep(time.Millisecond) // polling for the shutdown goroutine to run
	}
	select {
	case err := <-shutErr:
		t.Fatalf("shutdown returned (%v) before the in-flight request finished", err)
	case res := <-resc:
		t.Fatalf("in-flight request ended before it was released: %+v", res)
	default:
	}

	close(release)
	if res := <-resc; res.err != nil || res.status != http.StatusOK || res.body != "finished" {
		t.Fatalf("in-flight request: %+v", res)
	}
	if err := <-shutErr; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if status, _, _ := fetchText(client, admin.URL); status != http.StatusServiceUnavailable {
		t.Fatalf("readiness after shutdown: %d, want 503", status)
	}
}

// TestDrainDelayKeepsServing checks that during DrainDelay the server
// answers readiness 503 on its own listener, still serves new requests (with
// "Connection: close"), and closes the listener only after the delay.
func TestDrainDelayKeepsServing(t *testing.T) {
	const delay = time.Second
	health := new(gateway.Health)
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", health.Ready())
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	srv := &gateway.Server{Handler: mux, Health: health, DrainDelay: delay, Logger: quietLogger()}
	addr, shutdown := startServer(t, srv)

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	if status, body, err := fetchText(client, "http://"+addr+"/readyz"); err != nil || status != http.StatusOK {
		t.Fatalf("readiness before shutdown: %d %s %v", status, body, err)
	}

	begun := time.Now()
	shutErr := make(chan error, 1)
	go func() { shutErr <- shutdown() }()
	for {
		status, body, err := fetchText(client, "http://"+addr+"/readyz")
		if err != nil {
			t.Fatalf("readiness during the drain delay: %v", err)
		}
		if status == http.StatusServiceUnavailable {
			break
		}
		if status != http.StatusOK {
			t.Fatalf("readiness: %d %s", status, body)
		}
		time.Sleep(time.Millisecond) // polling for the shutdown goroutine to run
	}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("request during the drain delay: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "served" || !resp.Close {
		t.Fatalf("request during the drain delay: %d %q, Connection: close %v", resp.StatusCode, b, resp.Close)
	}
	if err := <-shutErr; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if elapsed := time.Since(begun); elapsed < delay {
		t.Fatalf("shutdown took %v, less than DrainDelay %v", elapsed, delay)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("listener still open after shutdown")
	}
}
