package shop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Sandbox runs a gateway and a shop on loopback listeners; what demo, tests
// and end-to-end tests use.
type Sandbox struct {
	ShopURL, GatewayURL string // "http://127.0.0.1:port"
	Faults              *Faults
	// The shop over HTTPS, beside ShopURL: its address (127.0.0.1:port),
	// its URL, the PEM of the CA that signed its certificate (made at
	// start-up, in memory: trust it to verify the shop) and the
	// certificate's not-after.
	TLSAddr, ShopHTTPSURL string
	CAPEM                 []byte
	CertNotAfter          time.Time

	shop      *Shop
	shopSrv   *server
	tlsSrv    *server
	gwSrv     *server
	gwSpans   *spans
	traceExp  atomic.Pointer[sdktrace.SpanExporter]
	closeOnce sync.Once
	closeErr  error
}

// SandboxOptions configure StartSandbox.
type SandboxOptions struct {
	ShopAddr, GatewayAddr string        // default "127.0.0.1:0"
	TLSAddr               string        // the shop over HTTPS; default "127.0.0.1:0"
	CertValidity          time.Duration // of the HTTPS certificate from start-up; default DefaultCertValidity (10 days)
	Password              string        // required
	SettleDelay           time.Duration // default 300ms
	Log                   io.Writer     // JSON logs of both services (nil = discard); lines carry "service"
	// Additions to the brief, so tests need not wait for production defaults:
	User           string        // default "synthetic-1"
	GatewayTimeout time.Duration // shop -> gateway timeout; default 5s
}

// forcedCloseGrace bounds how long Close waits for handlers after it had to
// cancel them because the caller's context expired.
const forcedCloseGrace = 5 * time.Second

// server is one http.Server with what Close needs to stop it for good.
type server struct {
	srv      *http.Server
	cancel   context.CancelFunc // cancels every request context
	served   chan error         // result of Serve
	inflight atomic.Int64       // running handlers (Shutdown does not wait after a forced Close)
}

func newServer(l net.Listener, h http.Handler, log *slog.Logger) *server {
	base, cancel := context.WithCancel(context.Background())
	s := &server{cancel: cancel, served: make(chan error, 1)}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.inflight.Add(1)
			defer s.inflight.Add(-1)
			h.ServeHTTP(w, r)
		}),
		// Hostile-client limits: slowloris headers, endless bodies, idle pools.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute, // above any sane injected gateway delay
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	go func() { s.served <- s.srv.Serve(l) }()
	return s
}

// stop shuts the server down gracefully within ctx, then forcibly.
func (s *server) stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Out of patience: cancel request contexts (ends gateway sleeps and
		// in-flight gateway calls) and close every connection.
		s.cancel()
		_ = s.srv.Close()
	}
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	deadline := time.Now().Add(forcedCloseGrace)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			err = errors.Join(err, fmt.Errorf("%d handlers still running after close", s.inflight.Load()))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.cancel()
	return err
}

