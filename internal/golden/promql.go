package golden

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promcfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/config"
)

const (
	defaultPromTimeout = 10 * time.Second
	// maxPromBody bounds a response: an instant query for an alert is a few
	// series, and a runaway one must not take the daemon's memory.
	maxPromBody = 16 << 20
)

// NewPromQL queries a Prometheus-compatible API (/api/v1/query): NewQuerier
// over NewPromAPI(cfg).
func NewPromQL(cfg *config.Prometheus, logger *slog.Logger) (Querier, error) {
	a, err := NewPromAPI(cfg, logger)
	if err != nil {
		return nil, err
	}
	return NewQuerier(a, logger), nil
}

// NewPromAPI returns client_golang's API client for cfg: the bearer token
// file (re-read on every request, so a rotated token is picked up), basic
// auth, CA and timeout, with response bodies bounded. The same client
// serves promql rules (NewQuerier) and the rules' data in evaluate role
// (NewPromSource), which log to logger unless given their own.
func NewPromAPI(cfg *config.Prometheus, logger *slog.Logger) (v1.API, error) {
	if cfg == nil || cfg.URL == "" {
		return nil, errors.New("prometheus: no url")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus: url %q: want http(s)://host[:port][/path]", redactURL(cfg.URL))
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultPromTimeout
	}
	// Credentials and TLS are prometheus/common's HTTP client
	// configuration, as Prometheus's own remote clients use: the token file
	// is read at every request (a rotated token is picked up).
	hc := promcfg.HTTPClientConfig{
		FollowRedirects: true,
		EnableHTTP2:     true,
		ProxyConfig:     promcfg.ProxyConfig{ProxyFromEnvironment: true},
		TLSConfig:       promcfg.TLSConfig{CA: string(cfg.CAPEM), MinVersion: tls.VersionTLS12},
	}
	switch {
	case cfg.BearerTokenFile != "":
		// Read once here, so that a missing or empty file fails at start.
		tok, err := promcfg.NewFileSecret(cfg.BearerTokenFile).Fetch(context.Background())
		if err != nil {
			return nil, fmt.Errorf("prometheus: bearer token file: %w", err)
		}
		if tok == "" {
			return nil, fmt.Errorf("prometheus: bearer token file %s is empty", cfg.BearerTokenFile)
		}
		hc.Authorization = &promcfg.Authorization{Type: "Bearer", CredentialsFile: cfg.BearerTokenFile}
	case cfg.BasicAuthUser != "" || cfg.BasicAuthPass != "":
		hc.BasicAuth = &promcfg.BasicAuth{Username: cfg.BasicAuthUser, Password: promcfg.Secret(cfg.BasicAuthPass)}
	}
	if len(cfg.CAPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(cfg.CAPEM) {
		return nil, errors.New("prometheus: the CA holds no PEM certificate")
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	authRT, err := promcfg.NewRoundTripperFromConfig(hc, "prober_prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	rt := &boundedTransport{next: authRT}
	c, err := api.NewClient(api.Config{Address: cfg.URL, Client: &http.Client{Transport: rt, Timeout: timeout}})
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	return &promAPI{API: v1.NewAPI(c), where: u.Redacted(), timeout: timeout, log: logger}, nil
}

// promAPI is a v1.API that remembers where it points (for errors, without
// credentials), its timeout (sent to the server with each query) and its
// logger.
type promAPI struct {
	v1.API
	where   string
	timeout time.Duration
	log     *slog.Logger
}

// describe is where a points, its timeout and logger, for any v1.API: one
// not made by NewPromAPI (a test's, a caller's) is "prometheus" with the
// default timeout and no logger.
func describe(a v1.API) (string, time.Duration, *slog.Logger) {
	if p, ok := a.(*promAPI); ok {
		return p.where, p.timeout, p.log
	}
	return "prometheus", defaultPromTimeout, nil
}

// NewQuerier runs instant queries over a. Vectors become Samples (native
// histogram samples are skipped: they have no single value); a scalar is
// one Sample without labels; a range vector or string is an error.
// Warnings are logged. Errors say what was queried, and never carry
// credentials.
func NewQuerier(a v1.API, logger *slog.Logger) Querier {
	return newPromQL(a, logger)
}

func newPromQL(a v1.API, logger *slog.Logger) *promQL {
	where, timeout, l := describe(a)
	if logger == nil {
		logger = l
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &promQL{api: a, where: where, timeout: timeout, log: logger}
}

type promQL struct {
	api     v1.API
	where   string // the URL, for errors
	timeout time.Duration
	log     *slog.Logger
}

// Query runs an instant query at at (now when at is zero).
func (p *promQL) Query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	samples, err := p.query(ctx, q, at)
	if err != nil {
		return nil, p.wrap(q, err)
	}
	return samples, nil
}

func (p *promQL) wrap(q string, err error) error {
	return fmt.Errorf("querying %s for %q: %w", p.where, q, err)
}

func (p *promQL) query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	val, err := p.value(ctx, q, at)
	if err != nil {
		return nil, err
	}
	switch v := val.(type) {
	case model.Vector:
		out := make([]Sample, 0, len(v))
		skipped := 0
		for _, s := range v {
			if s == nil || s.Histogram != nil {
				skipped++
				continue
			}
			l := make(map[string]string, len(s.Metric))
			for k, val := range s.Metric {
				l[string(k)] = string(val)
			}
			out = append(out, Sample{Labels: l, Value: float64(s.Value)})
		}
		if skipped > 0 {
			p.log.Warn("promql_histograms_skipped", "query", q, "series", skipped,
				"note", "native histogram samples have no single value; use histogram_quantile or a rate")
		}
		return out, nil
	case *model.Scalar:
		return []Sample{{Value: float64(v.Value)}}, nil
	case model.Matrix:
		return nil, errors.New("the query returns a range vector; rules need an instant vector or a scalar")
	default:
		return nil, fmt.Errorf("unsupported result type %s", val.Type())
	}
}

// vector runs an instant query that must return an instant vector (the
// source's own queries), unwrapped: no copy into Samples. Errors are
// wrapped.
func (p *promQL) vector(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	val, err := p.value(ctx, q, at)
	if err != nil {
		return nil, p.wrap(q, err)
	}
	v, ok := val.(model.Vector)
	if !ok {
		return nil, p.wrap(q, fmt.Errorf("unexpected result type %s, want a vector", val.Type()))
	}
	return v, nil
}

func (p *promQL) value(ctx context.Context, q string, at time.Time) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if at.IsZero() {
		at = time.Now()
	}
	val, warnings, infos, err := p.api.Query(ctx, q, at, v1.WithTimeout(p.timeout))
	if err != nil {
		// Our deadline or the HTTP client's (the same length; either may
		// fire first).
		var ne net.Error
		if ctx.Err() == context.DeadlineExceeded || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, fmt.Errorf("no answer within %s: %w", p.timeout, err)
		}
		return nil, err
	}
	if len(warnings) > 0 {
		p.log.Warn("promql_warnings", "query", q, "warnings", strings.Join(warnings, "; "))
	}
	if len(infos) > 0 {
		p.log.Debug("promql_infos", "query", q, "infos", strings.Join(infos, "; "))
	}
	if val == nil {
		return nil, errors.New("no result in the response")
	}
	return val, nil
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// boundedTransport asks for JSON and bounds response bodies.
type boundedTransport struct{ next http.RoundTripper }

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change its request
	req.Header.Set("Accept", "application/json")
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxPromBody}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("response larger than %d MiB", maxPromBody>>20)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
