// Command private runs a gatekit gateway on 127.0.0.1:8080 in front of two
// private backends that it starts in the same process: a ledger service on a
// unix socket (in a fresh temporary directory only this user can enter) and a
// payments service that only answers clients presenting a certificate of its
// own CA (mutual TLS). The CA, the payments server's certificate (for
// "payments.internal") and the gateway's client certificate are made at
// start-up and never written to disk.
//
//	go run ./examples/private
//	go run ./examples/private -addr 127.0.0.1:9000
//
// Try:
//
//	curl -i localhost:8080/ledger/entries/7      # over the unix socket
//	curl -i localhost:8080/payments/charges/ch_1 # over mutual TLS, the gateway's certificate
//	curl -i localhost:8080/ledger/entries/7 -H 'Host: payments.internal'    # still the socket
//	curl -i --request-target http://evil.example:6379/ledger/x localhost:8080 # still the socket
//	curl -i -p -x localhost:8080 http://127.0.0.1:6379/ # CONNECT tunnel: 404, no route
//	curl -ik https://127.0.0.1:PORT/charges/ch_1 # payments directly, no certificate: refused
//
// Where a request goes is fixed by the route's target and transport; the
// client supplies only the path and query, never a host, port or socket.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the gateway listens on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the gateway on ln until ctx is done, logging to out.
func run(ctx context.Context, ln net.Listener, out io.Writer) error {
	logger := slog.New(slog.NewTextHandler(out, nil))
	pki, err := newPKI()
	if err != nil {
		return err
	}

	// The ledger listens on a socket in a directory of mode 0700.
	dir, err := os.MkdirTemp("", "gatekit-private-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "ledger.sock")
	sockLn, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	stopLedger := serve(sockLn, logger, nil, func(r *http.Request) map[string]string {
		return map[string]string{"service": "ledger", "via": "unix socket", "host": r.Host, "uri": r.RequestURI}
	})
	defer stopLedger()

	// Payments requires a client certificate from the CA, over TLS 1.3.
	payLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stopPayments := serve(payLn, logger, &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.roots,
		MinVersion:   tls.VersionTLS13,
	}, func(r *http.Request) map[string]string {
		return map[string]string{"service": "payments", "via": "mutual TLS", "host": r.Host, "uri": r.RequestURI,
			"sni": r.TLS.ServerName, "client_cert": r.TLS.PeerCertificates[0].Subject.CommonName}
	})
	defer stopPayments()

	ledgerTr, err := proxy.NewPrivateTransport(proxy.PrivateConfig{UnixSocket: sock})
	if err != nil {
		return err
	}
	defer ledgerTr.CloseIdleConnections()
	// The target is an IP address, so ServerName says which name the
	// payments certificate must carry; RootCAs trusts only our CA.
	payTr, err := proxy.NewPrivateTransport(proxy.PrivateConfig{
		ClientCert: &pki.client,
		RootCAs:    pki.roots,
		ServerName: "payments.internal",
		MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		return err
	}
	defer payTr.CloseIdleConnections()

	ledger, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{"http://ledger"}, Transport: ledgerTr, StripPrefix: "/ledger", Logger: logger})
	if err != nil {
		return err
	}
	defer ledger.Close()
	payments, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{"https://" + payLn.Addr().String()}, Transport: payTr, StripPrefix: "/payments", Logger: logger})
	if err != nil {
		return err
	}
	defer payments.Close()

	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Logger: logger, RequestIDs: true, Observers: []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{Logger: logger})}},
		Routes: []gateway.Route{
			{Name: "ledger", PathPrefix: "/ledger", Handler: gateway.NewPipeline(ledger)},
			{Name: "payments", PathPrefix: "/payments", Handler: gateway.NewPipeline(payments)},
		},
	})
	if err != nil {
		return err
	}

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "gatekit private: gateway on %s\n  ledger   on unix:%s\n  payments on https://%s (mutual TLS, certificate for payments.internal)\n\nTry:\n", base, sock, payLn.Addr())
	for _, c := range []string{
		"curl -i " + base + "/ledger/entries/7",
		"curl -i " + base + "/payments/charges/ch_1",
		"curl -i " + base + "/ledger/entries/7 -H 'Host: payments.internal'",
		"curl -i --request-target http://evil.example:6379/ledger/x " + base,
		"curl -i -p -x " + base + " http://127.0.0.1:6379/",
		"curl -ik https://" + payLn.Addr().String() + "/charges/ch_1",
	} {
		fmt.Fprintln(out, "  "+c)
	}
	fmt.Fprintln(out, "\nCtrl-C stops it (in-flight requests finish first).")
	srv := &gateway.Server{Handler: router, Logger: logger}
	return srv.Serve(ctx, ln)
}

// serve serves a demo backend on ln, over TLS when tc is set, that answers
// every request with the JSON object reply makes of it. The function it
// returns stops the backend.
func serve(ln net.Listener, logger *slog.Logger, tc *tls.Config, reply func(*http.Request) map[string]string) func() {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(reply(r))
		}),
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         tc,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	go srv.Serve(ln)
	return func() { srv.Close() }
}