// StartSandbox starts the gateway and the shop. ctx bounds start-up only;
// stop the sandbox with Close.
func StartSandbox(ctx context.Context, o SandboxOptions) (*Sandbox, error) {
	if o.Password == "" {
		return nil, errors.New("shop: SandboxOptions.Password is required")
	}
	if o.ShopAddr == "" {
		o.ShopAddr = "127.0.0.1:0"
	}
	if o.GatewayAddr == "" {
		o.GatewayAddr = "127.0.0.1:0"
	}
	if o.TLSAddr == "" {
		o.TLSAddr = "127.0.0.1:0"
	}
	if o.CertValidity <= 0 {
		o.CertValidity = DefaultCertValidity
	}
	cert, err := newCertificate(time.Now(), o.CertValidity)
	if err != nil {
		return nil, err
	}
	// One handler for both services so concurrent lines never interleave:
	// slog handlers derived with With share the writer's mutex.
	var h slog.Handler = slog.DiscardHandler
	if o.Log != nil {
		h = slog.NewJSONHandler(o.Log, nil)
	}
	logger := slog.New(h)

	var lc net.ListenConfig
	gl, err := lc.Listen(ctx, "tcp", o.GatewayAddr)
	if err != nil {
		return nil, fmt.Errorf("shop: gateway listener: %w", err)
	}
	sl, err := lc.Listen(ctx, "tcp", o.ShopAddr)
	if err != nil {
		_ = gl.Close()
		return nil, fmt.Errorf("shop: shop listener: %w", err)
	}
	tl, err := lc.Listen(ctx, "tcp", o.TLSAddr)
	if err != nil {
		_ = gl.Close()
		_ = sl.Close()
		return nil, fmt.Errorf("shop: HTTPS listener: %w", err)
	}
	faults := NewFaults()
	gatewayURL := "http://" + gl.Addr().String()
	sh, err := New(Options{
		User: o.User, Password: o.Password, SettleDelay: o.SettleDelay,
		GatewayURL: gatewayURL, Logger: logger, Faults: faults, GatewayTimeout: o.GatewayTimeout,
	})
	if err != nil {
		_ = gl.Close()
		_ = sl.Close()
		_ = tl.Close()
		return nil, err
	}
	shopLog := logger.With("service", "shop")
	gwSpans := &spans{}
	return &Sandbox{
		ShopURL:      "http://" + sl.Addr().String(),
		GatewayURL:   gatewayURL,
		Faults:       faults,
		TLSAddr:      tl.Addr().String(),
		ShopHTTPSURL: "https://" + tl.Addr().String(),
		CAPEM:        cert.caPEM,
		CertNotAfter: cert.notAfter,
		shop:         sh,
		gwSpans:      gwSpans,
		gwSrv:        newServer(gl, newGateway(faults, logger, gwSpans), logger.With("service", "gateway")),
		shopSrv:      newServer(sl, sh.Handler(), shopLog),
		// The same shop, over TLS: what a certificate check watches.
		tlsSrv: newServer(tls.NewListener(tl, &tls.Config{Certificates: []tls.Certificate{cert.leaf}, MinVersion: tls.VersionTLS12}),
			sh.Handler(), shopLog),
	}, nil
}

// Close shuts both servers down gracefully within ctx (forcibly after it)
// and waits for their goroutines. Safe to call more than once.
func (s *Sandbox) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		// Shop first: its in-flight payments still need the gateway.
		err := errors.Join(s.shopSrv.stop(ctx), s.tlsSrv.stop(ctx))
		err = errors.Join(err, s.gwSrv.stop(ctx))
		s.shop.Close()
		err = errors.Join(err, s.stopTracing(ctx))
		s.closeErr = err
	})
	return s.closeErr
}

// Trace makes the shop and its gateway export OpenTelemetry spans through
// exp, as the services "sandbox-shop" and "sandbox-gateway": a server span
// per request under the caller's traceparent, a client span per gateway
// call, and the gateway errors the shop hides recorded on its span. Off
// until called; a second call is ignored. Close flushes the spans and shuts
// exp down. Safe to call while serving.
func (s *Sandbox) Trace(exp sdktrace.SpanExporter) {
	if !s.traceExp.CompareAndSwap(nil, &exp) {
		return
	}
	shared := nopShutdown{exp}
	s.gwSpans.on(shared, serviceGateway)
	s.shop.spans.on(shared, serviceShop)
}

// stopTracing exports the queued spans within ctx and shuts the exporter.
func (s *Sandbox) stopTracing(ctx context.Context) error {
	exp := s.traceExp.Load()
	if exp == nil {
		return nil
	}
	err := errors.Join(s.shop.spans.shutdown(ctx), s.gwSpans.shutdown(ctx))
	if serr := (*exp).Shutdown(ctx); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shop: flushing spans: %w", err)
	}
	return nil
}
