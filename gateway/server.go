package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Defaults of a Server; each is overridable by its field.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxHeaderCount    = 100
	DefaultMaxURIBytes       = 8 << 10
	DefaultShutdownTimeout   = 30 * time.Second
)

// A Server serves a gateway over HTTP or HTTPS with safe defaults: bounded
// time to read headers and bodies, bounded header size, idle connections
// closed, TLS 1.2 at least, and a graceful shutdown that finishes the
// requests in flight. The zero value with Addr and Handler set is ready.
type Server struct {
	// Addr is the TCP address to listen on, such as ":8080".
	Addr string
	// Handler serves requests, usually a *Router.
	Handler http.Handler

	// ReadHeaderTimeout bounds the time to read a request's header
	// (slowloris); 0 means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the time to read a whole request, body included;
	// 0 means DefaultReadTimeout, negative means none (for long uploads).
	// A request whose body is still arriving then is answered 408 and its
	// connection closed.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time to write a reply; 0 means none, so event
	// streams and long downloads are not cut. Upstream timeouts answer 504.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and header; 0 means
	// DefaultMaxHeaderBytes. Bodies are bounded per route (Options).
	MaxHeaderBytes int
	// MaxHeaderCount bounds the number of request header fields (431);
	// 0 means DefaultMaxHeaderCount, negative means no bound.
	MaxHeaderCount int
	// MaxURIBytes bounds the request target, path and query (414); 0
	// means DefaultMaxURIBytes, negative means no bound beyond
	// MaxHeaderBytes.
	MaxURIBytes int
	// LenientFraming turns off the check for ambiguously framed HTTP/1.x
	// requests (see the package documentation, "Request framing"). By
	// default a request with both Content-Length and Transfer-Encoding, an
	// HTTP/1.0 request with Transfer-Encoding, a folded header line or a
	// malformed chunked body is answered 400 and its connection closed,
	// with every request that follows it on that connection. Set it only
	// if no proxy in front of the gateway could be desynchronised by such
	// requests, to save the few nanoseconds per read the check costs.
	LenientFraming bool
	// LeanHTTP1 serves HTTP/1.x connections on gatekit's own connection
	// loop instead of net/http's: one goroutine per connection instead of
	// two while a request is served, and fewer allocations and system
	// calls per request (see the package documentation, "Lean HTTP/1.x").
	// Requests are parsed by net/http's parser and checked as net/http's
	// server checks them, and handlers see the same http.ResponseWriter
	// behaviour (Flush, Hijack, trailers, 1xx replies, ResponseController
	// deadlines and full duplex). The difference a handler can see: a
	// client that goes away while its request is served is noticed when
	// the reply is written, so the request's context is not cancelled
	// early. HTTP/2 connections are served by net/http's server as
	// before. Over TLS, ambiguous framing is always checked
	// (LenientFraming applies to plain HTTP only).
	LeanHTTP1 bool
	// ShutdownTimeout bounds how long a shutdown waits for requests in
	// flight before closing their connections; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Health, when set, is marked draining the moment a shutdown begins,
	// before anything else happens, so its readiness endpoint answers 503
	// and load balancers stop sending new requests.
	Health *Health
	// DrainDelay is how long the server goes on serving after a shutdown
	// began (Health marked draining) before it closes its listeners and
	// lets requests in flight finish. It gives load balancers that poll
	// readiness time to notice. 0, the default, means no delay: right
	// without a load balancer, or one told of the shutdown another way.
	// Behind one that polls (a Kubernetes Service: readiness probe), set a
	// few seconds, at least the probe period times its failure threshold.
	// During the delay each reply carries "Connection: close", so clients
	// with kept-alive connections reconnect, and are balanced elsewhere.
	// The delay comes on top of ShutdownTimeout.
	DrainDelay time.Duration

	// TLSConfig, when set, makes the server speak HTTPS. Its MinVersion is
	// raised to TLS 1.2 if lower. Certificates come from it or from
	// CertFile and KeyFile.
	TLSConfig *tls.Config
	// CertFile and KeyFile name a PEM certificate chain and key for HTTPS.
	CertFile, KeyFile string
	// ClientCAs, when set, turns on mutual TLS: every client must present a
	// certificate that chains to one of these roots.
	ClientCAs *x509.CertPool

	// Logger receives server errors; nil means slog.Default().
	Logger *slog.Logger
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	if v < 0 {
		return 0
	}
	return v
}

