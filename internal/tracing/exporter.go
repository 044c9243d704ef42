package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"google.golang.org/grpc/credentials"

	"github.com/prober-dev/prober/internal/config"
)

// NewExporter returns the OTLP exporter that c describes. What c leaves
// out the exporter takes from OTEL_EXPORTER_OTLP_TRACES_* and
// OTEL_EXPORTER_OTLP_* (endpoint, headers, certificate, timeout): c wins.
// It does not connect: an endpoint that is down shows in the exports.
// It is the exporter's client, which sends OTLP messages: the Tracer
// writes them itself (see the package comment).
func NewExporter(_ context.Context, c *config.Tracing) (otlptrace.Client, error) {
	var tlsCfg *tls.Config
	if len(c.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(c.CAPEM)
		tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var headers map[string]string
	if len(c.Headers) > 0 {
		headers = make(map[string]string, len(c.Headers))
		for _, h := range c.Headers {
			headers[h.Name] = h.Value
		}
	}
	switch c.Protocol {
	case "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithTimeout(10 * time.Second)}
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		if c.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else if tlsCfg != nil {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if headers != nil {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		return otlptracegrpc.NewClient(opts...), nil
	case "http", "":
		opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(10 * time.Second)}
		if c.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(c.Endpoint)))
		}
		if c.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if tlsCfg != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		if headers != nil {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		return otlptracehttp.NewClient(opts...), nil
	}
	return nil, fmt.Errorf("tracing: unknown protocol %q (want http or grpc)", c.Protocol)
}

// tracesURL is the OTLP/HTTP traces URL of a base endpoint: like
// OTEL_EXPORTER_OTLP_ENDPOINT, a URL without a path gets /v1/traces.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || strings.Trim(u.Path, "/") != "" {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}
