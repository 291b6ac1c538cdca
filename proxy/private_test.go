package proxy_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// privPKI holds the certificates of the private-upstream tests, generated
// for each test: a CA the gateway and the backend trust, another CA that
// neither trusts, server certificates for payments.internal signed by
// each, and client certificates signed by each. Some are also written to
// files in dir.
type privPKI struct {
	caPool, otherPool     *x509.CertPool
	server, serverOtherCA tls.Certificate
	client, clientOtherCA tls.Certificate
	caFile, certFile      string // PEM: the CA; the client's certificate
	keyFile, otherKeyFile string // PEM: the client's key; the other client's key
	otherCertFile, notPEM string // PEM: the other client's certificate; a file of no PEM
	missing               string // a path that does not exist
}

func privNewPKI(t testing.TB) *privPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := privIssue(t, "test CA", nil, nil, nil)
	other, otherKey := privIssue(t, "other CA", nil, nil, nil)
	serverTmpl := &x509.Certificate{
		DNSNames:    []string{"payments.internal"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	clientTmpl := &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	p := &privPKI{
		caPool:        x509.NewCertPool(),
		otherPool:     x509.NewCertPool(),
		server:        privPair(privIssue(t, "payments.internal", serverTmpl, ca, caKey)),
		serverOtherCA: privPair(privIssue(t, "payments.internal", serverTmpl, other, otherKey)),
		client:        privPair(privIssue(t, "gateway", clientTmpl, ca, caKey)),
		clientOtherCA: privPair(privIssue(t, "intruder", clientTmpl, other, otherKey)),
		caFile:        filepath.Join(dir, "ca.crt"),
		certFile:      filepath.Join(dir, "client.crt"),
		keyFile:       filepath.Join(dir, "client.key"),
		otherCertFile: filepath.Join(dir, "other.crt"),
		otherKeyFile:  filepath.Join(dir, "other.key"),
		notPEM:        filepath.Join(dir, "not.pem"),
		missing:       filepath.Join(dir, "missing.pem"),
	}
	p.caPool.AddCert(ca)
	p.otherPool.AddCert(other)
	privWrite(t, p.caFile, privCertPEM(ca.Raw))
	privWrite(t, p.certFile, privCertPEM(p.client.Certificate[0]))
	privWrite(t, p.keyFile, privKeyPEM(t, p.client.PrivateKey))
	privWrite(t, p.otherCertFile, privCertPEM(p.clientOtherCA.Certificate[0]))
	privWrite(t, p.otherKeyFile, privKeyPEM(t, p.clientOtherCA.PrivateKey))
	privWrite(t, p.notPEM, []byte("this is not PEM\n"))
	return p
}

// privIssue makes a certificate with common name cn from tmpl (nil: a CA),
// signed by parent (nil: self-signed).
func privIssue(t testing.TB, cn string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl == nil {
		tmpl = &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	} else {
		c := *tmpl
		tmpl = &c
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{CommonName: cn}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func privPair(cert *x509.Certificate, key *ecdsa.PrivateKey) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func privCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func privKeyPEM(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func privWrite(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// privLog collects log lines, from the gateway or a backend, and lets a
// test wait for one: a backend logs a failed handshake on its own
// goroutine, possibly after the gateway has answered.
type privLog struct {
	mu      sync.Mutex
	text    strings.Builder
	written chan struct{} // signalled on every write
}

func privNewLog() *privLog { return &privLog{written: make(chan struct{}, 1)} }

func (l *privLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.text.Write(p)
	l.mu.Unlock()
	select {
	case l.written <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *privLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// await fails t unless the log comes to hold s within 10s.
func (l *privLog) await(t *testing.T, s string) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for !strings.Contains(l.String(), s) {
		select {
		case <-l.written:
		case <-timeout.C:
			t.Fatalf("the log never said %q; it holds:\n%s", s, l)
		}
	}
}

// privSocket returns a unix socket listener in a fresh temporary directory.
func privSocket(t testing.TB) (net.Listener, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "b.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	return ln, sock
}

// privServe starts a backend on ln (nil: TCP on loopback), over TLS when
// tc is not nil, logging its errors to errLog. It is closed when the test
// ends.
func privServe(t testing.TB, ln net.Listener, tc *tls.Config, errLog io.Writer, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	if ln != nil {
		s.Listener.Close()
		s.Listener = ln
	}
	if errLog != nil {
		s.Config.ErrorLog = log.New(errLog, "backend: ", 0)
	}
	if tc != nil {
		s.TLS = tc
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// privTransport builds a private transport whose idle connections are
// closed when the test ends.
func privTransport(t testing.TB, cfg proxy.PrivateConfig) *proxy.PrivateTransport {
	t.Helper()
	tr, err := proxy.NewPrivateTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// privGateway serves everything from target through tr, logging to gwLog.
func privGateway(t testing.TB, target string, tr http.RoundTripper, gwLog io.Writer) *httptest.Server {
	t.Helper()
	up := newProxy(t, proxy.HTTPConfig{Targets: []string{target}, Transport: tr})
	return newGateway(t, gateway.Options{Logger: slog.New(slog.NewTextHandler(gwLog, nil))},
		gateway.Route{PathPrefix: "/", Handler: up})
}

func TestPrivateUnixSocket(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		method   string
		path     string
		body     string
		wantHost string
		wantURI  string
	}{
		{"path, query and header", "http://backend", "GET", "/a/b?x=1&y=%20", "", "backend", "/a/b?x=1&y=%20"},
		{"the target's port only names the Host field", "http://backend:9999", "GET", "/a", "", "backend:9999", "/a"},
		{"the target's base path", "http://payments/v1", "GET", "/charges/7?expand=1", "", "payments", "/v1/charges/7?expand=1"},
		{"request body", "http://backend", "POST", "/charges", `{"amount":7}`, "backend", "/charges"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, sock := privSocket(t)
			var rec recorder
			privServe(t, ln, nil, nil, rec.handler(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "got %q", b)
			}))
			gw := privGateway(t, tc.target, privTransport(t, proxy.PrivateConfig{UnixSocket: sock}), io.Discard)

			req, _ := http.NewRequest(tc.method, gw.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("X-Request-Id", "r-42")
			resp, body := do(t, gw.Client(), req)
			if resp.StatusCode != http.StatusOK || string(body) != fmt.Sprintf("got %q", tc.body) {
				t.Fatalf("reply %d %s, want 200 got %q", resp.StatusCode, body, tc.body)
			}
			r := rec.last(t)
			if r.Method != tc.method || r.Host != tc.wantHost || r.RequestURI != tc.wantURI {
				t.Errorf("backend got %s %s with Host %q, want %s %s with Host %q", r.Method, r.RequestURI, r.Host, tc.method, tc.wantURI, tc.wantHost)
			}
			if got := r.Header.Get("X-Request-Id"); got != "r-42" {
				t.Errorf("backend got X-Request-Id %q, want r-42", got)
			}
		})
	}
}

// TestPrivateNoClientChosenAddress: nothing a client sends decides where a
// request to a private upstream goes.
func TestPrivateNoClientChosenAddress(t *testing.T) {
	ln, sock := privSocket(t)
	var rec recorder
	var hits atomic.Int32
	privServe(t, ln, nil, nil, rec.handler(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://evil.example/loot", http.StatusFound)
		}
	}))
	gw := privGateway(t, "http://backend", privTransport(t, proxy.PrivateConfig{UnixSocket: sock}), io.Discard)

	t.Run("absolute-form request target", func(t *testing.T) {
		conn, err := net.Dial("tcp", gw.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET http://evil.example:8080/steal?x=1 HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := rec.last(t)
		if resp.StatusCode != http.StatusOK || r.Host != "backend" || r.RequestURI != "/steal?x=1" {
			t.Errorf("reply %d; backend got %s with Host %q, want 200 and /steal?x=1 with Host backend", resp.StatusCode, r.RequestURI, r.Host)
		}
	})
	t.Run("redirect passed back, not followed", func(t *testing.T) {
		hits.Store(0)
		c := gw.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		req, _ := http.NewRequest("GET", gw.URL+"/redirect", nil)
		resp, _ := do(t, c, req)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://evil.example/loot" {
			t.Errorf("reply %d Location %q, want 302 http://evil.example/loot", resp.StatusCode, resp.Header.Get("Location"))
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("backend got %d requests, want 1", n)
		}
	})
}

func TestPrivateSocketMissing(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nobody-listens.sock")
	gwLog := privNewLog()
	gw := privGateway(t, "http://backend", privTransport(t, proxy.PrivateConfig{UnixSocket: sock}), gwLog)
	resp, body := get(t, gw, "/")
	doc := checkProblem(t, resp, body, http.StatusBadGateway)
	if d, _ := doc["detail"].(string); strings.Contains(d, sock) {
		t.Errorf("detail %q names the socket", d)
	}
	gwLog.await(t, sock) // the cause is logged, not sent
}

func TestPrivateMTLS(t *testing.T) {
	p := privNewPKI(t)
	withClientCert := func(c proxy.PrivateConfig) proxy.PrivateConfig {
		c.ClientCert = &p.client
		return c
	}
	tests := []struct {
		name string
		// the backend: its certificate, and the highest TLS version it speaks
		// (0: TLS 1.3); it always requires a client certificate from p's CA.
		serverCert tls.Certificate
		serverMax  uint16
		unix       bool   // the backend listens on a unix socket, set as cfg.UnixSocket
		target     string // "{addr}" stands for the backend's TCP address
		cfg        proxy.PrivateConfig
		status     int
		// for 200, what the backend saw: the client's name and the protocol
		want string
		// for 502, what the gateway or the backend must log
		gwCause, backendCause string
	}{
		{
			name:       "right client certificate, from files",
			serverCert: p.server, target: "https://{addr}",
			cfg:    proxy.PrivateConfig{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, ServerName: "payments.internal"},
			status: 200, want: "gateway over HTTP/2.0",
		},
		{
			name:       "right client certificate, as values",
			serverCert: p.server, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "payments.internal"}),
			status: 200, want: "gateway over HTTP/2.0",
		},
		{
			name:       "client certificate from another CA",
			serverCert: p.server, target: "https://{addr}",
			cfg:    proxy.PrivateConfig{ClientCert: &p.clientOtherCA, RootCAs: p.caPool, ServerName: "payments.internal"},
			status: 502, backendCause: "certificate signed by unknown authority",
		},
		{
			name:       "no client certificate",
			serverCert: p.server, target: "https://{addr}",
			cfg:    proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "payments.internal"},
			status: 502, backendCause: "client didn't provide a certificate",
		},
		{
			name:       "server certificate not signed by RootCAs",
			serverCert: p.serverOtherCA, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "payments.internal"}),
			status: 502, gwCause: "certificate signed by unknown authority",
		},
		{
			name:       "only RootCAs are trusted, not other pools",
			serverCert: p.server, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.otherPool, ServerName: "payments.internal"}),
			status: 502, gwCause: "certificate signed by unknown authority",
		},
		{
			name:       "IP target without ServerName: hostname mismatch",
			serverCert: p.server, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool}),
			status: 502, gwCause: "cannot validate certificate for 127.0.0.1",
		},
		{
			name:       "ServerName the certificate does not name",
			serverCert: p.server, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "billing.internal"}),
			status: 502, gwCause: "certificate is valid for payments.internal, not billing.internal",
		},
		{
			name:       "default MinVersion accepts TLS 1.2",
			serverCert: p.server, serverMax: tls.VersionTLS12, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "payments.internal"}),
			status: 200, want: "gateway over HTTP/2.0",
		},
		{
			name:       "MinVersion TLS 1.3 refuses a TLS 1.2 server",
			serverCert: p.server, serverMax: tls.VersionTLS12, target: "https://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "payments.internal", MinVersion: tls.VersionTLS13}),
			status: 502, gwCause: "protocol version",
		},
		{
			name:       "http target with TLS settings refused",
			serverCert: p.server, target: "http://{addr}",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool, ServerName: "payments.internal"}),
			status: 502, gwCause: "refuses plain http",
		},
		{
			name:       "over a unix socket: ServerName from the target",
			serverCert: p.server, unix: true, target: "https://payments.internal",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool}),
			status: 200, want: "gateway over HTTP/2.0",
		},
		{
			name:       "over a unix socket: target host checked against the certificate",
			serverCert: p.server, unix: true, target: "https://billing.internal",
			cfg:    withClientCert(proxy.PrivateConfig{RootCAs: p.caPool}),
			status: 502, gwCause: "certificate is valid for payments.internal, not billing.internal",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ln net.Listener
			cfg := tc.cfg
			if tc.unix {
				ln, cfg.UnixSocket = privSocket(t)
			}
			backendLog, gwLog := privNewLog(), privNewLog()
			backend := privServe(t, ln, &tls.Config{
				Certificates: []tls.Certificate{tc.serverCert},
				ClientCAs:    p.caPool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
				MaxVersion:   tc.serverMax,
				NextProtos:   []string{"h2", "http/1.1"},
			}, backendLog, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s over %s", r.TLS.PeerCertificates[0].Subject.CommonName, r.Proto)
			})
			target := strings.ReplaceAll(tc.target, "{addr}", backend.Listener.Addr().String())
			gw := privGateway(t, target, privTransport(t, cfg), gwLog)

			resp, body := get(t, gw, "/")
			if tc.status == http.StatusOK {
				if resp.StatusCode != tc.status || string(body) != tc.want {
					t.Fatalf("reply %d %q, want 200 %q; gateway log:\n%s", resp.StatusCode, body, tc.want, gwLog)
				}
				return
			}
			checkProblem(t, resp, body, tc.status)
			if tc.gwCause != "" {
				gwLog.await(t, tc.gwCause)
			}
			if tc.backendCause != "" {
				backendLog.await(t, tc.backendCause)
			}
		})
	}
}

