package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestShopExporter: the shop exports spans only when an OTLP endpoint is
// set in the environment, over the protocol the environment names.
func TestShopExporter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string // the exporter's type, "" for none
		wantErr string
	}{
		{name: "off by default", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "http by default", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: "*otlptrace.Exporter"},
		{name: "traces endpoint, grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: "*otlptrace.Exporter"},
		{name: "unsupported protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, wantErr: "http/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := shopExporter(context.Background(), func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if exp != nil {
				got = fmt.Sprintf("%T", exp)
				_ = exp.Shutdown(context.Background())
			}
			if got != tc.want {
				t.Errorf("exporter %q, want %q", got, tc.want)
			}
		})
	}
}
