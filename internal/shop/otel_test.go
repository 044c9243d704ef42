package shop

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// attr returns the value of key in kvs as a string ("" if absent).
func attr(kvs []attribute.KeyValue, key string) string {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// keep keeps the spans at Shutdown, which the in-memory exporter forgets.
type keep struct{ *tracetest.InMemoryExporter }

func (keep) Shutdown(context.Context) error { return nil }

func service(s tracetest.SpanStub) string {
	return attr(s.Resource.Attributes(), "service.name")
}

// TestSpansOfTheSwallow: with tracing on, a pay that the gateway fails with
// 504 and the shop swallows makes three spans in the caller's trace: the
// shop's server span under the received traceparent (with the log's ids),
// its gateway client span in error, the gateway's server span under that;
// and the shop's span records the swallowed 504 as an exception event.
func TestSpansOfTheSwallow(t *testing.T) {
	t.Parallel()
	sb, logs := startSandbox(t, SandboxOptions{})
	exp := tracetest.NewInMemoryExporter()
	sb.Trace(keep{exp})
	sb.Faults.Set("", FaultSet{GatewayStatus: 504, SwallowErrors: true})
	c := newClient(t, sb.ShopURL)
	c.login()
	id := c.createOrder()
	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r := c.expect(c.pay(id, map[string]string{
		"traceparent": "00-" + traceID + "-" + parent + "-01",
		"tracestate":  "prober=checkout",
	}), 200)
	if r.body["status"] != statusProcessing {
		t.Fatalf("pay answered %v", r.body)
	}
	shopLine := logs.find(t, map[string]any{"service": "shop", "msg": "request", "trace_id": traceID, "route": "POST /api/orders/{id}/pay"})
	gwLine := logs.find(t, map[string]any{"service": "gateway", "msg": "request", "trace_id": traceID})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sb.Close(ctx); err != nil { // flushes the spans
		t.Fatal(err)
	}

	var pay, call, gw *tracetest.SpanStub
	all := exp.GetSpans()
	for i := range all {
		s := &all[i]
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		switch {
		case s.Name == "POST /api/orders/{id}/pay" && s.SpanKind == trace.SpanKindServer:
			pay = s
		case s.SpanKind == trace.SpanKindClient:
			call = s
		case s.Name == "POST /v1/charges" && s.SpanKind == trace.SpanKindServer:
			gw = s
		}
	}
	if pay == nil || call == nil || gw == nil {
		t.Fatalf("spans of trace %s: pay %v, gateway call %v, gateway %v (of %d)", traceID, pay != nil, call != nil, gw != nil, len(all))
	}
	if got := pay.Parent.SpanID().String(); got != parent || !pay.Parent.IsRemote() {
		t.Errorf("pay span's parent %s, want the received %s", got, parent)
	}
	if got := pay.SpanContext.SpanID().String(); got != shopLine["local_span_id"] {
		t.Errorf("pay span id %s, the shop's log says local_span_id %v", got, shopLine["local_span_id"])
	}
	if got := pay.SpanContext.TraceState().Get("prober"); got != "checkout" {
		t.Errorf("pay span's tracestate prober=%q", got)
	}
	if call.Parent.SpanID() != pay.SpanContext.SpanID() {
		t.Errorf("gateway call's parent %s, want the pay span %s", call.Parent.SpanID(), pay.SpanContext.SpanID())
	}
	if gw.Parent.SpanID() != call.SpanContext.SpanID() || gwLine["span_id"] != call.SpanContext.SpanID().String() {
		t.Errorf("gateway span's parent %s (log: %v), want the call %s", gw.Parent.SpanID(), gwLine["span_id"], call.SpanContext.SpanID())
	}
	if gw.SpanContext.SpanID().String() != gwLine["local_span_id"] {
		t.Errorf("gateway span id %s, its log says %v", gw.SpanContext.SpanID(), gwLine["local_span_id"])
	}
	for _, tc := range []struct {
		s       *tracetest.SpanStub
		service string
		status  codes.Code
		attrs   map[string]string
	}{
		{pay, serviceShop, codes.Unset, map[string]string{
			"http.request.method": "POST", "http.route": "/api/orders/{id}/pay", "http.response.status_code": "200",
			"url.path": "/api/orders/" + id + "/pay", "shop.order.id": id, "shop.gateway.error_swallowed": "true",
			"shop.order.status": "processing", "shop.gateway.status_code": "504", "prober.synthetic": "true",
		}},
		{call, serviceShop, codes.Error, map[string]string{
			"http.request.method": "POST", "url.full": sb.GatewayURL + "/v1/charges", "http.response.status_code": "504",
			"error.type": "504", "server.address": "127.0.0.1",
		}},
		{gw, serviceGateway, codes.Error, map[string]string{
			"http.route": "/v1/charges", "http.response.status_code": "504", "error.type": "504", "shop.order.id": id,
		}},
	} {
		if got := service(*tc.s); got != tc.service {
			t.Errorf("%s: service.name %q, want %q", tc.s.Name, got, tc.service)
		}
		if tc.s.Status.Code != tc.status {
			t.Errorf("%s: status %v, want %v", tc.s.Name, tc.s.Status.Code, tc.status)
		}
		for k, want := range tc.attrs {
			if got := attr(tc.s.Attributes, k); got != want {
				t.Errorf("%s: %s = %q, want %q", tc.s.Name, k, got, want)
			}
		}
	}
	var swallowed bool
	for _, ev := range pay.Events {
		if ev.Name == "exception" && attr(ev.Attributes, "exception.type") == "shop.GatewayErrorSwallowed" {
			msg := attr(ev.Attributes, "exception.message")
			swallowed = strings.Contains(msg, "504") && strings.Contains(msg, `200 "processing"`)
			if !swallowed {
				t.Errorf("exception message %q", msg)
			}
		}
	}
	if !swallowed {
		t.Errorf("no swallowed-error exception on the pay span: %+v", pay.Events)
	}
}

// TestSpansOffByDefault: without Trace the shop makes no spans and sends
// the gateway its own local span id, as before; the access log is the same.
func TestSpansOffByDefault(t *testing.T) {
	t.Parallel()
	sb, logs := startSandbox(t, SandboxOptions{})
	if tr := sb.shop.spans.tracer(); tr != nil || sb.gwSpans.tracer() != nil {
		t.Fatal("tracing on without Trace")
	}
	c := newClient(t, sb.ShopURL)
	c.login()
	id := c.createOrder()
	const traceID = "1af7651916cd43dd8448eb211c80319c"
	c.expect(c.pay(id, map[string]string{"traceparent": "00-" + traceID + "-b7ad6b7169203331-01"}), 200)
	shopLine := logs.find(t, map[string]any{"service": "shop", "trace_id": traceID, "route": "POST /api/orders/{id}/pay"})
	gwLine := logs.find(t, map[string]any{"service": "gateway", "trace_id": traceID})
	if gwLine["span_id"] != shopLine["local_span_id"] {
		t.Errorf("gateway's parent %v, shop's span %v", gwLine["span_id"], shopLine["local_span_id"])
	}
}

// TestSpansGeneratedTrace: a request without traceparent gets a root server
// span whose trace id is the X-Trace-Id the shop answers with.
func TestSpansGeneratedTrace(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	exp := tracetest.NewInMemoryExporter()
	sb.Trace(keep{exp})
	c := newClient(t, sb.ShopURL)
	r := c.expect(c.do("GET", "/healthz", nil, nil), 200)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "GET /healthz" || s.Parent.IsValid() || s.SpanContext.TraceID().String() != r.hdr.Get("X-Trace-Id") {
		t.Errorf("span %s parent %v trace %s, X-Trace-Id %s", s.Name, s.Parent.IsValid(), s.SpanContext.TraceID(), r.hdr.Get("X-Trace-Id"))
	}
}

// TestSpansOfTheStorefrontSwallow: the storefront's payment (the return
// from the hosted page charges the card) marks a gateway failure on its
// server span as the API's pay does: an exception event, and when the
// failure is swallowed shop.gateway.error_swallowed=true, for the trace of
// a browser run shows what the confirmation page hid.
func TestSpansOfTheStorefrontSwallow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		swallow bool
		typ     string
		msg     string
	}{
		{"swallowed", true, "shop.GatewayErrorSwallowed", `the gateway 504 was turned into a confirmation page saying "processing"`},
		{"surfaced", false, "shop.GatewayError", "gateway answered 504"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, _ := startSandbox(t, SandboxOptions{})
			exp := tracetest.NewInMemoryExporter()
			sb.Trace(keep{exp})
			sb.Faults.Set("", FaultSet{GatewayStatus: 504, SwallowErrors: tc.swallow})
			b := newBrowserClient(t)
			hosted := checkout(t, b, sb)
			b.want(b.do("GET", hosted, nil), 200, "hosted page")
			back := b.want(b.do("POST", hosted, url.Values{"card": {"4242424242424242"}}), 303, "pay")
			const traceID = "5bf92f3577b34da6a3ce929d0e0e4736"
			b.want(b.do("GET", back.loc, nil, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"), 303, "return")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := sb.Close(ctx); err != nil { // flushes the spans
				t.Fatal(err)
			}
			var ret *tracetest.SpanStub
			all := exp.GetSpans()
			for i := range all {
				if s := &all[i]; s.SpanContext.TraceID().String() == traceID && s.SpanKind == trace.SpanKindServer && service(*s) == serviceShop {
					ret = s
				}
			}
			if ret == nil {
				t.Fatalf("no shop server span in trace %s (of %d spans)", traceID, len(all))
			}
			if got := attr(ret.Attributes, "http.route"); got != "/store/orders/{id}/return" {
				t.Errorf("server span's route %q", got)
			}
			if got, want := attr(ret.Attributes, "shop.gateway.error_swallowed"), map[bool]string{true: "true"}[tc.swallow]; got != want {
				t.Errorf("shop.gateway.error_swallowed = %q, want %q", got, want)
			}
			if got := attr(ret.Attributes, "shop.gateway.status_code"); got != "504" {
				t.Errorf("shop.gateway.status_code = %q", got)
			}
			var found bool
			for _, ev := range ret.Events {
				if ev.Name == "exception" && attr(ev.Attributes, "exception.type") == tc.typ {
					found = true
					if msg := attr(ev.Attributes, "exception.message"); !strings.Contains(msg, tc.msg) {
						t.Errorf("exception message %q, want it to say %q", msg, tc.msg)
					}
				}
			}
			if !found {
				t.Errorf("no %s exception event on %s: %+v", tc.typ, ret.Name, ret.Events)
			}
		})
	}
}

