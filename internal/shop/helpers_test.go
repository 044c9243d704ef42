package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const testPassword = "s3cret-test-password"

// logBuf collects JSON log lines written concurrently by the sandbox.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	data := l.b.String()
	l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// find waits briefly for a log line matching every key/value in want.
func (l *logBuf) find(t *testing.T, want map[string]any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, m := range l.lines(t) {
			if matches(m, want) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %v in:\n%s", want, l.b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func matches(m, want map[string]any) bool {
	for k, v := range want {
		if fmt.Sprint(m[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// startSandbox starts a sandbox closed at test end; a failing Close fails the test.
func startSandbox(t *testing.T, o SandboxOptions) (*Sandbox, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	if o.Password == "" {
		o.Password = testPassword
	}
	if o.SettleDelay == 0 {
		o.SettleDelay = 50 * time.Millisecond
	}
	if o.GatewayTimeout == 0 {
		o.GatewayTimeout = 2 * time.Second
	}
	o.Log = logs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sb, err := StartSandbox(ctx, o)
	if err != nil {
		t.Fatalf("StartSandbox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sb.Close(ctx); err != nil {
			t.Errorf("Sandbox.Close: %v", err)
		}
	})
	return sb, logs
}

// client is a tiny JSON API client with its own transport.
type client struct {
	t     *testing.T
	base  string
	hc    *http.Client
	token string
	hdr   http.Header // sent with every request
}

func newClient(t *testing.T, base string) *client {
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: base, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, hdr: http.Header{}}
}

type resp struct {
	code int
	hdr  http.Header
	body map[string]any
	raw  string
}

// try performs a request and returns the transport error instead of failing.
func (c *client) try(method, path string, body any, hdr map[string]string) (resp, error) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range c.hdr {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	r := resp{code: res.StatusCode, hdr: res.Header, raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			c.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return r, nil
}

func (c *client) do(method, path string, body any, hdr map[string]string) resp {
	c.t.Helper()
	r, err := c.try(method, path, body, hdr)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *client) expect(r resp, code int) resp {
	c.t.Helper()
	if r.code != code {
		c.t.Fatalf("got %d, want %d; body %s", r.code, code, r.raw)
	}
	return r
}

func (c *client) login() {
	c.t.Helper()
	r := c.expect(c.do("POST", "/api/login", map[string]string{"user": defaultUser, "password": testPassword}, nil), 200)
	c.token = r.body["token"].(string)
}

func (c *client) createOrder() string {
	c.t.Helper()
	r := c.expect(c.do("POST", "/api/orders", map[string]any{"sku": "SENTINEL-SKU-1", "qty": 1}, nil), 201)
	return r.body["id"].(string)
}

func (c *client) pay(id string, hdr map[string]string) resp {
	c.t.Helper()
	return c.do("POST", "/api/orders/"+id+"/pay", map[string]string{"card": "4242424242424242", "mode": "sandbox"}, hdr)
}

func (c *client) status(id string) string {
	c.t.Helper()
	return c.expect(c.do("GET", "/api/orders/"+id, nil, nil), 200).body["status"].(string)
}

// metrics scrapes base/metrics into "name{k="v",...}" -> value; histograms
// appear as name_count and name_sum.
func metrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	c := newClient(t, base)
	r := c.expect(c.do("GET", "/metrics", nil, nil), 200)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.raw))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(labels)
			ls := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[name+ls] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name+ls] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+ls] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+ls] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// wantMetric asserts a scraped sample exists with the given value.
func wantMetric(t *testing.T, got map[string]float64, key string, want float64) {
	t.Helper()
	v, ok := got[key]
	if !ok {
		t.Errorf("metric %s missing", key)
		return
	}
	if v != want {
		t.Errorf("metric %s = %v, want %v", key, v, want)
	}
}
