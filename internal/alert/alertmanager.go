package alert

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
	// re-sends firing alerts every SyncResend; if they stop coming (the
	// evaluator died), Alertmanager resolves the alert by itself at endsAt.
	// Four resends, as Prometheus does (4 x its resend delay), so a missed
	// refresh or two (a retry backing off, a slow cycle) does not flap it.
	amHorizon = 4 * SyncResend
	// Labels the notifier sets itself; page labels of these names lose.
	amAlertname = "alertname"
	amSeverity  = "severity"
	amDedupKey  = "dedup_key"
	// Alertmanager keeps descriptions whole; keep ours reasonable.
	amDescriptionMax = 16 << 10
	amAnnotationMax  = 4 << 10
)

type alertmanagerNotifier struct {
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

// NewAlertmanager returns a notifier that posts pages to one Alertmanager's
// API v2. cfg.URL is its base URL (http://am-0:9093, with any
// --web.route-prefix path), or the full .../api/v2/alerts URL; user:password
// in the URL is sent as basic auth and redacted from errors.
//
// For an Alertmanager cluster, configure one notifier per peer and route to
// all of them, as Prometheus does: Alertmanager does not gossip alerts, only
// silences and the notification log, so every peer must receive every alert
// and resolve. A load balancer in front of the peers splits a replica's
// updates across peers, and a peer that missed a resolve may notify the
// alert as firing again.
func NewAlertmanager(cfg *config.Notifier, o NotifierOptions) (Notifier, error) {
	endpoint, err := alertmanagerEndpoint(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", cfg.Name, err)
	}
	secrets := map[string]string{}
	if u, _ := url.Parse(endpoint); u != nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets["alertmanager_password"] = pw
		}
	}
	return &alertmanagerNotifier{
		name:      cfg.Name,
		endpoint:  endpoint,
		hc:        o.client(cfg.Timeout),
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

func (n *alertmanagerNotifier) Name() string              { return n.name }
func (n *alertmanagerNotifier) Type() config.NotifierType { return config.Alertmanager }

// Send posts p as one alert. A trigger and a reminder say "firing until
// now+amHorizon" (the reminder is the manager's periodic refresh); a
// resolve says "ended when it resolved". There is no thread: the label set
// is the alert's identity.
func (n *alertmanagerNotifier) Send(ctx context.Context, p *Page, thread string) (string, error) {
	switch p.Kind {
	case Trigger, Reminder, Resolve:
	default:
		return thread, &DeliveryError{Permanent: true, Msg: fmt.Sprintf("unknown notification kind %q", p.Kind)}
	}
	body, err := json.Marshal([]amAlert{n.alert(p, n.now())})
	if err != nil {
		return thread, &DeliveryError{Permanent: true, Msg: "encoding the alert: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, bytes.NewReader(body))
	if err != nil {
		return thread, &DeliveryError{Permanent: true, Msg: n.secrets.Redact(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := n.hc.Do(req)
	if err != nil {
		return thread, &DeliveryError{Msg: n.secrets.Redact("Alertmanager unreachable: " + transportText(err))}
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return "", nil
	}
	de := &DeliveryError{Status: resp.StatusCode, Msg: n.secrets.Redact(alertmanagerErrorText(text, resp.StatusCode))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		de.RetryAfter = retryAfter(resp.Header, time.Now())
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
	case resp.StatusCode >= 400:
		// The alert is invalid (400, 422) or the URL or credentials are
		// wrong (404, 401): resending the same request cannot fix it.
		de.Permanent = true
	}
	return thread, de
}

// alertmanagerErrorText renders an error body: a JSON string (validation),
// {"code":..,"message":..} (parsing, schema), or plain text (a proxy).
func alertmanagerErrorText(body []byte, status int) string {
	var s string
	if json.Unmarshal(body, &s) == nil && s != "" {
		return clip(s, 1000)
	}
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return clip(e.Message, 1000)
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return clip(strings.Join(strings.Fields(t), " "), 500)
	}
	return http.StatusText(status)
}

// alert renders p as a postableAlert at now.
func (n *alertmanagerNotifier) alert(p *Page, now time.Time) amAlert {
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
	if p.Kind == Reminder {
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
		ann[k] = truncateBytes(v, amAnnotationMax)
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
	ann["description"] = truncateBytes(strings.TrimSpace(desc.String()), amDescriptionMax)
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
	if p.Kind == Resolve {
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
