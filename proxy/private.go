package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// PrivateConfig configures a PrivateTransport: how to reach a backend that
// is not on the public network, over a unix domain socket, over mutual TLS,
// or both (TLS over the socket). At least one of UnixSocket and the TLS
// fields must be set; every zero field means the documented default.
//
// Files are read once, by NewPrivateTransport. To rotate a certificate,
// build a new transport and upstream and swap the route table.
type PrivateConfig struct {
	// UnixSocket is the path of a unix domain socket to dial for every
	// request, whatever host the request names: the target's host, as in
	// "http://payments", then only sets the Host field (and, for an https
	// target, the default ServerName). Empty means TCP to the target's
	// host and port.
	UnixSocket string

	// ClientCert is the certificate chain and private key presented to an
	// https upstream that asks for one (mutual TLS). It is presented
	// whatever CAs the upstream says it accepts, so that an upstream that
	// rejects it can log why. At most one of ClientCert and CertFile may
	// be set.
	ClientCert *tls.Certificate
	// CertFile and KeyFile name the PEM files of the client certificate
	// chain and its private key, as for ClientCert.
	CertFile, KeyFile string

	// RootCAs, when set, are the only CAs trusted to sign the upstream's
	// certificate; the system's pool is not consulted. Nil means the
	// system's pool. At most one of RootCAs and CAFile may be set.
	RootCAs *x509.CertPool
	// CAFile names a PEM file of CA certificates, used as RootCAs.
	CAFile string

	// ServerName is sent as SNI and must be named by the upstream's
	// certificate. "" means the target's host, so it is needed when the
	// target is an IP address (https://10.0.0.5:8443) or a socket and the
	// certificate names a host.
	ServerName string

	// MinVersion is the lowest TLS version accepted: tls.VersionTLS12 or
	// tls.VersionTLS13. 0 means tls.VersionTLS12; lower versions are
	// refused by NewPrivateTransport.
	MinVersion uint16

	// DialTimeout bounds connecting, to the socket or over TCP; the TLS
	// handshake has 10s of its own. 0 means DefaultDialTimeout; a negative
	// value leaves it to the operating system. (HTTPConfig.DialTimeout does
	// not apply to a Transport given to HTTP.)
	DialTimeout time.Duration
}

// A PrivateTransport is an http.RoundTripper for private upstreams, built
// by NewPrivateTransport and given to HTTP as HTTPConfig.Transport:
//
//	tr, err := proxy.NewPrivateTransport(proxy.PrivateConfig{
//		CertFile: "/etc/gatekit/client.crt",
//		KeyFile:  "/etc/gatekit/client.key",
//		CAFile:   "/etc/gatekit/internal-ca.crt",
//	})
//	if err != nil {
//		return err
//	}
//	defer tr.CloseIdleConnections()
//	payments, err := proxy.HTTP(proxy.HTTPConfig{
//		Targets:   []string{"https://payments.internal"},
//		Transport: tr,
//	})
//
// Its connections are pooled like those of HTTP's own transport (256 idle
// per target, closed after 90s idle); it speaks HTTP/2 when a TLS upstream
// offers it, never h2c, and never adds an Accept-Encoding the client did
// not send. It is safe for concurrent use.
//
// A private upstream is never reached at an address a client chose.
// HTTPUpstream takes the scheme and host of every request from its
// Targets, never from the request: the client only supplies the path and
// query, and PreserveHost changes the Host field, not where the request
// goes nor the TLS server name. On top of that, a PrivateTransport:
//   - dials UnixSocket, when set, whatever host the request names;
//   - never uses a proxy from the environment (HTTP_PROXY and friends);
//   - never follows redirects, like every RoundTripper: a 3xx from the
//     backend goes back to the client as it is, Location included;
//   - refuses, before dialing, a CONNECT request (a tunnel to the backend,
//     or through it, would bypass the gateway) and a request asking for an
//     h2c upgrade (HTTPUpstream already drops one);
//   - refuses an http target when any TLS field is set, rather than send
//     in clear what was meant to go over mutual TLS.
//
// A refused request fails its round trip, which HTTPUpstream answers with
// 502; the cause goes to the gateway's log.
type PrivateTransport struct {
	rt      *http.Transport
	tlsOnly bool // a TLS field is set: only https goes out
}

var _ http.RoundTripper = (*PrivateTransport)(nil)

var (
	privErrConnect   = errors.New("proxy: a private transport does not send CONNECT requests")
	privErrH2C       = errors.New("proxy: a private transport does not send an h2c upgrade")
	privErrPlaintext = errors.New("proxy: a private transport with TLS settings refuses plain http; make the target https")
)

