package shop

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseTraceparent(t *testing.T) {
	const tid, pid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name   string
		in     string
		ok     bool
		sample byte
	}{
		{"valid sampled", "00-" + tid + "-" + pid + "-01", true, 1},
		{"valid unsampled", "00-" + tid + "-" + pid + "-00", true, 0},
		{"future version with extra field", "cc-" + tid + "-" + pid + "-01-what-the-future-holds", true, 1},
		{"future version exact length", "01-" + tid + "-" + pid + "-09", true, 9},
		{"future version bad extension", "cc-" + tid + "-" + pid + "-01x", false, 0},
		{"version ff forbidden", "ff-" + tid + "-" + pid + "-01", false, 0},
		{"version 00 with trailing data", "00-" + tid + "-" + pid + "-01-00", false, 0},
		{"uppercase hex", "00-" + strings.ToUpper(tid) + "-" + pid + "-01", false, 0},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-" + pid + "-01", false, 0},
		{"zero parent id", "00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false, 0},
		{"short trace id", "00-" + tid[:31] + "-" + pid + "-01", false, 0},
		{"bad separator", "00_" + tid + "-" + pid + "-01", false, 0},
		{"non-hex flags", "00-" + tid + "-" + pid + "-0g", false, 0},
		{"empty", "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotT, gotP, flags, ok := parseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (gotT != tid || gotP != pid || flags != tt.sample) {
				t.Fatalf("got %s %s %x", gotT, gotP, flags)
			}
		})
	}
}

func TestNewTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h := http.Header{}
	h.Set("traceparent", tp)
	h.Add("tracestate", "prober=run-1")
	h.Add("tracestate", "vendor=x")
	tc := newTraceContext(h)
	if tc.generated || tc.traceID != "4bf92f3577b34da6a3ce929d0e0e4736" || tc.parentSpanID != "00f067aa0ba902b7" {
		t.Fatalf("unexpected %+v", tc)
	}
	if tc.spanID == tc.parentSpanID || len(tc.spanID) != 16 {
		t.Fatalf("own span id %q must be fresh", tc.spanID)
	}
	if tc.tracestate != "prober=run-1,vendor=x" {
		t.Fatalf("tracestate %q", tc.tracestate)
	}
	if got := tc.traceparent(); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-"+tc.spanID+"-01" {
		t.Fatalf("outbound traceparent %q", got)
	}

	// Two traceparent headers are invalid: a fresh trace starts.
	h.Add("traceparent", tp)
	tc = newTraceContext(h)
	if !tc.generated || tc.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" || tc.tracestate != "" {
		t.Fatalf("duplicate traceparent accepted: %+v", tc)
	}
}