// TestPrivateTransportRefuses: requests a private transport refuses fail
// before anything is dialed, and their bodies are closed.
func TestPrivateTransportRefuses(t *testing.T) {
	ln, sock := privSocket(t)
	var hits atomic.Int32
	privServe(t, ln, nil, nil, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	plain := privTransport(t, proxy.PrivateConfig{UnixSocket: sock})
	withTLS := privTransport(t, proxy.PrivateConfig{UnixSocket: sock, RootCAs: x509.NewCertPool()})

	tests := []struct {
		name   string
		tr     *proxy.PrivateTransport
		method string
		url    string
		header http.Header
		want   string // in the error; "" for a reply
	}{
		{"plain request passes", plain, "GET", "http://backend/", nil, ""},
		{"CONNECT", plain, "CONNECT", "http://backend/", nil, "CONNECT"},
		{"h2c upgrade", plain, "GET", "http://backend/", http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}}, "h2c"},
		{"h2c among other upgrades", plain, "GET", "http://backend/", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"foo/2, H2C"}}, "h2c"},
		{"plain http with TLS settings", withTLS, "POST", "http://backend/", nil, "plain http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			body := &privBody{Reader: strings.NewReader("payload")}
			req, err := http.NewRequest(tc.method, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header
			if req.Header == nil {
				req.Header = http.Header{}
			}
			resp, err := tc.tr.RoundTrip(req)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if hits.Load() != 1 {
					t.Error("the backend was not reached")
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got a %d reply, want an error", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
			if !body.closed.Load() {
				t.Error("the request body was not closed")
			}
			if hits.Load() != 0 {
				t.Error("the backend was reached")
			}
		})
	}
}

