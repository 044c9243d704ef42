package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/certinfo"
	"github.com/prober-dev/prober/internal/result"
)

const certFamily = "prober_cert_expiry_timestamp_seconds"

// certAttrs are the attributes the tls kind and HTTPS steps record for a
// leaf expiring at notAfter: certinfo's own, so that the attribute's name
// and format are the ones the metric reads.
func certAttrs(notAfter time.Time) []result.Attr {
	cs := &tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{{NotAfter: notAfter, NotBefore: notAfter.Add(-90 * 24 * time.Hour)}}}
	return certinfo.Record(&assert.Response{}, cs, nil, t0)
}

// certRun is a run of flow "site" whose steps have the given targets; a
// step with a zero not-after made no handshake (plain HTTP, or refused).
func certRun(steps ...certStep) *result.Run {
	r := &result.Run{Flow: "site", TraceID: traceOK, Start: t0, Duration: time.Second, Status: result.Passed, Class: result.OK}
	for _, cs := range steps {
		st := step(cs.name, result.Passed, result.OK, 100*time.Millisecond)
		st.URL = cs.target
		if cs.failed {
			st.Status, st.Class = result.Failed, result.TLS
		}
		if !cs.notAfter.IsZero() {
			st.Attrs = certAttrs(cs.notAfter)
		}
		r.Steps = append(r.Steps, st)
	}
	return r
}

type certStep struct {
	name, target string
	notAfter     time.Time
	failed       bool
}

func siteShape(level bool, names ...string) FlowShape {
	f := FlowShape{Name: "site", Detailed: level}
	for _, n := range names {
		f.Steps = append(f.Steps, StepShape{Name: n})
	}
	return f
}

// A step that made a TLS handshake exports its leaf's not-after, by host,
// at both levels; one that did not (plain HTTP, no handshake) exports
// nothing. An expired certificate, which fails a verifying step, is
// exported all the same.
func TestCertExpiry(t *testing.T) {
	soon, later, expired := t0.Add(10*24*time.Hour), t0.Add(300*24*time.Hour), t0.Add(-time.Hour)
	for _, c := range []struct {
		name    string
		detail  bool
		steps   []certStep
		want    map[series]float64
		absent  []series
		nSeries int
	}{
		{name: "tls step, default level", steps: []certStep{{"handshake", "tls://shop.example.com:443", soon, false}},
			want:    map[series]float64{s(certFamily, "flow", "site", "step", "handshake", "host", "shop.example.com"): float64(soon.Unix())},
			nSeries: 1},
		{name: "https step on another port, detailed", detail: true,
			steps:   []certStep{{"home", "https://127.0.0.1:8443/api/orders/ord-1?x=1", later, false}},
			want:    map[series]float64{s(certFamily, "flow", "site", "step", "home", "host", "127.0.0.1:8443"): float64(later.Unix())},
			nSeries: 1},
		{name: "plain http: none", steps: []certStep{{"home", "http://127.0.0.1:8080/", time.Time{}, false}},
			absent: []series{s(certFamily, "flow", "site", "step", "home", "host", "127.0.0.1:8080")}},
		{name: "expired and failing: still exported", steps: []certStep{{"handshake", "tls://[::1]:8443", expired, true}},
			want:    map[series]float64{s(certFamily, "flow", "site", "step", "handshake", "host", "[::1]:8443"): float64(expired.Unix())},
			nSeries: 1},
		{name: "two steps, two hosts", steps: []certStep{
			{"a", "tls://a.example.com:443", soon, false}, {"b", "https://b.example.com/", later, false}, {"c", "http://c.example.com/", time.Time{}, false}},
			want: map[series]float64{
				s(certFamily, "flow", "site", "step", "a", "host", "a.example.com"): float64(soon.Unix()),
				s(certFamily, "flow", "site", "step", "b", "host", "b.example.com"): float64(later.Unix()),
			},
			nSeries: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg, m := newTestMetrics(t)
			var names []string
			classes := 0 // a failed step's class adds its series
			for _, st := range c.steps {
				names = append(names, st.name)
				if st.failed {
					classes++
				}
			}
			m.SetFlows([]FlowShape{siteShape(c.detail, names...)})
			before := m.Series()["site"]
			m.Observe(certRun(c.steps...))
			checkValues(t, reg, c.want)
			checkAbsent(t, reg, c.absent)
			if got := countFamily(t, reg, certFamily); got != c.nSeries {
				t.Errorf("%d %s series, want %d", got, certFamily, c.nSeries)
			}
			// The calculator's and a scrape's counts see them.
			after := m.Series()
			if after["site"] != before+c.nSeries+classes {
				t.Errorf("Series: %d before the run, %d after; want %d more", before, after["site"], c.nSeries+classes)
			}
			if got := scrapeCounts(t, reg, m); !maps.Equal(got, after) {
				t.Errorf("scrape %v, Series %v", got, after)
			}
		})
	}
}