func (s *Server) httpServer(ups *upgrades) (*http.Server, error) {
	if s.Handler == nil {
		return nil, errors.New("gateway: Server.Handler is required")
	}
	log := s.logger()
	hs := &http.Server{
		Addr: s.Addr,
		Handler: &guard{
			next:       s.Handler,
			maxHeaders: orDefault(s.MaxHeaderCount, DefaultMaxHeaderCount),
			maxURI:     orDefault(s.MaxURIBytes, DefaultMaxURIBytes),
		},
		// "OPTIONS *" reaches the handler like any request, so that each
		// request on a connection is seen there, in order (the framing
		// check counts them). The router refuses it.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:                  orDefault(s.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:                 orDefault(s.WriteTimeout, 0),
		IdleTimeout:                  orDefault(s.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:               orDefault(s.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Envoy's edge recommendations; net/http allows 250 streams and
		// 1 MiB of receive window per stream.
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          100,
			MaxReceiveBufferPerStream:     64 << 10,
			MaxReceiveBufferPerConnection: 1 << 20,
		},
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), upgradesKey{}, ups)
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if scan := scanner(c); scan != nil {
				return context.WithValue(ctx, scannerKey{}, scan)
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateHijacked {
				if scan := scanner(c); scan != nil {
					scan.stop() // what follows (a WebSocket, say) is not HTTP/1.x
				}
			}
		},
	}
	if s.TLSConfig != nil || s.CertFile != "" || s.ClientCAs != nil {
		cfg := &tls.Config{}
		if s.TLSConfig != nil {
			cfg = s.TLSConfig.Clone()
		}
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
		if get := cfg.GetConfigForClient; get != nil {
			// A config chosen per client is held to the same minimum.
			cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				c, err := get(hello)
				if c != nil && c.MinVersion < tls.VersionTLS12 {
					c = c.Clone()
					c.MinVersion = tls.VersionTLS12
				}
				return c, err
			}
		}
		if s.CertFile != "" || s.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("gateway: Server.CertFile/KeyFile: %w", err)
			}
			cfg.Certificates = append(cfg.Certificates, cert)
		}
		if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
			return nil, errors.New("gateway: Server: TLS needs a certificate: set CertFile and KeyFile or TLSConfig.Certificates")
		}
		if s.ClientCAs != nil {
			cfg.ClientCAs = s.ClientCAs
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		hs.TLSConfig = cfg
	}
	return hs, nil
}

