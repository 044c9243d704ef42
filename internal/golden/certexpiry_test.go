package golden

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/rulekind"
	"github.com/prober-dev/prober/internal/store"
)

// tlsRun is a run of flow in region whose step tls saw host's certificate
// expiring at notAfter (from issuer), and whose HTTPS step pay read its
// connection to pay.test's.
func tlsRun(flow, region string, start, notAfter time.Time, issuer string) *result.Run {
	return &result.Run{Flow: flow, Region: region, Start: start, Duration: time.Second, Status: result.Passed, Class: result.OK,
		Steps: []result.Step{
			{Name: "tls", Kind: "tls", URL: "tls://shop.test:8443", Status: result.Passed, Class: result.OK, Duration: 50 * time.Millisecond,
				Attrs: []result.Attr{{Name: "cert.not_after", Value: notAfter.UTC().Format(time.RFC3339)},
					{Name: "cert.subject", Value: "CN=shop.test"}, {Name: "cert.issuer", Value: issuer}}},
			{Name: "pay", URL: "https://pay.test:443/api/pay", Status: result.Passed, Class: result.OK, Duration: 200 * time.Millisecond,
				Attrs: []result.Attr{{Name: "cert.not_after", Value: now.Add(300 * 24 * time.Hour).UTC().Format(time.RFC3339)}}},
		}}
}

// TestCertExpiry judges the certificates steps saw, from the store: the
// earliest over the regions, warning under within, critical under
// critical (and once expired), with host, issuer, date and days left on
// the page.
func TestCertExpiry(t *testing.T) {
	rule := func(steps ...string) *config.Rule {
		return &config.Rule{Name: "cert", Kind: config.CertExpiry, Severity: "critical",
			CertExpiry: &config.CertExpiryRule{Steps: steps, Within: 14 * 24 * time.Hour, Critical: 3 * 24 * time.Hour}}
	}
	const issuer = "CN=R11,O=Let's Encrypt,C=US"
	tests := []struct {
		name       string
		left       time.Duration // region a's; b's has 30 days more
		steps      []string
		want       Status
		severity   string
		value, sum string
	}{
		{name: "far", left: 60 * 24 * time.Hour, steps: []string{"tls"}, want: OK, severity: "warning",
			value: "certificate of shop.test:8443 expires in 60 days (2027-01-02 02:16Z), after the 14 days warned of"},
		{name: "within", left: 9*24*time.Hour + 5*time.Hour, steps: []string{"tls"}, want: Firing, severity: "warning",
			value: "certificate of shop.test:8443 expires in 9 days (2026-11-12 07:16Z)",
			sum:   "checkout step tls: certificate of shop.test:8443 (issuer " + issuer + ") expires in 9 days, on 2026-11-12 07:16Z"},
		{name: "critical", left: 40 * time.Hour, steps: []string{"tls"}, want: Firing, severity: "critical",
			value: "certificate of shop.test:8443 expires in 1d16h (2026-11-04 18:16Z)"},
		{name: "expired", left: -50 * time.Hour, steps: []string{"tls"}, want: Firing, severity: "critical",
			value: "certificate of shop.test:8443 expired 2 days ago (2026-11-01 00:16Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := store.New(10)
			st.Observe(tlsRun("checkout", "b", now.Add(-2*time.Minute), now.Add(tt.left+30*24*time.Hour), "CN=other"))
			st.Observe(tlsRun("checkout", "a", now.Add(-3*time.Minute), now.Add(tt.left), issuer))
			st.Observe(storeRun("plain", "a", now.Add(-time.Minute), true, "t1")) // no certificate: not judged
			ev := one(t, NewStoreSource(st, nil, nil), rule(tt.steps...))
			if ev.Status != tt.want || ev.Severity != tt.severity || ev.Value != tt.value || ev.Err != nil {
				t.Errorf("%s %s %q (%v), want %s %s %q", ev.Status, ev.Severity, ev.Value, ev.Err, tt.want, tt.severity, tt.value)
			}
			if l := ev.Labels; l["flow"] != "checkout" || l["step"] != "tls" || l["host"] != "shop.test:8443" || l["rule"] != "cert" {
				t.Errorf("labels %v", l)
			}
			if tt.sum != "" && ev.Summary != tt.sum {
				t.Errorf("summary %q, want %q", ev.Summary, tt.sum)
			}
		})
	}
	t.Run("every step", func(t *testing.T) {
		st := store.New(10)
		st.Observe(tlsRun("checkout", "a", now.Add(-time.Minute), now.Add(time.Hour), issuer))
		evs := eval(t, NewStoreSource(st, nil, nil), &config.Alerting{Rules: []*config.Rule{rule()}})
		if len(evs) != 2 || evs[0].Labels["host"] != "pay.test" || evs[0].Status != OK ||
			evs[1].Labels["host"] != "shop.test:8443" || evs[1].Status != Firing {
			t.Errorf("evaluations %+v", evs)
		}
	})
	t.Run("no certificate yet", func(t *testing.T) {
		st := store.New(10)
		st.Observe(storeRun("plain", "a", now.Add(-time.Minute), true, "t1"))
		if ev := one(t, NewStoreSource(st, nil, nil), rule()); ev.Status != Unknown || ev.Value != "no certificate seen yet" {
			t.Errorf("%s %q", ev.Status, ev.Value)
		}
	})
}