// One series per step whatever it is pointed at: a step whose host changes
// moves its series to the new host; paths never matter; a later run
// without a handshake keeps the last certificate seen; a reload that drops
// the step, or the flow, deletes the series.
func TestCertExpiryLifecycle(t *testing.T) {
	reg, m := newTestMetrics(t)
	soon, later := t0.Add(10*24*time.Hour), t0.Add(300*24*time.Hour)
	m.SetFlows([]FlowShape{siteShape(false, "home", "api"), healthShape()})
	old := s(certFamily, "flow", "site", "step", "home", "host", "old.example.com")
	for i := range 5 {
		m.Observe(certRun(certStep{"home", "https://old.example.com/p/" + string(rune('a'+i)), soon, false}))
	}
	checkValues(t, reg, map[series]float64{old: float64(soon.Unix())})

	moved := s(certFamily, "flow", "site", "step", "home", "host", "new.example.com")
	m.Observe(certRun(certStep{"home", "https://new.example.com/", later, false}, certStep{"api", "https://api.example.com/", soon, false}))
	checkValues(t, reg, map[series]float64{moved: float64(later.Unix())})
	checkAbsent(t, reg, []series{old})

	// Refused (no handshake, no attributes): the last certificate stays.
	m.Observe(certRun(certStep{"home", "https://new.example.com/", time.Time{}, true}))
	checkValues(t, reg, map[series]float64{moved: float64(later.Unix())})
	if n := countFamily(t, reg, certFamily); n != 2 {
		t.Errorf("%d series, want 2 (one per step)", n)
	}

	// A reload without the step: its series goes, the other step's stays.
	m.SetFlows([]FlowShape{siteShape(false, "api"), healthShape()})
	checkAbsent(t, reg, []series{moved})
	checkValues(t, reg, map[series]float64{s(certFamily, "flow", "site", "step", "api", "host", "api.example.com"): float64(soon.Unix())})
	// A late run of the old shape does not bring it back.
	m.Observe(certRun(certStep{"home", "https://new.example.com/", later, false}))
	checkAbsent(t, reg, []series{moved})

	// A reload without the flow: none left.
	m.SetFlows([]FlowShape{healthShape()})
	if n := countFamily(t, reg, certFamily); n != 0 {
		t.Errorf("%d %s series after the flow was removed", n, certFamily)
	}
}

// The calculator counts a certificate series for each step that makes a
// handshake (StepShape.Cert), once however often the name appears: what a
// scrape shows after the flows' first passing runs.
func TestSeriesOfCountsCerts(t *testing.T) {
	for _, detailed := range []bool{false, true} {
		plain := siteShape(detailed, "home", "api", "tls")
		withCert := siteShape(detailed, "home", "api", "tls")
		withCert.Steps[0].Cert, withCert.Steps[2].Cert = true, true
		withCert.Steps = append(withCert.Steps, StepShape{Name: "tls", Cert: true}) // twice: one set of series
		base := SeriesOf([]FlowShape{plain})["site"]
		got := SeriesOf([]FlowShape{withCert})["site"]
		if got != base+2 {
			t.Errorf("detailed %v: %d series with two handshaking steps, %d without; want 2 more", detailed, got, base)
		}
		reg, m := newTestMetrics(t)
		shapes := []FlowShape{withCert}
		m.SetFlows(shapes)
		if e := m.Expected(shapes)["site"]; e != got {
			t.Errorf("detailed %v: Expected before a run %d, calculator %d", detailed, e, got)
		}
		at := t0.Add(24 * time.Hour)
		m.Observe(certRun(certStep{"home", "https://x.example.com/", at, false}, certStep{"api", "http://x.example.com/", time.Time{}, false},
			certStep{"tls", "tls://x.example.com:443", at, false}))
		if scraped := scrapeCounts(t, reg, m)["site"]; scraped != got {
			t.Errorf("detailed %v: scrape after a passing run %d, calculator %d", detailed, scraped, got)
		}
		// A reload of the same flows (the status page's count): the series
		// that exist are not counted twice.
		m.SetFlows(shapes)
		if e := m.Expected(shapes)["site"]; e != got {
			t.Errorf("detailed %v: Expected after a run and a reload %d, calculator %d", detailed, e, got)
		}
	}
}

func countFamily(t *testing.T, reg prometheus.Gatherer, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkObserveHTTPS is BenchmarkObserve with every step over HTTPS,
// each recording its certificate: what the expiry series costs a run.
func BenchmarkObserveHTTPS(b *testing.B) {
	reg := prometheus.NewRegistry()
	m := New(reg, testRegion, BuildInfo{Version: "bench"})
	shape := FlowShape{Detailed: true, Name: "checkout"}
	r := passingRun()
	r.Steps = r.Steps[:4]
	r.Steps = append(r.Steps, step("logout", result.Passed, result.OK, 5*time.Millisecond))
	attrs := certAttrs(t0.Add(30 * 24 * time.Hour))
	for i := range r.Steps {
		r.Steps[i].URL = "https://shop.example.com/api/" + r.Steps[i].Name
		r.Steps[i].Attrs = attrs[:1] // cert.not_after only: an HTTPS step that reads no cert.* operand
		shape.Steps = append(shape.Steps, StepShape{Name: r.Steps[i].Name, Dependency: r.Steps[i].Dependency, Cert: true})
	}
	m.SetFlows([]FlowShape{shape})
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(r)
	}
}
