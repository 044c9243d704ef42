package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// AlertInfo is an alert for display and the API.
type AlertInfo struct {
	Key      string            `json:"key"`
	Rule     string            `json:"rule"`
	Severity string            `json:"severity"`
	Phase    string            `json:"phase"` // pending, firing
	Held     string            `json:"held,omitempty"`
	Summary  string            `json:"summary"`
	Labels   map[string]string `json:"labels,omitempty"`
	Since    time.Time         `json:"since"`
	FiredAt  time.Time         `json:"fired_at,omitzero"`
	// Notified are the channels that accepted the page (delivered), not
	// those it was meant for: those are also in Sending, Retrying or Failed.
	Notified []string `json:"notified,omitempty"`
	// Sending are channels whose page awaits its first attempt.
	Sending []string `json:"sending,omitempty"`
	// Retrying are channels whose page failed and will be tried again;
	// Failed those whose page failed for good (a dead letter).
	Retrying []DeliveryInfo `json:"retrying,omitempty"`
	Failed   []DeliveryInfo `json:"failed,omitempty"`
}

// DeliveryInfo is a page not delivered to one channel: retrying or failed
// for good. Error is the service's answer, with secrets redacted.
type DeliveryInfo struct {
	Notifier    string    `json:"notifier"`
	State       string    `json:"state"` // retrying, failed
	Kind        string    `json:"kind"`  // trigger, reminder, resolve
	Rule        string    `json:"rule,omitempty"`
	Severity    string    `json:"severity,omitempty"`
	AlertKey    string    `json:"alert_key,omitempty"`
	Attempts    int       `json:"attempts"`
	Queued      time.Time `json:"queued"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	FailedAt    time.Time `json:"failed_at,omitzero"`
	Error       string    `json:"error,omitempty"`
}

// DeliveryLister is what Alerts may also offer: every page not delivered,
// whether or not its alert still fires (a failed resolve, say): retrying
// ones, and those failed for good since their channel last delivered.
type DeliveryLister interface {
	Deliveries() ([]DeliveryInfo, error)
}

// DeliveryRetrier is what Alerts may also offer: send the pages that failed
// for good again (after their cause is fixed), for one notifier or all ("").
type DeliveryRetrier interface {
	RetryFailed(notifier string) (int, error)
}

// SilenceInfo is a silence for display and the API.
type SilenceInfo struct {
	ID        string            `json:"id,omitempty"`
	Matchers  map[string]string `json:"matchers"`
	Starts    time.Time         `json:"starts"`
	Ends      time.Time         `json:"ends"`
	Comment   string            `json:"comment,omitempty"`
	CreatedBy string            `json:"created_by,omitempty"`
	// Origin is "api" (removable here) or "config" (probes.yaml).
	Origin string `json:"origin"`
}

// Alerts is the alerting state the pages and API read and the silences API
// changes. The daemon implements it over the alert manager.
type Alerts interface {
	Alerts() ([]AlertInfo, error)
	Silences() ([]SilenceInfo, error)
	AddSilence(SilenceInfo) (SilenceInfo, error)
	RemoveSilence(id string) error
}

func (s *server) routeAlerts(mux *http.ServeMux) {
	mux.HandleFunc("GET /alerts", s.alertsPage)
	mux.HandleFunc("GET /api/v1/alerts", s.apiAlerts)
	mux.HandleFunc("GET /api/v1/deliveries", s.apiDeliveries)
	mux.HandleFunc("POST /api/v1/deliveries/retry", s.guard(s.apiRetryDeliveries))
	mux.HandleFunc("GET /api/v1/silences", s.apiSilences)
	mux.HandleFunc("POST /api/v1/silences", s.guard(s.apiAddSilence))
	mux.HandleFunc("DELETE /api/v1/silences/{id}", s.guard(s.apiRemoveSilence))
}

// guard protects the mutating endpoints: with an API token configured it is
// required; without one, only loopback clients may change anything.
func (s *server) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.APIToken != "" {
			if r.Header.Get("Authorization") != "Bearer "+s.o.APIToken {
				s.apiErr(w, http.StatusUnauthorized, "a bearer token is required to change silences")
				return
			}
		} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !net.ParseIP(host).IsLoopback() {
			s.apiErr(w, http.StatusForbidden, "silences can be changed from loopback only, unless an API token is configured")
			return
		}
		h(w, r)
	}
}

func (s *server) apiAlerts(w http.ResponseWriter, _ *http.Request) {
	if s.o.Alerts == nil {
		s.writeJSON(w, http.StatusOK, map[string]any{"alerts": []AlertInfo{}})
		return
	}
	alerts, err := s.o.Alerts.Alerts()
	if err != nil {
		s.apiErr(w, http.StatusInternalServerError, "reading alerts: "+err.Error())
		return
	}
	if alerts == nil {
		alerts = []AlertInfo{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"generated_at": s.now(), "alerts": alerts})
}

func (s *server) apiDeliveries(w http.ResponseWriter, _ *http.Request) {
	dl, ok := s.o.Alerts.(DeliveryLister)
	if !ok {
		s.writeJSON(w, http.StatusOK, map[string]any{"deliveries": []DeliveryInfo{}})
		return
	}
	ds, err := dl.Deliveries()
	if err != nil {
		s.apiErr(w, http.StatusInternalServerError, "reading deliveries: "+err.Error())
		return
	}
	if ds == nil {
		ds = []DeliveryInfo{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"generated_at": s.now(), "deliveries": ds})
}

// apiRetryDeliveries requeues the failed pages (?notifier=NAME for one).
func (s *server) apiRetryDeliveries(w http.ResponseWriter, r *http.Request) {
	dr, ok := s.o.Alerts.(DeliveryRetrier)
	if !ok {
		s.apiErr(w, http.StatusNotFound, "alerting is not configured")
		return
	}
	n, err := dr.RetryFailed(r.URL.Query().Get("notifier"))
	if err != nil {
		s.apiErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"requeued": n})
}

func (s *server) apiSilences(w http.ResponseWriter, _ *http.Request) {
	if s.o.Alerts == nil {
		s.writeJSON(w, http.StatusOK, map[string]any{"silences": []SilenceInfo{}})
		return
	}
	sil, err := s.o.Alerts.Silences()
	if err != nil {
		s.apiErr(w, http.StatusInternalServerError, "reading silences: "+err.Error())
		return
	}
	if sil == nil {
		sil = []SilenceInfo{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"silences": sil})
}

// silenceRequest is the POST body: ends, or a duration from now.
type silenceRequest struct {
	Matchers  map[string]string `json:"matchers"`
	Starts    time.Time         `json:"starts"`
	Ends      time.Time         `json:"ends"`
	Duration  string            `json:"duration"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"created_by"`
}

func (s *server) apiAddSilence(w http.ResponseWriter, r *http.Request) {
	if s.o.Alerts == nil {
		s.apiErr(w, http.StatusNotFound, "alerting is not configured")
		return
	}
	var req silenceRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.apiErr(w, http.StatusBadRequest, "bad silence: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		s.apiErr(w, http.StatusBadRequest, "bad silence: trailing data after the JSON object")
		return
	}
	if req.Starts.IsZero() {
		req.Starts = s.now()
	}
	if req.Duration != "" {
		if !req.Ends.IsZero() {
			s.apiErr(w, http.StatusBadRequest, "give ends or duration, not both")
			return
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			s.apiErr(w, http.StatusBadRequest, fmt.Sprintf("bad duration %q: want e.g. 2h or 30m", req.Duration))
			return
		}
		req.Ends = req.Starts.Add(d)
	}
	if req.Ends.IsZero() {
		s.apiErr(w, http.StatusBadRequest, "a silence needs ends or duration")
		return
	}
	got, err := s.o.Alerts.AddSilence(SilenceInfo{Matchers: req.Matchers, Starts: req.Starts, Ends: req.Ends,
		Comment: req.Comment, CreatedBy: req.CreatedBy, Origin: "api"})
	if err != nil {
		s.apiErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.writeJSON(w, http.StatusCreated, got)
}

func (s *server) apiRemoveSilence(w http.ResponseWriter, r *http.Request) {
	if s.o.Alerts == nil {
		s.apiErr(w, http.StatusNotFound, "alerting is not configured")
		return
	}
	id := r.PathValue("id")
	sil, err := s.o.Alerts.Silences()
	if err == nil && !slices.ContainsFunc(sil, func(x SilenceInfo) bool { return x.ID == id && x.Origin == "api" }) {
		s.apiErr(w, http.StatusNotFound, "no API silence "+id+" (silences from probes.yaml are removed there)")
		return
	}
	if err == nil {
		err = s.o.Alerts.RemoveSilence(id)
	}
	if err != nil {
		s.apiErr(w, http.StatusInternalServerError, "removing the silence: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// alertLines are the status page's alert lines, firing first.
type alertLine struct {
	CSS, Text, Held string
}

func (s *server) alertLines() []alertLine {
	if s.o.Alerts == nil {
		return nil
	}
	alerts, err := s.o.Alerts.Alerts()
	if err != nil {
		return []alertLine{{CSS: "fail", Text: "alerts unavailable: " + err.Error()}}
	}
	slices.SortFunc(alerts, func(a, b AlertInfo) int {
		if a.Phase != b.Phase {
			return strings.Compare(a.Phase, b.Phase) // firing before pending
		}
		return strings.Compare(a.Key, b.Key)
	})
	out := s.deliveryLines()
	for _, a := range alerts {
		l := alertLine{CSS: "nodata", Held: a.Held}
		since := a.Since
		if a.Phase == "firing" {
			l.CSS = "fail"
			since = a.FiredAt
		}
		l.Text = fmt.Sprintf("%s %s %s since %s: %s", strings.ToUpper(a.Phase), a.Severity, a.Rule,
			ago(s.now(), since), a.Summary)
		out = append(out, l)
	}
	return out
}

// maxDeliveryLines bounds the undelivered pages listed on the status page
// (a revoked token can fail hundreds); the API lists them all.
const maxDeliveryLines = 20

// deliveryLines are pages that did not reach their channel, first on the
// status page: a page nobody received is worse than any alert.
func (s *server) deliveryLines() []alertLine {
	dl, ok := s.o.Alerts.(DeliveryLister)
	if !ok {
		return nil
	}
	ds, err := dl.Deliveries()
	if err != nil {
		return []alertLine{{CSS: "fail", Text: "page deliveries unavailable: " + err.Error()}}
	}
	now := s.now()
	var out []alertLine
	for i, d := range ds {
		if i == maxDeliveryLines {
			out = append(out, alertLine{CSS: "fail", Text: fmt.Sprintf("... and %d more undelivered pages: see /api/v1/deliveries", len(ds)-i)})
			break
		}
		what := d.Notifier + " " + d.Kind
		if d.Rule != "" {
			what += " of " + d.Rule
		}
		var text string
		switch d.State {
		case "failed":
			text = fmt.Sprintf("PAGE NOT DELIVERED: %s failed for good %s after %d attempt(s): %s", what, ago(now, d.FailedAt), d.Attempts, d.Error)
		case "retrying":
			text = fmt.Sprintf("PAGE RETRYING: %s, queued %s, %d attempt(s), next %s: %s", what, ago(now, d.Queued), d.Attempts, until(now, d.NextAttempt), d.Error)
		default:
			continue
		}
		out = append(out, alertLine{CSS: "fail", Text: text})
	}
	return out
}

// until says when t comes, from now.
func until(now, t time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "now"
	}
	return "in " + d.Round(time.Second).String()
}

func (s *server) apiErr(w http.ResponseWriter, code int, msg string) {
	s.writeJSON(w, code, apiError{msg})
}