// TestSpansHonourSampledFlag: the shop and its gateway follow the sampled
// flag of the traceparent they receive: a prober run it does not export
// (flags 00) leaves no shop or gateway span in the backend, an orphan
// without its root; an exported one (01) has all three.
func TestSpansHonourSampledFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flags string
		spans int
	}{{"00", 0}, {"01", 3}} {
		t.Run(tc.flags, func(t *testing.T) {
			t.Parallel()
			sb, logs := startSandbox(t, SandboxOptions{})
			exp := tracetest.NewInMemoryExporter()
			sb.Trace(keep{exp})
			c := newClient(t, sb.ShopURL)
			c.login()
			id := c.createOrder()
			traceID := "6af7651916cd43dd8448eb211c8031" + tc.flags
			c.expect(c.pay(id, map[string]string{"traceparent": "00-" + traceID + "-b7ad6b7169203331-" + tc.flags}), 200)
			// The gateway was called in the same trace either way (logs).
			logs.find(t, map[string]any{"service": "gateway", "msg": "request", "trace_id": traceID})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := sb.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range exp.GetSpans() {
				if s.SpanContext.TraceID().String() == traceID {
					names = append(names, service(s)+" "+s.Name)
				}
			}
			if len(names) != tc.spans {
				t.Errorf("flags %s: %d spans exported in the trace %v, want %d", tc.flags, len(names), names, tc.spans)
			}
		})
	}
}