func TestIsSynthetic(t *testing.T) {
	tests := []struct {
		name string
		hdr  map[string][]string
		want bool
	}{
		{"none", nil, false},
		{"header", map[string][]string{"X-Prober-Synthetic": {"1"}}, true},
		{"tracestate member", map[string][]string{"Tracestate": {"congo=t61rcWkgMzE, prober=check-1"}}, true},
		{"tracestate second header", map[string][]string{"Tracestate": {"a=b", "prober=x"}}, true},
		{"tracestate other vendor", map[string][]string{"Tracestate": {"notprober=1,proberx=2"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isSynthetic(http.Header(tt.hdr)); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	var fs FaultSet
	if err := json.Unmarshal([]byte(`{"gateway_delay":"1.5s","retry_after":2000000000}`), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.GatewayDelay != Duration(1500*time.Millisecond) || fs.RetryAfter != Duration(2*time.Second) {
		t.Fatalf("got %+v", fs)
	}
	out, _ := json.Marshal(fs)
	if string(out) != `{"gateway_delay":"1.5s","retry_after":"2s"}` {
		t.Fatalf("marshal: %s", out)
	}
	if out, _ := json.Marshal(FaultSet{}); string(out) != `{}` {
		t.Fatalf("zero set marshals as %s", out)
	}
	for _, bad := range []string{`{"gateway_delay":"2 seconds"}`, `{"gateway_delay":1.5}`, `{"gateway_delay":true}`} {
		if err := json.Unmarshal([]byte(bad), &fs); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestFaultsEffective(t *testing.T) {
	now := time.Now() // real time: Snapshot filters expired sets by the clock
	f := NewFaults()
	f.Set("", FaultSet{GatewayDelay: Duration(time.Second), SwallowErrors: true})
	f.Set("b", FaultSet{GatewayStatus: 504, GatewayDelay: Duration(3 * time.Second)})
	f.Set("c", FaultSet{GatewayStatus: 429, Until: now.Add(30 * time.Second)})

	tests := []struct {
		name   string
		region string
		at     time.Time
		want   FaultSet
	}{
		{"no region gets the all set", "", now, FaultSet{GatewayDelay: Duration(time.Second), SwallowErrors: true}},
		{"unknown region gets the all set", "a", now, FaultSet{GatewayDelay: Duration(time.Second), SwallowErrors: true}},
		{"region fields win, others inherited", "b", now, FaultSet{GatewayStatus: 504, GatewayDelay: Duration(3 * time.Second), SwallowErrors: true}},
		{"window active", "c", now.Add(29 * time.Second), FaultSet{GatewayStatus: 429, GatewayDelay: Duration(time.Second), SwallowErrors: true, Until: now.Add(30 * time.Second)}},
		{"window expired", "c", now.Add(30 * time.Second), FaultSet{GatewayDelay: Duration(time.Second), SwallowErrors: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Effective(tt.region, tt.at); got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	f.Clear("b")
	if _, ok := f.Snapshot()["b"]; ok {
		t.Fatal("Clear(b) left b")
	}
	if len(f.Snapshot()) != 2 {
		t.Fatalf("snapshot %v", f.Snapshot())
	}
	f.Clear("")
	if len(f.Snapshot()) != 0 {
		t.Fatalf("Clear(\"\") left %v", f.Snapshot())
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"missing password", Options{GatewayURL: "http://127.0.0.1:1"}},
		{"missing gateway", Options{Password: "x"}},
		{"relative gateway", Options{Password: "x", GatewayURL: "/v1"}},
		{"negative settle", Options{Password: "x", GatewayURL: "http://127.0.0.1:1", SettleDelay: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := StartSandbox(t.Context(), SandboxOptions{}); err == nil {
		t.Fatal("StartSandbox without password accepted")
	}
}

// TestBlipRateFraction checks that a fractional rate blips roughly that share,
// reproducibly thanks to the seeded Rand.
func TestBlipRateFraction(t *testing.T) {
	f := NewFaults()
	f.Set("", FaultSet{BlipRate: 0.3})
	s, err := New(Options{Password: "x", GatewayURL: "http://127.0.0.1:1", Faults: f, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blips := 0
	for range 1000 {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/orders/ord_x", nil))
		switch rec.Code {
		case http.StatusServiceUnavailable:
			blips++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("unexpected %d", rec.Code)
		}
	}
	if blips < 240 || blips > 360 {
		t.Fatalf("%d blips of 1000 at rate 0.3", blips)
	}
}

// TestGatewayRequestHeaders checks exactly what the shop sends the gateway.
func TestGatewayRequestHeaders(t *testing.T) {
	got := make(chan *http.Request, 1)
	var body chargeRequest
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- r
		writeJSON(w, 200, map[string]string{"id": "ch_1", "status": "succeeded"})
	}))
	defer gw.Close()
	s, err := New(Options{Password: testPassword, GatewayURL: gw.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	c := newClient(t, srv.URL)
	c.login()
	id := c.createOrder()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := c.expect(c.pay(id, map[string]string{
		"traceparent": tp, "tracestate": "prober=check-7,vendor=v", "X-Prober-Region": "b", "Idempotency-Key": "k-1",
	}), 200)
	if r.body["payment_id"] != "ch_1" {
		t.Fatalf("body %v", r.body)
	}
	req := <-got
	if req.URL.Path != "/v1/charges" || req.Method != "POST" {
		t.Fatalf("%s %s", req.Method, req.URL.Path)
	}
	tid, pid, _, ok := parseTraceparent(req.Header.Get("traceparent"))
	if !ok || tid != "4bf92f3577b34da6a3ce929d0e0e4736" || pid == "00f067aa0ba902b7" {
		t.Fatalf("traceparent to gateway %q: want same trace, new span", req.Header.Get("traceparent"))
	}
	for h, want := range map[string]string{
		"Tracestate": "prober=check-7,vendor=v", "X-Prober-Region": "b", "Idempotency-Key": "k-1",
	} {
		if v := req.Header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	if body != (chargeRequest{AmountCents: 1999, Currency: "EUR", Card: "4242424242424242", OrderID: id}) {
		t.Errorf("charge body %+v", body)
	}
}
