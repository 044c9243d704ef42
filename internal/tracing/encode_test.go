package tracing

import (
	"math"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// TestEncoder: a span written by the encoder, every kind of field in it,
// decodes as the tracepb message that says the same.
func TestEncoder(t *testing.T) {
	tid := []byte("0123456789abcdef")
	sid, parent, ltid, lsid := []byte("span-id1"), []byte("parent-1"), []byte("fedcba9876543210"), []byte("linked-1")
	t0 := time.Unix(1_800_000_000, 123)
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	for _, tc := range []struct {
		name  string
		write func(e *encoder)
		want  *tracepb.Span
	}{
		{name: "every field", write: func(e *encoder) {
			e.begin("pay ü", sid, parent, tracepb.Span_SPAN_KIND_CLIENT, t0, t0.Add(time.Second))
			e.link(ltid, lsid, "prober.link", "retry_of")
			e.str("url.full", "http://shop/pay?key=[REDACTED]")
			e.str("empty", "")
			e.int("http.response.status_code", 503)
			e.int("negative", -1)
			e.int("big", math.MaxInt64)
			e.boolean("prober.synthetic", true)
			e.boolean("prober.cleanup", false)
			e.beginEvent("first byte", t0.Add(time.Millisecond))
			e.evDouble("prober.duration_ms", 1.25)
			e.endEvent()
			e.beginEvent("connection reused", t0)
			e.endEvent()
			e.beginEvent("failure", t0.Add(time.Second))
			e.evStr("prober.failure", "status 503")
			e.evStr("prober.actual", "503")
			e.endEvent()
			e.status("status 503 (class http_5xx)")
			e.end()
		}, want: &tracepb.Span{TraceId: tid, SpanId: sid, ParentSpanId: parent, Name: "pay ü", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(t0.UnixNano()), EndTimeUnixNano: uint64(t0.Add(time.Second).UnixNano()),
			Attributes: []*commonpb.KeyValue{str("url.full", "http://shop/pay?key=[REDACTED]"), str("empty", ""),
				{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 503}}},
				{Key: "negative", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -1}}},
				{Key: "big", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: math.MaxInt64}}},
				{Key: "prober.synthetic", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
				{Key: "prober.cleanup", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}}},
			Events: []*tracepb.Span_Event{
				{TimeUnixNano: uint64(t0.Add(time.Millisecond).UnixNano()), Name: "first byte",
					Attributes: []*commonpb.KeyValue{{Key: "prober.duration_ms", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.25}}}}},
				{TimeUnixNano: uint64(t0.UnixNano()), Name: "connection reused"},
				{TimeUnixNano: uint64(t0.Add(time.Second).UnixNano()), Name: "failure",
					Attributes: []*commonpb.KeyValue{str("prober.failure", "status 503"), str("prober.actual", "503")}},
			},
			Links:  []*tracepb.Span_Link{{TraceId: ltid, SpanId: lsid, Attributes: []*commonpb.KeyValue{str("prober.link", "retry_of")}, Flags: 1}},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "status 503 (class http_5xx)"},
		}},
		{name: "a root, zero times", write: func(e *encoder) {
			e.begin("checkout", sid, nil, tracepb.Span_SPAN_KIND_INTERNAL, time.Time{}, time.Time{})
			e.end()
		}, want: &tracepb.Span{TraceId: tid, SpanId: sid, Name: "checkout", Kind: tracepb.Span_SPAN_KIND_INTERNAL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &encoder{tid: tid}
			e.begin("before", []byte("before-1"), nil, tracepb.Span_SPAN_KIND_INTERNAL, t0, t0)
			e.str("k", "v")
			e.end()
			tc.write(e)
			spans := e.spans()
			if len(spans) != 2 {
				t.Fatalf("%d spans, want 2", len(spans))
			}
			var got tracepb.Span
			if err := proto.Unmarshal(spans[1], &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.want, &got) {
				t.Errorf("decoded span\n%s\nwant\n%s", prototext.Format(&got), prototext.Format(tc.want))
			}
			if cap(spans[0]) != len(spans[0]) {
				t.Error("a span's encoding has room to grow into the next")
			}
		})
	}
}
