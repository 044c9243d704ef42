package config

import (
	"crypto/x509"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Tracing is probes.yaml's tracing: block: export every run as OpenTelemetry
// spans over OTLP. Nil (no block) means off. What the block leaves out the
// standard OTEL_EXPORTER_OTLP_* variables provide (the exporters read them).
type Tracing struct {
	// Endpoint is the collector's base URL ("http://collector:4318" for
	// http, "http://collector:4317" for grpc); "" leaves it to
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	Protocol string // "http" (OTLP/HTTP protobuf, the default) or "grpc"
	// Headers are sent with every export, e.g. an API key; values may hold
	// secrets (resolved here, so never shown).
	Headers []TracingHeader
	// Insecure sends to an http:// or plaintext gRPC endpoint; with an
	// http:// Endpoint it is implied.
	Insecure bool
	CAFile   string // shown path, for messages
	CAPEM    []byte // extra roots to trust for the endpoint
	// Sampling is the share of runs exported (by trace id), 1 by default.
	Sampling float64
}

// TracingHeader is one export header; Value may be a secret.
type TracingHeader struct {
	Name, Value string
}

// tracing reads the tracing: block.
func (l *loader) tracing(f *file, n *yaml.Node, c *common, cfg *Config) {
	if n == nil {
		return
	}
	o := f.object(n, "tracing", []string{"endpoint", "protocol", "headers", "insecure", "ca_file", "sampling"})
	t := &Tracing{Protocol: "http", Sampling: 1}
	if v := o.get("endpoint"); v != nil {
		if s, ok := f.plain(v, "a URL", "tracing.endpoint cannot use {{...}}"); ok && s != "" && checkHTTPURL(f, v, s) {
			t.Endpoint = s
		}
	}
	if v := o.get("protocol"); v != nil {
		if s, ok := f.plain(v, "http or grpc", "tracing.protocol cannot use {{...}}"); ok {
			switch s {
			case "http", "grpc":
				t.Protocol = s
			default:
				f.errorf(v, "tracing.protocol must be http or grpc, got %s", quote(s))
			}
		}
	}
	if v := o.get("headers"); v != nil {
		t.Headers = l.tracingHeaders(f, v, c)
	}
	if v := o.get("insecure"); v != nil {
		t.Insecure, _ = f.boolean(v)
	}
	if v := o.get("ca_file"); v != nil {
		if p, ok := f.plain(v, "a file path", "tracing.ca_file cannot use {{...}}"); ok && p != "" {
			if shown, b, err := f.readFile(p); err != nil {
				f.errorf(v, "tracing.ca_file: %s", readError(err))
			} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
				f.errorf(v, "tracing.ca_file %s holds no PEM certificate", shown)
			} else {
				t.CAFile, t.CAPEM = shown, b
			}
		}
	}
	if v := o.get("sampling"); v != nil {
		if r, ok := f.ratio(v, "tracing.sampling"); ok {
			t.Sampling = r
		}
	}
	cfg.Tracing = t
}

// tracingHeaders reads name: value pairs whose values may hold
// {{secret:NAME}}: errors name the header, never its value.
func (l *loader) tracingHeaders(f *file, n *yaml.Node, c *common) []TracingHeader {
	var out []TracingHeader
	f.headerPairs(n, func(canon string, v *yaml.Node) {
		s, ok := l.secretString(f, v, "a header value", c)
		if !ok {
			return
		}
		if strings.ContainsAny(s, "\r\n") {
			f.errorf(v, "header %s: values cannot contain line breaks", canon)
			return
		}
		out = append(out, TracingHeader{Name: canon, Value: s})
	})
	return out
}