// TestPromSourceCertificates reads the certificate gauge: the earliest
// not-after per flow, step and host, asked in one query.
func TestPromSourceCertificates(t *testing.T) {
	f := newPromAPIFake()
	f.answer(rulekind.CertExpiryQuery([]string{"checkout"}, nil),
		ser(float64(now.Add(48*time.Hour).Unix()), "flow", "checkout", "step", "tls", "host", "shop.test"),
		ser(float64(now.Add(900*time.Hour).Unix()), "flow", "checkout", "step", "pay", "host", "pay.test"))
	src := fakePromSource(t, f, nil)
	certs, err := src.(rulekind.Certificates).Certificates(context.Background(), []string{"checkout"}, now)
	if err != nil || len(certs) != 2 || certs[0].Step != "pay" || certs[1].Host != "shop.test" || !certs[1].NotAfter.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("certificates %+v (%v)", certs, err)
	}
	r := &config.Rule{Name: "cert", Kind: config.CertExpiry, CertExpiry: &config.CertExpiryRule{Flows: []string{"checkout"},
		Steps: []string{"tls"}, Within: 14 * 24 * time.Hour, Critical: 3 * 24 * time.Hour}}
	ev := one(t, src, r)
	if ev.Status != Firing || ev.Severity != "critical" || !strings.HasPrefix(ev.Summary, "checkout step tls: certificate of shop.test expires in 2 days, on 2026-11-05 02:16Z") {
		t.Errorf("%s %s %q", ev.Status, ev.Severity, ev.Summary)
	}
}

// countingOlder is a run history on disk that counts its reads.
type countingOlder struct{ reads int }

func (c *countingOlder) RunsBefore(string, int64, int) []*result.Run { c.reads++; return nil }

// TestCertificatesReadNoHistory: with older runs on disk (10,000 flows'
// worth), the certificate rule reads only the runs held in memory: a read
// of the history a flow a cycle would be the rules' largest cost.
func TestCertificatesReadNoHistory(t *testing.T) {
	st := store.New(30)
	names := make([]string, 5000) // 2 full runs a flow in memory
	for i := range names {
		names[i] = fmt.Sprint("flow-", i)
	}
	names[0] = "checkout"
	st.Retain(names, 30)
	older := &countingOlder{}
	st.SetOlder(older)
	for i := range 3 {
		st.Observe(tlsRun("checkout", "a", now.Add(time.Duration(i-3)*time.Minute), now.Add(40*time.Hour), "CN=R11"))
	}
	if st.HeldPerFlow() != 2 {
		t.Fatalf("held %d a flow, want 2", st.HeldPerFlow())
	}
	rule := &config.Rule{Name: "cert", Kind: config.CertExpiry, Severity: "critical",
		CertExpiry: &config.CertExpiryRule{Steps: []string{"tls"}, Within: 14 * 24 * time.Hour, Critical: 3 * 24 * time.Hour}}
	if ev := one(t, NewStoreSource(st, nil, nil), rule); ev.Status != Firing {
		t.Errorf("%s %q", ev.Status, ev.Value)
	}
	if older.reads != 0 {
		t.Errorf("the history on disk was read %d times", older.reads)
	}
}
