// Package alertmanager is the Alertmanager notifier (API v2): each page is
// an alert posted to /api/v2/alerts, its label set the alert's identity.
// Alertmanager keeps alerts, not incidents, and forgets those not
// refreshed: the notifier has the StateSync trait, so the lifecycle re-sends
// each firing alert every alert.SyncResend and each member's resolve on its
// own.
//
//	notifiers:
//	  am-0: {type: alertmanager, url: "http://am-0:9093"}
//	  am-1: {type: alertmanager, url: "http://am-1:9093"}
package alertmanager

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// Alertmanager's API v2 (api/v2/openapi.yaml, postAlerts): POST a JSON array
// of postableAlert {labels (required, non-empty), annotations, startsAt,
// endsAt (date-time), generatorURL (uri)}; 200 with an empty body, 400 with
// the validation error as a JSON string (or {"code","message"} when the body
// does not parse), 422 when a field breaks the schema.
//
// An alert's identity in Alertmanager is its label set: replicas must send
// identical labels (nothing replica- or region-specific) so that every
// Alertmanager of a cluster holds one alert, and the cluster's gossiped
// notification log sends one notification for it.
const (
	amAlertsPath = "/api/v2/alerts"
	// amHorizon is how far ahead a firing alert's endsAt is set. The manager
	// re-sends firing alerts every alert.SyncResend; if they stop coming (the
	// evaluator died), Alertmanager resolves the alert by itself at endsAt.
	// Four resends, as Prometheus does (4 x its resend delay), so a missed
	// refresh or two (a retry backing off, a slow cycle) does not flap it.
	amHorizon = 4 * alert.SyncResend
	// Labels the notifier sets itself; page labels of these names lose.
	amAlertname = "alertname"
	amSeverity  = "severity"
	amDedupKey  = "dedup_key"
	// Alertmanager keeps descriptions whole; keep ours reasonable.
	amDescriptionMax = 16 << 10
	amAnnotationMax  = 4 << 10
)

type notifier struct {
	name      string
	endpoint  string // .../api/v2/alerts
	hc        *http.Client
	statusURL string
	secrets   *secret.Set
	now       func() time.Time
	horizon   time.Duration // amHorizon; tests shorten it
}

// amAlert is a postableAlert.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Type is the notifier type's name in probes.yaml.
const Type = "alertmanager"

// Spec is an Alertmanager notifier's block.
type Spec struct {
	// URL is its base URL (http://am-0:9093, with any --web.route-prefix
	// path), or the full .../api/v2/alerts URL; user:password in the URL
	// is sent as basic auth and redacted from errors.
	URL string
}

// Plugin registers the alertmanager type (daemon/notifiers.go).
//
// For an Alertmanager cluster, configure one notifier per peer and route to
// all of them, as Prometheus does: Alertmanager does not gossip alerts, only
// silences and the notification log, so every peer must receive every alert
// and resolve. A load balancer in front of the peers splits a replica's
// updates across peers, and a peer that missed a resolve may notify the
// alert as firing again.
type Plugin struct{}

func (Plugin) Type() string   { return Type }
func (Plugin) Keys() []string { return []string{"url"} }

// Traits: Alertmanager forgets alerts not refreshed, and takes each
// member's resolve on its own.
func (Plugin) Traits() config.NotifierTraits { return config.NotifierTraits{StateSync: true} }

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string { return `{type: alertmanager, url: "http://127.0.0.1:1"}` }

// Decode reads the block.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{}
	s.URL, _ = b.URLSecretsIn("url", "routing_key, token or webhook_url")
	if s.URL == "" {
		b.Errorf("", "alertmanager notifier %s needs a url", b.Name())
	}
	return s
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, _ := n.Spec.(*Spec)
	if s == nil {
		return nil, fmt.Errorf("notifier %q: alertmanager needs a url", n.Name)
	}
	return newNotifier(n.Name, s.URL, n.Timeout, o)
}

func newNotifier(name, rawURL string, timeout time.Duration, o alert.NotifierOptions) (*notifier, error) {
	endpoint, err := alertmanagerEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", name, err)
	}
	secrets := map[string]string{}
	if u, _ := url.Parse(endpoint); u != nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets["alertmanager_password"] = pw
		}
	}
	return &notifier{
		name:      name,
		endpoint:  endpoint,
		hc:        o.Client(timeout),
		statusURL: o.StatusURL,
		secrets:   secret.NewSet(secrets),
		now:       time.Now,
		horizon:   amHorizon,
	}, nil
}

func alertmanagerEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Never echo raw: it may hold a password.
		return "", fmt.Errorf("alertmanager url: want http(s)://host[:port][/prefix]")
	}
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	p := strings.TrimSuffix(u.Path, "/")
	p = strings.TrimSuffix(p, amAlertsPath)
	u.Path = p + amAlertsPath
	return u.String(), nil
}

func (n *notifier) Name() string              { return n.name }
func (n *notifier) Type() config.NotifierType { return Type }