// NewPrivateTransport checks cfg, loads its files, and returns a transport
// that reaches the private upstream it describes. Its errors name the
// PrivateConfig field at fault.
func NewPrivateTransport(cfg PrivateConfig) (*PrivateTransport, error) {
	tlsOnly := cfg.ClientCert != nil || cfg.CertFile != "" || cfg.KeyFile != "" ||
		cfg.RootCAs != nil || cfg.CAFile != "" || cfg.ServerName != "" || cfg.MinVersion != 0
	if cfg.UnixSocket == "" && !tlsOnly {
		return nil, errors.New("proxy: PrivateConfig: set UnixSocket, the TLS fields, or both")
	}
	if strings.Contains(cfg.UnixSocket, "://") {
		return nil, fmt.Errorf("proxy: PrivateConfig.UnixSocket %q: must be a file path, not a URL", cfg.UnixSocket)
	}
	tc, err := privTLSConfig(&cfg)
	if err != nil {
		return nil, err
	}

	dial := cfg.DialTimeout
	if dial == 0 {
		dial = DefaultDialTimeout
	} else if dial < 0 {
		dial = 0
	}
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	dialContext := d.DialContext
	if sock := cfg.UnixSocket; sock != "" {
		dialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
	}
	return &PrivateTransport{
		tlsOnly: tlsOnly,
		rt: &http.Transport{
			Proxy:               nil, // never read HTTP_PROXY and friends
			DialContext:         dialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			// HTTP/2 over TLS only: Protocols is left nil, so never h2c.
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}, nil
}

// privTLSConfig builds the client TLS configuration of cfg, loading its
// files.
func privTLSConfig(cfg *PrivateConfig) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion: cfg.MinVersion,
		ServerName: cfg.ServerName,
		RootCAs:    cfg.RootCAs,
		// Resumption spares a full handshake, client certificate and all,
		// when a pooled connection is replaced.
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	switch {
	case tc.MinVersion == 0:
		tc.MinVersion = tls.VersionTLS12
	case tc.MinVersion < tls.VersionTLS12:
		return nil, fmt.Errorf("proxy: PrivateConfig.MinVersion %s: below TLS 1.2, which is the least accepted", tls.VersionName(tc.MinVersion))
	case tc.MinVersion > tls.VersionTLS13:
		return nil, fmt.Errorf("proxy: PrivateConfig.MinVersion %s: not a known TLS version", tls.VersionName(tc.MinVersion))
	}
	if s := cfg.ServerName; s != "" && net.ParseIP(s) == nil && strings.ContainsAny(s, ":/ ") {
		return nil, fmt.Errorf("proxy: PrivateConfig.ServerName %q: must be a host name or IP address, without port or scheme", s)
	}

	if cfg.CAFile != "" {
		if cfg.RootCAs != nil {
			return nil, errors.New("proxy: PrivateConfig: set RootCAs or CAFile, not both")
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("proxy: PrivateConfig.CAFile: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("proxy: PrivateConfig.CAFile %s: no PEM certificate in it", cfg.CAFile)
		}
	}

	cert := cfg.ClientCert
	switch {
	case cfg.CertFile != "" || cfg.KeyFile != "":
		if cert != nil {
			return nil, errors.New("proxy: PrivateConfig: set ClientCert or CertFile and KeyFile, not both")
		}
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, errors.New("proxy: PrivateConfig.CertFile/KeyFile: both are needed")
		}
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("proxy: PrivateConfig.CertFile/KeyFile: %w", err)
		}
		cert = &c
	case cert != nil && (len(cert.Certificate) == 0 || cert.PrivateKey == nil):
		return nil, errors.New("proxy: PrivateConfig.ClientCert: needs a certificate and its private key")
	}
	if cert != nil {
		// Certificates would send the certificate only when the upstream
		// lists its issuer among the CAs it accepts, and none otherwise:
		// the upstream could then only log "no certificate".
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	return tc, nil
}

// RoundTrip sends req to the private upstream, or refuses it (see
// PrivateTransport). Like every RoundTripper, it does not follow redirects.
func (t *PrivateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	switch {
	case req.Method == http.MethodConnect:
		err = privErrConnect
	case t.tlsOnly && req.URL.Scheme != "https":
		err = privErrPlaintext
	case hasTokenIn(req.Header, "Upgrade", "h2c"):
		err = privErrH2C
	default:
		return t.rt.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close() // a RoundTripper closes the body, even on error
	}
	return nil, err
}

// CloseIdleConnections closes the transport's idle connections; call it
// when the upstreams using it are retired (HTTPUpstream.Close leaves a
// Transport it was given alone). Requests in flight go on, and the
// transport stays usable.
func (t *PrivateTransport) CloseIdleConnections() {
	t.rt.CloseIdleConnections()
}