// ListenAndServe listens on Addr and serves until ctx is done, then shuts
// down gracefully. It returns nil after a clean shutdown.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	addr := s.Addr
	if addr == "" {
		addr = ":http"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves connections from ln until ctx is done. Then it marks Health
// draining, goes on serving for DrainDelay, stops accepting, lets requests
// in flight finish for up to ShutdownTimeout, closes what is left (and every
// connection upgraded to another protocol, such as a WebSocket), and
// returns. Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ups := new(upgrades)
	hs, err := s.httpServer(ups)
	if err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 2)
	var eng engine = hs
	switch {
	case s.LeanHTTP1 || testLeanHTTP1:
		lean := newLeanServer(hs, hs.BaseContext(ln), s.logger())
		eng = &leanEngine{lean, hs}
		var l net.Listener = ln
		var h2 *connQueue
		switch {
		case hs.TLSConfig != nil:
			// HTTP/2 connections go on to net/http's server.
			l = newTLSListener(ln, hs.TLSConfig.Clone(), handshakeTimeout(hs), hs.MaxHeaderBytes, s.logger())
			h2 = newConnQueue(ln.Addr())
			go func() {
				if err := hs.Serve(h2); !errors.Is(err, http.ErrServerClosed) {
					errc <- err
				}
			}()
		case !s.LenientFraming:
			l = checkedListener{ln, hs.MaxHeaderBytes}
		}
		go func() { errc <- lean.serve(l, h2) }()
	default:
		go func() {
			switch {
			case s.LenientFraming && hs.TLSConfig != nil:
				errc <- hs.ServeTLS(ln, "", "")
			case s.LenientFraming:
				errc <- hs.Serve(ln)
			case hs.TLSConfig != nil:
				// The handshake happens in the listener, so that HTTP/1.x is
				// checked after decryption; HTTP/2 is offered through ALPN
				// (hs.TLSConfig lists "h2", so Serve sets up its server).
				tl := newTLSListener(ln, hs.TLSConfig.Clone(), handshakeTimeout(hs), hs.MaxHeaderBytes, s.logger())
				errc <- hs.Serve(tl)
			default:
				errc <- hs.Serve(checkedListener{ln, hs.MaxHeaderBytes})
			}
		}()
	}
	select {
	case err := <-errc:
		eng.Close()
		return err
	case <-ctx.Done():
	}
	if s.Health != nil {
		s.Health.SetDraining(true)
	}
	if s.DrainDelay > 0 {
		hs.Handler.(*guard).draining.Store(true)
		t := time.NewTimer(s.DrainDelay)
		select {
		case <-t.C:
		case err := <-errc: // the server failed while draining
			t.Stop()
			eng.Close()
			ups.closeAll()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), orDefault(s.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	err = eng.Shutdown(sctx)
	// Requests have drained; connections switched to another protocol
	// (WebSockets) have no end the server could wait for, so they close now.
	ups.closeAll()
	if errors.Is(err, context.DeadlineExceeded) {
		eng.Close()
		err = fmt.Errorf("gateway: shutdown: requests still in flight after %v were cut: %w", orDefault(s.ShutdownTimeout, DefaultShutdownTimeout), err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// testLeanHTTP1 makes every Server lean, so that the package's tests run
// on both engines (GATEKIT_TEST_SERVER=lean); set only by a test file.
var testLeanHTTP1 bool

// handshakeTimeout bounds a TLS handshake as net/http does: the shortest
// of the read and write timeouts, and always some bound.
func handshakeTimeout(hs *http.Server) time.Duration {
	var timeout time.Duration
	for _, d := range []time.Duration{hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout} {
		if d > 0 && (timeout == 0 || d < timeout) {
			timeout = d
		}
	}
	if timeout == 0 {
		timeout = DefaultReadHeaderTimeout
	}
	return timeout
}

// engine is what serves a Server's connections: net/http's server, or the
// lean one with net/http's for HTTP/2.
type engine interface {
	Shutdown(context.Context) error
	Close() error
}

type leanEngine struct {
	lean *leanServer
	hs   *http.Server
}

func (e *leanEngine) Shutdown(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- e.hs.Shutdown(ctx) }()
	err := e.lean.Shutdown(ctx)
	if herr := <-errc; err == nil {
		err = herr
	}
	return err
}

func (e *leanEngine) Close() error {
	e.lean.Close()
	return e.hs.Close()
}

// check reports a configuration mistake without loading anything twice.
func (s *Server) check() error {
	if s.Handler == nil {
		return errors.New("gateway: Server.Handler is required")
	}
	return nil
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

type scannerKey struct{}

// guard is the server's first look at each request, before its handler:
// the framing verdict for the request's connection, and the limits that
// need no route. Its refusals close nothing but the request (and, for
// framing, the connection); they are not seen by a Router's observers.
type guard struct {
	next               http.Handler
	maxHeaders, maxURI int
	// draining is set during Server.DrainDelay: every reply then closes
	// its connection. (http.Server.SetKeepAlivesEnabled(false) would close
	// idle connections at once, including one whose next request net/http
	// has just read but not yet marked active: that request's handler
	// would run with its client gone.)
	draining atomic.Bool
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	if scan, ok := r.Context().Value(scannerKey{}).(*framingScanner); ok {
		if why := scan.next(); why != "" {
			w.Header().Set("Connection", "close")
			(&Error{Status: http.StatusBadRequest, Detail: "the request is ambiguously framed: " + why}).Write(w)
			return
		}
	}
	if g.maxURI > 0 && len(r.RequestURI) > g.maxURI {
		(&Error{Status: http.StatusRequestURITooLong, Detail: "the request target is longer than " + strconv.Itoa(g.maxURI) + " bytes"}).Write(w)
		return
	}
	if g.maxHeaders > 0 && len(r.Header) > 0 {
		n := 0
		for _, vs := range r.Header {
			n += len(vs)
		}
		if n > g.maxHeaders {
			(&Error{Status: http.StatusRequestHeaderFieldsTooLarge, Detail: "the request has more than " + strconv.Itoa(g.maxHeaders) + " header fields"}).Write(w)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}