// privBody is a request body that records being closed.
type privBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *privBody) Close() error { b.closed.Store(true); return nil }

func TestPrivateConfigErrors(t *testing.T) {
	p := privNewPKI(t)
	tests := []struct {
		name     string
		cfg      proxy.PrivateConfig
		want     string // in the error
		notExist bool   // errors.Is(err, fs.ErrNotExist)
	}{
		{"nothing private", proxy.PrivateConfig{}, "PrivateConfig: set UnixSocket", false},
		{"socket as a URL", proxy.PrivateConfig{UnixSocket: "unix:///run/b.sock"}, `PrivateConfig.UnixSocket "unix:///run/b.sock"`, false},
		{"missing certificate file", proxy.PrivateConfig{CertFile: p.missing, KeyFile: p.keyFile}, "PrivateConfig.CertFile/KeyFile: ", true},
		{"missing key file", proxy.PrivateConfig{CertFile: p.certFile, KeyFile: p.missing}, "PrivateConfig.CertFile/KeyFile: ", true},
		{"certificate without key", proxy.PrivateConfig{CertFile: p.certFile}, "PrivateConfig.CertFile/KeyFile: both", false},
		{"key without certificate", proxy.PrivateConfig{KeyFile: p.keyFile}, "PrivateConfig.CertFile/KeyFile: both", false},
		{"certificate file not PEM", proxy.PrivateConfig{CertFile: p.notPEM, KeyFile: p.keyFile}, "PrivateConfig.CertFile/KeyFile: tls: failed to find any PEM data", false},
		{"key file not PEM", proxy.PrivateConfig{CertFile: p.certFile, KeyFile: p.notPEM}, "PrivateConfig.CertFile/KeyFile: tls: failed to find any PEM data", false},
		{"key of another certificate", proxy.PrivateConfig{CertFile: p.certFile, KeyFile: p.otherKeyFile}, "PrivateConfig.CertFile/KeyFile: tls: private key does not match", false},
		{"ClientCert and files", proxy.PrivateConfig{ClientCert: &p.client, CertFile: p.certFile, KeyFile: p.keyFile}, "set ClientCert or CertFile and KeyFile, not both", false},
		{"ClientCert without key", proxy.PrivateConfig{ClientCert: &tls.Certificate{Certificate: p.client.Certificate}}, "PrivateConfig.ClientCert: ", false},
		{"missing CA file", proxy.PrivateConfig{CAFile: p.missing}, "PrivateConfig.CAFile: ", true},
		{"CA file not PEM", proxy.PrivateConfig{CAFile: p.notPEM}, "PrivateConfig.CAFile " + p.notPEM + ": no PEM certificate", false},
		{"RootCAs and CAFile", proxy.PrivateConfig{RootCAs: p.caPool, CAFile: p.caFile}, "set RootCAs or CAFile, not both", false},
		{"MinVersion TLS 1.0", proxy.PrivateConfig{UnixSocket: "/run/b.sock", MinVersion: tls.VersionTLS10}, "PrivateConfig.MinVersion TLS 1.0: below TLS 1.2", false},
		{"MinVersion TLS 1.1", proxy.PrivateConfig{RootCAs: p.caPool, MinVersion: tls.VersionTLS11}, "PrivateConfig.MinVersion TLS 1.1: below TLS 1.2", false},
		{"MinVersion unknown", proxy.PrivateConfig{MinVersion: 0x0305}, "PrivateConfig.MinVersion 0x0305: not a known TLS version", false},
		{"ServerName with port", proxy.PrivateConfig{ServerName: "payments.internal:443"}, `PrivateConfig.ServerName "payments.internal:443"`, false},
		{"ServerName as a URL", proxy.PrivateConfig{ServerName: "https://payments.internal"}, `PrivateConfig.ServerName "https://payments.internal"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := proxy.NewPrivateTransport(tc.cfg)
			if err == nil {
				tr.CloseIdleConnections()
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "proxy: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tc.notExist {
				t.Errorf("errors.Is(%q, fs.ErrNotExist) = %v, want %v", err, got, tc.notExist)
			}
		})
	}

	valid := []struct {
		name string
		cfg  proxy.PrivateConfig
	}{
		{"socket only", proxy.PrivateConfig{UnixSocket: "/run/b.sock"}},
		{"Linux abstract socket", proxy.PrivateConfig{UnixSocket: "@payments"}},
		{"MinVersion only", proxy.PrivateConfig{MinVersion: tls.VersionTLS13}},
		{"IPv6 ServerName", proxy.PrivateConfig{ServerName: "fd00::5"}},
		{"files", proxy.PrivateConfig{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile}},
		{"values", proxy.PrivateConfig{ClientCert: &p.client, RootCAs: p.caPool, DialTimeout: -1}},
	}
	for _, tc := range valid {
		t.Run("valid: "+tc.name, func(t *testing.T) {
			tr, err := proxy.NewPrivateTransport(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr.CloseIdleConnections()
		})
	}
}

// Client certificates and CA files are checked when the transport is
// built, so a mistake stops the gateway at start-up rather than failing
// every request.
func ExampleNewPrivateTransport() {
	_, err := proxy.NewPrivateTransport(proxy.PrivateConfig{
		CertFile:   "/nonexistent/gatekit/client.crt",
		KeyFile:    "/nonexistent/gatekit/client.key",
		ServerName: "payments.internal",
	})
	fmt.Println(errors.Is(err, fs.ErrNotExist))

	_, err = proxy.NewPrivateTransport(proxy.PrivateConfig{
		UnixSocket: "/run/payments.sock",
		MinVersion: tls.VersionTLS10,
	})
	fmt.Println(err)
	// Output:
	// true
	// proxy: PrivateConfig.MinVersion TLS 1.0: below TLS 1.2, which is the least accepted
}

// A backend that listens on a unix socket only: the target's host names
// the Host field, and the socket is dialed for every request.
func ExampleNewPrivateTransport_unixSocket() {
	dir, err := os.MkdirTemp("", "gatekit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "payments.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend got %s %s for Host %s\n", r.Method, r.URL.RequestURI(), r.Host)
	})}
	go backend.Serve(ln)
	defer backend.Close()

	tr, err := proxy.NewPrivateTransport(proxy.PrivateConfig{UnixSocket: sock})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	payments, err := proxy.HTTP(proxy.HTTPConfig{
		Targets:   []string{"http://payments"},
		Transport: tr,
	})
	if err != nil {
		log.Fatal(err)
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{PathPrefix: "/payments", Handler: payments},
	}})
	if err != nil {
		log.Fatal(err)
	}

	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, httptest.NewRequest("GET", "/payments/charges/7", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body)
	// Output:
	// 200
	// backend got GET /payments/charges/7 for Host payments
}