// Send posts p as one alert. A trigger and a reminder say "firing until
// now+amHorizon" (the reminder is the manager's periodic refresh); a
// resolve says "ended when it resolved". There is no thread: the label set
// is the alert's identity.
func (n *notifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	switch p.Kind {
	case alert.Trigger, alert.Reminder, alert.Resolve:
	default:
		return thread, &alert.DeliveryError{Permanent: true, Msg: fmt.Sprintf("unknown notification kind %q", p.Kind)}
	}
	body, err := json.Marshal([]amAlert{n.alert(p, n.now())})
	if err != nil {
		return thread, &alert.DeliveryError{Permanent: true, Msg: "encoding the alert: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, bytes.NewReader(body))
	if err != nil {
		return thread, &alert.DeliveryError{Permanent: true, Msg: n.secrets.Redact(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := n.hc.Do(req)
	if err != nil {
		return thread, &alert.DeliveryError{Msg: n.secrets.Redact("Alertmanager unreachable: " + alert.TransportText(err))}
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return "", nil
	}
	// 429 waits its Retry-After, 408 and 5xx are retried; another 4xx is
	// permanent: the alert is invalid (400, 422) or the URL or credentials
	// are wrong (404, 401), and resending the same request cannot fix it.
	return thread, alert.HTTPDeliveryError(resp.StatusCode, resp.Header, n.secrets.Redact(alertmanagerErrorText(text, resp.StatusCode)), time.Now())
}

// alertmanagerErrorText renders an error body: a JSON string (validation),
// {"code":..,"message":..} (parsing, schema), or plain text (a proxy).
func alertmanagerErrorText(body []byte, status int) string {
	var s string
	if json.Unmarshal(body, &s) == nil && s != "" {
		return alert.Clip(s, 1000)
	}
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return alert.Clip(e.Message, 1000)
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return alert.Clip(strings.Join(strings.Fields(t), " "), 500)
	}
	return http.StatusText(status)
}

// alert renders p as a postableAlert at now.
func (n *notifier) alert(p *alert.Page, now time.Time) amAlert {
	labels := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		// region: replicas and regions must agree on the identity; rule:
		// it is the alertname.
		if k == "region" || k == "rule" || p.Labels[k] == "" {
			continue
		}
		labels[amName(k)] = p.Labels[k]
	}
	labels[amAlertname] = cmp.Or(p.Rule, p.DedupKey, "prober")
	labels[amSeverity] = cmp.Or(p.Severity, "critical")
	if p.DedupKey != "" {
		labels[amDedupKey] = p.DedupKey
	}

	summary := p.Summary
	if p.Kind == alert.Reminder {
		// A reminder is a refresh of the same alert: its annotations
		// describe the alert, not this message.
		summary = strings.TrimPrefix(strings.TrimPrefix(summary, "still firing: "), "also firing: ")
	}
	ann := map[string]string{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v == "" {
			return
		}
		base := amName(k)
		k = base
		for i := 2; ann[k] != ""; i++ {
			k = fmt.Sprintf("%s_%d", base, i)
		}
		ann[k] = alert.TruncateBytes(v, amAnnotationMax)
	}
	set("summary", summary)
	var desc strings.Builder
	for _, f := range p.Details {
		if f.Value == "" {
			continue
		}
		fmt.Fprintf(&desc, "%s: %s\n", cmp.Or(f.Name, "detail"), f.Value)
		if f.Name == "trace ids" {
			set("trace_ids", f.Value)
		}
	}
	ann["description"] = alert.TruncateBytes(strings.TrimSpace(desc.String()), amDescriptionMax)
	set("source", p.Source)
	set("component", p.Component)
	set("class", p.Class)
	if p.Group != "" && p.Group != p.Rule {
		set("group", p.Group)
	}
	generator := ""
	if isURI(n.statusURL) {
		generator = n.statusURL
	}
	for _, l := range p.Links {
		switch {
		case l.URL == "":
		case l.Name == "prober":
			// The prober's own page for this run or flow. Alertmanager
			// rejects the whole alert for a generatorURL that is not a URI.
			if isURI(l.URL) {
				generator = l.URL
			}
		default:
			set(cmp.Or(l.Name, "link"), l.URL)
		}
	}
	if ann["description"] == "" {
		delete(ann, "description")
	}

	start := cmp.Or(p.Since, p.At, now)
	var end time.Time
	if p.Kind == alert.Resolve {
		// When it resolved; never in the future, or it would stay firing
		// until then.
		end = p.At
		if end.IsZero() || end.After(now) {
			end = now
		}
	} else {
		end = now.Add(n.horizon)
	}
	if start.After(end) {
		start = end // Alertmanager rejects startsAt after endsAt
	}
	return amAlert{
		Labels:       labels,
		Annotations:  ann,
		StartsAt:     start.UTC().Format(time.RFC3339Nano),
		EndsAt:       end.UTC().Format(time.RFC3339Nano),
		GeneratorURL: generator,
	}
}

func isURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}

// amName makes a valid Alertmanager 0.25 label or annotation name
// ([a-zA-Z_][a-zA-Z0-9_]*): "trace ids" -> "trace_ids", "p99-latency" ->
// "p99_latency", "5xx" -> "_5xx". Alertmanager rejects the whole alert for
// one bad name.
func amName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// Reach asks the alerts endpoint (a GET lists alerts; nothing is posted).
func (n *notifier) Reach(ctx context.Context) error {
	return alert.ReachHTTP(ctx, n.hc, n.endpoint)
}
