package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/shop"
	"github.com/prober-dev/prober/internal/tracing"
)

// cmdShop serves the sandbox shop and its fake bank gateway, for trying flows
// and for end-to-end tests that run the shop as its own process.
func cmdShop(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("shop", flag.ContinueOnError)
	fl.SetOutput(stderr)
	listen := fl.String("listen", "127.0.0.1:8080", "shop listen address")
	gateway := fl.String("gateway-listen", "127.0.0.1:0", "fake bank gateway listen address")
	tlsListen := fl.String("tls-listen", "127.0.0.1:0", "the shop's HTTPS listen address (its certificate is made at start-up)")
	caFile := fl.String("ca-file", "", "write the PEM of the CA that signed the shop's HTTPS certificate here (for SHOP_CA_FILE)")
	settle := fl.Duration("settle-delay", 300*time.Millisecond, "time from payment to confirmed settlement")
	logPath := fl.String("log", "", "write the shop's and gateway's JSON logs here (default stdout)")
	if err := parse(fl, args); err != nil {
		return err
	}
	password := os.Getenv("SHOP_PASSWORD")
	if password == "" {
		return usageError{fmt.Errorf("shop: set SHOP_PASSWORD to the synthetic user's password")}
	}
	var logw io.Writer = stdout
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("opening the shop log: %w", err)
		}
		defer f.Close()
		logw = f
	}
	ctx, stop := signalContext(nil)
	defer stop()
	sb, err := shop.StartSandbox(ctx, shop.SandboxOptions{
		ShopAddr: *listen, GatewayAddr: *gateway, TLSAddr: *tlsListen, Password: password, SettleDelay: *settle, Log: logw,
	})
	if err != nil {
		return fmt.Errorf("starting the sandbox shop: %w", err)
	}
	// Spans only when an OTLP endpoint is configured the standard way.
	exp, err := shopExporter(ctx, os.Getenv)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return errors.Join(err, sb.Close(cctx))
	}
	if exp != nil {
		sb.Trace(exp)
	}
	if *caFile != "" {
		if err := os.WriteFile(*caFile, sb.CAPEM, 0o644); err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return errors.Join(fmt.Errorf("writing the shop's CA: %w", err), sb.Close(cctx))
		}
	}
	fmt.Fprintf(stderr, "sandbox shop at %s (HTTPS at %s, certificate valid until %s), bank gateway at %s; faults at %s/admin/faults; storefront at %[1]s/store/login\n",
		sb.ShopURL, sb.ShopHTTPSURL, sb.CertNotAfter.UTC().Format(time.RFC3339), sb.GatewayURL, sb.ShopURL)
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sb.Close(cctx)
}

// shopExporter is the OTLP exporter of the sandbox's spans when
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set
// (the exporter reads them, and the other OTEL_EXPORTER_OTLP_* variables,
// itself), with OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL's grpc or
// http/protobuf; nil when neither endpoint is set: tracing off.
func shopExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	c := &config.Tracing{Protocol: "http"}
	switch proto {
	case "", "http/protobuf":
	case "grpc":
		c.Protocol = "grpc"
	default:
		return nil, usageError{fmt.Errorf("shop: OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)}
	}
	exp, err := sandboxExporter(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("shop: %w", err)
	}
	return exp, nil
}

// sandboxExporter is the OpenTelemetry SDK exporter of the sandbox's
// spans, over the OTLP client that c describes (the prober's own spans
// skip the SDK's exporter; the shop's are made by the SDK).
func sandboxExporter(ctx context.Context, c *config.Tracing) (sdktrace.SpanExporter, error) {
	client, err := tracing.NewExporter(ctx, c)
	if err != nil {
		return nil, err
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: starting the OTLP exporter: %w", err)
	}
	return exp, nil
}
