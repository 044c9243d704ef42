package shop

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

const payRoute = `route="POST /api/orders/{id}/pay"`

func waitStatus(t *testing.T, c *client, id, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := c.status(id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s still %q after %v, want %q", id, got, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCheckoutHappyPath(t *testing.T) {
	t.Parallel()
	sb, logs := startSandbox(t, SandboxOptions{SettleDelay: 100 * time.Millisecond})
	c := newClient(t, sb.ShopURL)

	c.expect(c.do("GET", "/healthz", nil, nil), 200)
	c.login()
	r := c.expect(c.do("POST", "/api/orders", map[string]any{"sku": "SENTINEL-SKU-1", "qty": 2}, nil), 201)
	id := r.body["id"].(string)
	if !strings.HasPrefix(id, "ord_") || r.body["status"] != "created" || r.body["amount_cents"] != 3998.0 ||
		r.body["currency"] != "EUR" || r.body["sku"] != "SENTINEL-SKU-1" || r.body["qty"] != 2.0 {
		t.Fatalf("create: %v", r.body)
	}
	r = c.expect(c.pay(id, nil), 200)
	if r.body["status"] != "success" || r.body["order_id"] != id || !strings.HasPrefix(r.body["payment_id"].(string), "ch_") {
		t.Fatalf("pay: %v", r.body)
	}
	payment := r.body["payment_id"]
	if s := c.status(id); s != "paid" && s != "confirmed" {
		t.Fatalf("after pay: %s", s)
	}
	waitStatus(t, c, id, "confirmed", 3*time.Second)
	r = c.expect(c.do("GET", "/api/orders/"+id, nil, nil), 200)
	if r.body["payment_id"] != payment {
		t.Fatalf("get: %v", r.body)
	}
	c.expect(c.pay(id, nil), 409) // already paid
	r = c.expect(c.do("DELETE", "/api/orders/"+id, nil, nil), 200)
	if r.body["status"] != "cancelled" || r.body["id"] != id {
		t.Fatalf("cancel: %v", r.body)
	}
	c.expect(c.do("DELETE", "/api/orders/"+id, nil, nil), 200) // idempotent
	if s := c.status(id); s != "cancelled" {
		t.Fatalf("after cancel: %s", s)
	}

	m := metrics(t, sb.ShopURL)
	wantMetric(t, m, `shop_http_requests_total{code="200",`+payRoute+`}`, 1)
	wantMetric(t, m, `shop_http_requests_total{code="409",`+payRoute+`}`, 1)
	wantMetric(t, m, `shop_http_requests_total{code="201",route="POST /api/orders"}`, 1)
	wantMetric(t, m, `shop_http_requests_total{code="200",route="DELETE /api/orders/{id}"}`, 2)
	wantMetric(t, m, `shop_http_request_duration_seconds_count{`+payRoute+`}`, 2)
	wantMetric(t, m, `shop_gateway_requests_total{outcome="success"}`, 1)
	wantMetric(t, m, `shop_gateway_requests_total{outcome="timeout"}`, 0) // pre-initialised
	wantMetric(t, m, `shop_gateway_request_duration_seconds_count{}`, 1)
	for k := range m {
		if strings.Contains(k, "ord_") {
			t.Errorf("raw path leaked into a label: %s", k)
		}
	}
	g := metrics(t, sb.GatewayURL)
	wantMetric(t, g, `gateway_charges_total{outcome="succeeded"}`, 1)
	wantMetric(t, g, `gateway_charges_total{outcome="fault"}`, 0)
	wantMetric(t, g, `gateway_http_requests_total{code="200",route="POST /v1/charges"}`, 1)

	logs.find(t, map[string]any{"service": "shop", "msg": "request", "route": "POST /api/orders/{id}/pay", "status": 200, "order_id": id})
	logs.find(t, map[string]any{"service": "gateway", "msg": "request", "route": "POST /v1/charges", "status": 200, "order_id": id})
}

func TestAPIValidation(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	auth := newClient(t, sb.ShopURL)
	auth.login()
	id := auth.createOrder()
	anon := newClient(t, sb.ShopURL)

	tests := []struct {
		name    string
		c       *client
		method  string
		path    string
		body    any
		code    int
		errCode string
	}{
		{"wrong password", anon, "POST", "/api/login", map[string]string{"user": defaultUser, "password": "nope"}, 401, "invalid_credentials"},
		{"wrong user", anon, "POST", "/api/login", map[string]string{"user": "someone", "password": testPassword}, 401, "invalid_credentials"},
		{"malformed login", anon, "POST", "/api/login", `{"user":`, 400, "invalid_json"},
		{"huge body", anon, "POST", "/api/login", `{"user":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large"},
		{"create without token", anon, "POST", "/api/orders", map[string]any{"sku": "SENTINEL-SKU-1", "qty": 1}, 401, "unauthorized"},
		{"get without token", anon, "GET", "/api/orders/" + id, nil, 401, "unauthorized"},
		{"qty zero", auth, "POST", "/api/orders", map[string]any{"sku": "SENTINEL-SKU-1", "qty": 0}, 422, "invalid_qty"},
		{"qty too big", auth, "POST", "/api/orders", map[string]any{"sku": "SENTINEL-SKU-1", "qty": 101}, 422, "invalid_qty"},
		{"unknown sku", auth, "POST", "/api/orders", map[string]any{"sku": "NOPE", "qty": 1}, 404, "unknown_sku"},
		{"unknown order", auth, "GET", "/api/orders/ord_missing", nil, 404, "order_not_found"},
		{"pay unknown order", auth, "POST", "/api/orders/ord_missing/pay", map[string]string{"card": "4242424242424242"}, 404, "order_not_found"},
		{"pay bad card", auth, "POST", "/api/orders/" + id + "/pay", map[string]string{"card": "42"}, 422, "invalid_card"},
		{"pay bad mode", auth, "POST", "/api/orders/" + id + "/pay", map[string]string{"card": "4242424242424242", "mode": "live"}, 422, "unsupported_mode"},
		{"unrouted path", anon, "GET", "/nope", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.do(tt.method, tt.path, tt.body, nil)
			if r.code != tt.code || (tt.errCode != "" && r.body["error"] != tt.errCode) {
				t.Fatalf("got %d %s, want %d %s", r.code, r.raw, tt.code, tt.errCode)
			}
		})
	}
	expired := newClient(t, sb.ShopURL)
	expired.token = "not-a-token"
	expired.expect(expired.do("GET", "/api/orders/"+id, nil, nil), 401)

	m := metrics(t, sb.ShopURL)
	wantMetric(t, m, `shop_http_requests_total{code="404",route="unmatched"}`, 1)
}

// TestGatewayFaults drives each gateway fault through a real checkout.
func TestGatewayFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		faults      FaultSet
		card        string
		wantCode    int
		wantGWCode  float64 // gateway_status in the shop's 502
		wantStatus  string  // order status afterwards
		outcome     string  // shop_gateway_requests_total outcome
		retryAfter  string
		logEvent    string
		gatewayHits float64 // gateway_charges_total{outcome="fault"}
	}{
		{name: "504", faults: FaultSet{GatewayStatus: 504}, wantCode: 502, wantGWCode: 504,
			wantStatus: "failed", outcome: "http_5xx", logEvent: "gateway_error", gatewayHits: 1},
		{name: "504 swallowed", faults: FaultSet{GatewayStatus: 504, SwallowErrors: true}, wantCode: 200,
			wantStatus: "processing", outcome: "http_5xx", logEvent: "gateway_error_swallowed", gatewayHits: 1},
		{name: "500", faults: FaultSet{GatewayStatus: 500}, wantCode: 502, wantGWCode: 500,
			wantStatus: "failed", outcome: "http_5xx", logEvent: "gateway_error", gatewayHits: 1},
		{name: "429 default retry-after", faults: FaultSet{GatewayStatus: 429}, wantCode: 502, wantGWCode: 429,
			wantStatus: "failed", outcome: "http_429", retryAfter: "1", logEvent: "gateway_error", gatewayHits: 1},
		{name: "429 retry-after rounded up", faults: FaultSet{GatewayStatus: 429, RetryAfter: Duration(2500 * time.Millisecond)},
			wantCode: 502, wantGWCode: 429, wantStatus: "failed", outcome: "http_429", retryAfter: "3", logEvent: "gateway_error", gatewayHits: 1},
		{name: "slow gateway times out", faults: FaultSet{GatewayDelay: Duration(3 * time.Second)}, wantCode: 502, wantGWCode: 0,
			wantStatus: "failed", outcome: "timeout", logEvent: "gateway_error"},
		{name: "slow gateway swallowed", faults: FaultSet{GatewayDelay: Duration(3 * time.Second), SwallowErrors: true}, wantCode: 200,
			wantStatus: "processing", outcome: "timeout", logEvent: "gateway_error_swallowed"},
		{name: "slow but within timeout", faults: FaultSet{GatewayDelay: Duration(50 * time.Millisecond)}, wantCode: 200,
			wantStatus: "confirmed", outcome: "success"},
		{name: "declined card", card: "4000000000000002", wantCode: 502, wantGWCode: 402,
			wantStatus: "failed", outcome: "http_4xx", logEvent: "gateway_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb, logs := startSandbox(t, SandboxOptions{GatewayTimeout: 300 * time.Millisecond})
			sb.Faults.Set("", tt.faults)
			c := newClient(t, sb.ShopURL)
			c.login()
			id := c.createOrder()
			card := tt.card
			if card == "" {
				card = "4242424242424242"
			}
			start := time.Now()
			r := c.do("POST", "/api/orders/"+id+"/pay", map[string]string{"card": card, "mode": "sandbox"}, nil)
			if r.code != tt.wantCode {
				t.Fatalf("pay: %d %s, want %d", r.code, r.raw, tt.wantCode)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("pay took %v; the shop's gateway timeout is 300ms", el)
			}
			switch tt.wantCode {
			case 502:
				if r.body["error"] != "payment_gateway_error" || r.body["gateway_status"] != tt.wantGWCode {
					t.Errorf("502 body %v", r.body)
				}
			case 200:
				if tt.wantStatus == "processing" && (r.body["status"] != "processing" || r.body["order_id"] != id) {
					t.Errorf("swallowed body %v", r.body)
				}
			}
			if got := r.hdr.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if tt.wantStatus == "confirmed" {
				waitStatus(t, c, id, "confirmed", 2*time.Second)
			} else {
				// Several settle delays later the order still has not moved:
				// a swallowed failure never confirms.
				time.Sleep(200 * time.Millisecond)
				if got := c.status(id); got != tt.wantStatus {
					t.Errorf("order status %q, want %q", got, tt.wantStatus)
				}
			}
			m := metrics(t, sb.ShopURL)
			wantMetric(t, m, fmt.Sprintf(`shop_gateway_requests_total{outcome=%q}`, tt.outcome), 1)
			// The point of the story: swallowed failures look like 200s.
			wantMetric(t, m, fmt.Sprintf(`shop_http_requests_total{code="%d",%s}`, tt.wantCode, payRoute), 1)
			if tt.gatewayHits > 0 {
				wantMetric(t, metrics(t, sb.GatewayURL), `gateway_charges_total{outcome="fault"}`, tt.gatewayHits)
			}
			if tt.logEvent != "" {
				level := map[string]string{"gateway_error": "ERROR", "gateway_error_swallowed": "WARN"}[tt.logEvent]
				line := logs.find(t, map[string]any{"service": "shop", "msg": tt.logEvent, "level": level, "order_id": id})
				if line["gateway_status"] != tt.wantGWCode && tt.wantCode == 502 {
					t.Errorf("event gateway_status %v", line["gateway_status"])
				}
				if s, _ := line["trace_id"].(string); len(s) != 32 {
					t.Errorf("event without trace id: %v", line)
				}
			}
		})
	}
}

// TestGateway429Direct checks the gateway itself sets Retry-After.
func TestGateway429Direct(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	sb.Faults.Set("", FaultSet{GatewayStatus: 429, RetryAfter: Duration(1200 * time.Millisecond)})
	g := newClient(t, sb.GatewayURL)
	r := g.expect(g.do("POST", "/v1/charges", chargeRequest{AmountCents: 1, Currency: "EUR", Card: "4242424242424242", OrderID: "o"}, nil), 429)
	if r.hdr.Get("Retry-After") != "2" || r.body["error"] != "rate_limited" {
		t.Fatalf("429: %v %v", r.hdr, r.body)
	}
}

func TestBlips(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{1.0, 0.0} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			t.Parallel()
			sb, _ := startSandbox(t, SandboxOptions{})
			c := newClient(t, sb.ShopURL)
			c.login()
			id := c.createOrder()
			// SwallowErrors keeps the set non-zero for rate 0.0 without
			// affecting anything the loop below touches.
			sb.Faults.Set("", FaultSet{BlipRate: rate, SwallowErrors: true})
			for range 20 {
				r := c.do("GET", "/api/orders/"+id, nil, nil)
				switch {
				case rate == 1 && (r.code != 503 || r.body["error"] != "transient"):
					t.Fatalf("rate 1: got %d %s", r.code, r.raw)
				case rate == 0 && r.code != 200:
					t.Fatalf("rate 0: got %d %s", r.code, r.raw)
				}
			}
			// Ops endpoints are never blipped.
			for _, p := range []string{"/healthz", "/metrics", "/admin/faults"} {
				c.expect(c.do("GET", p, nil, nil), 200)
			}
		})
	}
}

func TestResetConnections(t *testing.T) {
	t.Parallel()
	sb, logs := startSandbox(t, SandboxOptions{})
	sb.Faults.Set("", FaultSet{ResetConnections: true})
	c := newClient(t, sb.ShopURL)
	_, err := c.try("POST", "/api/login", map[string]string{"user": defaultUser, "password": testPassword}, nil)
	if err == nil {
		t.Fatal("request succeeded through reset_connections")
	}
	t.Logf("client error (expected): %v", err)
	c.expect(c.do("GET", "/healthz", nil, nil), 200)
	m := metrics(t, sb.ShopURL)
	wantMetric(t, m, `shop_http_requests_total{code="reset",route="POST /api/login"}`, 1)
	logs.find(t, map[string]any{"service": "shop", "route": "POST /api/login", "connection_reset": true})

	sb.Faults.Clear("")
	c.login() // healthy again
}

func TestRegionFaults(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	sb.Faults.Set("b", FaultSet{GatewayStatus: 504})
	tests := []struct {
		region string
		code   int
	}{
		{"b", 502},
		{"a", 200},
		{"", 200},
	}
	for _, tt := range tests {
		t.Run("region="+tt.region, func(t *testing.T) {
			c := newClient(t, sb.ShopURL)
			c.login()
			id := c.createOrder()
			hdr := map[string]string{}
			if tt.region != "" {
				hdr["X-Prober-Region"] = tt.region
			}
			r := c.pay(id, hdr)
			if r.code != tt.code {
				t.Fatalf("got %d %s, want %d", r.code, r.raw, tt.code)
			}
		})
	}
	// A shop-side region fault: blips only for region b.
	sb.Faults.Set("b", FaultSet{BlipRate: 1})
	c := newClient(t, sb.ShopURL)
	c.expect(c.do("POST", "/api/login", map[string]string{"user": defaultUser, "password": testPassword}, map[string]string{"X-Prober-Region": "b"}), 503)
	c.expect(c.do("POST", "/api/login", map[string]string{"user": defaultUser, "password": testPassword}, map[string]string{"X-Prober-Region": "c"}), 200)
}

func TestUntilExpiry(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	c := newClient(t, sb.ShopURL)
	r := c.expect(c.do("PUT", "/admin/faults", `{"gateway_status":504,"for":"400ms"}`, nil), 200)
	until, err := time.Parse(time.RFC3339Nano, r.body["all"].(map[string]any)["until"].(string))
	if err != nil || time.Until(until) > 400*time.Millisecond || time.Until(until) < 0 {
		t.Fatalf("until %v (%v)", until, err)
	}
	c.login()
	c.expect(c.pay(c.createOrder(), nil), 502)
	time.Sleep(time.Until(until) + 50*time.Millisecond)
	c.expect(c.pay(c.createOrder(), nil), 200)
	r = c.expect(c.do("GET", "/admin/faults", nil, nil), 200)
	if r.raw != `{"all":{},"regions":{}}`+"\n" {
		t.Fatalf("expired set still listed: %s", r.raw)
	}
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	c := newClient(t, sb.ShopURL)
	c.expect(c.do("GET", "/admin/faults", nil, nil), 200)

	steps := []struct {
		name    string
		method  string
		path    string
		body    string
		code    int
		wantRaw string // exact response body when set
		errCode string
	}{
		{"empty", "GET", "/admin/faults", "", 200, `{"all":{},"regions":{}}`, ""},
		{"set all", "PUT", "/admin/faults", `{"gateway_status":504,"swallow_errors":true,"gateway_delay":"1s"}`, 200,
			`{"all":{"gateway_status":504,"gateway_delay":"1s","swallow_errors":true},"regions":{}}`, ""},
		{"set region b, nanoseconds accepted", "PUT", "/admin/faults?region=b", `{"blip_rate":0.5,"retry_after":2000000000}`, 200,
			`{"all":{"gateway_status":504,"gateway_delay":"1s","swallow_errors":true},"regions":{"b":{"retry_after":"2s","blip_rate":0.5}}}`, ""},
		{"read back", "GET", "/admin/faults", "", 200,
			`{"all":{"gateway_status":504,"gateway_delay":"1s","swallow_errors":true},"regions":{"b":{"retry_after":"2s","blip_rate":0.5}}}`, ""},
		{"bad json", "PUT", "/admin/faults", `{"gateway_status":`, 400, "", "invalid_json"},
		{"empty body", "PUT", "/admin/faults", ``, 400, "", "invalid_json"},
		{"unknown field", "PUT", "/admin/faults", `{"gateway_staus":504}`, 400, "", "invalid_json"},
		{"trailing data", "PUT", "/admin/faults", `{} {}`, 400, "", "invalid_json"},
		{"bad duration", "PUT", "/admin/faults", `{"gateway_delay":"soon"}`, 400, "", "invalid_json"},
		{"bad status", "PUT", "/admin/faults", `{"gateway_status":200}`, 400, "", "invalid_fault_set"},
		{"bad blip rate", "PUT", "/admin/faults", `{"blip_rate":1.5}`, 400, "", "invalid_fault_set"},
		{"negative delay", "PUT", "/admin/faults", `{"gateway_delay":"-1s"}`, 400, "", "invalid_fault_set"},
		{"for and until", "PUT", "/admin/faults", `{"gateway_status":504,"for":"1s","until":"2030-01-01T00:00:00Z"}`, 400, "", "invalid_fault_set"},
		{"bad region", "PUT", "/admin/faults?region=a%20b", `{}`, 400, "", "invalid_region"},
		{"unchanged after bad input", "GET", "/admin/faults", "", 200,
			`{"all":{"gateway_status":504,"gateway_delay":"1s","swallow_errors":true},"regions":{"b":{"retry_after":"2s","blip_rate":0.5}}}`, ""},
		{"clear region b", "DELETE", "/admin/faults?region=b", "", 200,
			`{"all":{"gateway_status":504,"gateway_delay":"1s","swallow_errors":true},"regions":{}}`, ""},
		{"clear all", "DELETE", "/admin/faults", "", 200, `{"all":{},"regions":{}}`, ""},
	}
	for _, st := range steps {
		var body any
		if st.body != "" || st.method == "PUT" {
			body = st.body
		}
		r := c.do(st.method, st.path, body, nil)
		if r.code != st.code {
			t.Fatalf("%s: got %d %s, want %d", st.name, r.code, r.raw, st.code)
		}
		if st.wantRaw != "" && strings.TrimSpace(r.raw) != st.wantRaw {
			t.Fatalf("%s: body\n%s\nwant\n%s", st.name, r.raw, st.wantRaw)
		}
		if st.errCode != "" {
			if r.body["error"] != st.errCode || r.body["message"] == "" {
				t.Fatalf("%s: error body %s, want %s with a message", st.name, r.raw, st.errCode)
			}
		}
	}
	if len(sb.Faults.Snapshot()) != 0 {
		t.Fatalf("snapshot %v", sb.Faults.Snapshot())
	}
}

func TestTracePropagation(t *testing.T) {
	t.Parallel()
	sb, logs := startSandbox(t, SandboxOptions{})
	c := newClient(t, sb.ShopURL)
	c.login()
	id := c.createOrder()
	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r := c.expect(c.pay(id, map[string]string{
		"traceparent":     "00-" + traceID + "-" + parent + "-01",
		"tracestate":      "prober=checkout-eu",
		"X-Prober-Region": "b",
	}), 200)
	if r.hdr.Get("X-Trace-Id") != traceID {
		t.Errorf("X-Trace-Id %q", r.hdr.Get("X-Trace-Id"))
	}
	shopLine := logs.find(t, map[string]any{"service": "shop", "msg": "request", "trace_id": traceID})
	gwLine := logs.find(t, map[string]any{"service": "gateway", "msg": "request", "trace_id": traceID})
	for k, want := range map[string]any{
		"route": "POST /api/orders/{id}/pay", "path": "/api/orders/" + id + "/pay", "method": "POST", "status": 200.0,
		"span_id": parent, "trace_source": "traceparent", "region": "b", "synthetic": true, "order_id": id, "level": "INFO",
	} {
		if shopLine[k] != want {
			t.Errorf("shop line %s = %v, want %v", k, shopLine[k], want)
		}
	}
	if _, ok := shopLine["duration_ms"].(float64); !ok {
		t.Errorf("shop line without duration_ms: %v", shopLine)
	}
	// The gateway sees the shop's own span as its parent: a child span.
	if gwLine["span_id"] != shopLine["local_span_id"] || gwLine["span_id"] == parent {
		t.Errorf("gateway span_id %v, shop local span %v, received %s", gwLine["span_id"], shopLine["local_span_id"], parent)
	}
	for k, want := range map[string]any{"route": "POST /v1/charges", "region": "b", "synthetic": true, "order_id": id} {
		if gwLine[k] != want {
			t.Errorf("gateway line %s = %v, want %v", k, gwLine[k], want)
		}
	}

	// Without a valid traceparent a trace is generated, returned and still
	// shared with the gateway.
	id2 := c.createOrder()
	r = c.expect(c.pay(id2, map[string]string{"traceparent": "00-zzzz-bad-01"}), 200)
	gen := r.hdr.Get("X-Trace-Id")
	if len(gen) != 32 {
		t.Fatalf("generated trace id %q", gen)
	}
	l := logs.find(t, map[string]any{"service": "shop", "trace_id": gen, "order_id": id2})
	if l["trace_source"] != "generated" || l["synthetic"] != false {
		t.Errorf("generated line %v", l)
	}
	if _, has := l["span_id"]; has {
		t.Errorf("generated trace must not claim a received span: %v", l)
	}
	logs.find(t, map[string]any{"service": "gateway", "trace_id": gen, "trace_source": "traceparent"})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	sb, _ := startSandbox(t, SandboxOptions{})
	c := newClient(t, sb.ShopURL)
	c.login()
	id := c.createOrder()
	key := map[string]string{"Idempotency-Key": "pay-" + id}
	first := c.expect(c.pay(id, key), 200)
	second := c.expect(c.pay(id, key), 200)
	if first.body["payment_id"] != second.body["payment_id"] || second.hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %v second %v", first.body, second.body)
	}
	c.expect(c.pay(id, map[string]string{"Idempotency-Key": "other"}), 409) // a new key on a paid order
	wantMetric(t, metrics(t, sb.ShopURL), `shop_gateway_requests_total{outcome="success"}`, 1)
	wantMetric(t, metrics(t, sb.GatewayURL), `gateway_charges_total{outcome="succeeded"}`, 1)

	// A gateway failure is not remembered under the key: the retry after
	// the outage reaches the gateway and succeeds.
	id2 := c.createOrder()
	key2 := map[string]string{"Idempotency-Key": "pay-" + id2}
	sb.Faults.Set("", FaultSet{GatewayStatus: 504})
	c.expect(c.pay(id2, key2), 502)
	sb.Faults.Clear("")
	c.expect(c.pay(id2, key2), 200)

	// The gateway dedups by key on its own and rejects reuse for another charge.
	g := newClient(t, sb.GatewayURL)
	ch := chargeRequest{AmountCents: 100, Currency: "EUR", Card: "4242424242424242", OrderID: "ord_direct"}
	h := map[string]string{"Idempotency-Key": "direct-1"}
	a := g.expect(g.do("POST", "/v1/charges", ch, h), 200)
	b := g.expect(g.do("POST", "/v1/charges", ch, h), 200)
	if a.body["id"] != b.body["id"] {
		t.Fatalf("gateway ids differ: %v %v", a.body, b.body)
	}
	ch.AmountCents = 200
	g.expect(g.do("POST", "/v1/charges", ch, h), 422)
	wantMetric(t, metrics(t, sb.GatewayURL), `gateway_charges_total{outcome="replayed"}`, 1)
}

// TestSandboxCloseNoLeak is deliberately not parallel: it compares goroutine
// counts, and parallel tests are paused while it runs.
func TestSandboxCloseNoLeak(t *testing.T) {
	tests := []struct {
		name  string
		stuck bool // leave a payment hanging in a slow gateway at Close
	}{
		{"graceful", false},
		{"forced while a payment hangs", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				sb, err := StartSandbox(ctx, SandboxOptions{Password: testPassword, SettleDelay: 10 * time.Millisecond, GatewayTimeout: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				c := newClient(t, sb.ShopURL)
				c.login()
				id := c.createOrder()
				c.expect(c.pay(id, nil), 200)
				waitStatus(t, c, id, "confirmed", 2*time.Second)
				metrics(t, sb.ShopURL)
				metrics(t, sb.GatewayURL)
				done := make(chan error, 1)
				if tt.stuck {
					sb.Faults.Set("", FaultSet{GatewayDelay: Duration(time.Minute)})
					id2 := c.createOrder()
					go func() {
						_, err := c.try("POST", "/api/orders/"+id2+"/pay", map[string]string{"card": "4242424242424242"}, nil)
						done <- err
					}()
					time.Sleep(100 * time.Millisecond) // let it reach the gateway
				} else {
					done <- nil
				}
				closeCtx, cancelClose := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancelClose()
				start := time.Now()
				err = sb.Close(closeCtx)
				if tt.stuck {
					if err == nil {
						t.Error("Close reported success although it had to abort a request")
					}
				} else if err != nil {
					t.Errorf("Close: %v", err)
				}
				if el := time.Since(start); el > 3*time.Second {
					t.Errorf("Close took %v", el)
				}
				<-done
				c.hc.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
				if err := sb.Close(closeCtx); err != nil && !tt.stuck {
					t.Errorf("second Close: %v", err)
				}
			}()
			deadline := time.Now().Add(3 * time.Second)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("goroutines: %d before, %d after Close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
