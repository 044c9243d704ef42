package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The alerts page (/alerts): the alerts firing and pending, where each page
// went, and the silences, which it creates and expires. Changing silences
// goes through the JSON API (POST /api/v1/silences, DELETE
// /api/v1/silences/{id}) by a same-origin fetch from silences.js, so the
// page passes the same CSRF checks (admit) and the same guard as curl; the
// CSP allows the script by its hash and fetch to this origin only. Without
// JavaScript the page shows the curl commands instead.

type alertsView struct {
	page
	Configured bool   // alerting is configured at all
	Err        string // reading the state failed
	Alerts     []alertRow
	Silences   []silenceRow
	// Base is this prober's origin as the request named it, for the curl
	// commands shown without JavaScript.
	Base string
	// Token: changes need the API token (Options.APIToken), so the form
	// asks for it; it is sent with the request and kept nowhere.
	Token bool
}

type alertRow struct {
	Phase, CSS, Severity, Rule, Key string
	Since, SinceAgo, Summary, Held  string
	Labels                          []string
	Delivered, Sending              []string
	Retrying, Failed                []string // "slack: 4 attempt(s), next in 1m10s: HTTP 503"
}

type silenceRow struct {
	ID                   string
	Matchers             []string // "k=v", sorted
	Starts, Ends, EndsIn string
	Comment, CreatedBy   string
	Origin               string
	Pending, Expirable   bool
}

func (s *server) alertsPage(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	v := alertsView{page: s.page("Alerts and silences · prober", false), Configured: s.o.Alerts != nil,
		Base: base(r), Token: s.o.APIToken != ""}
	if s.o.Alerts != nil {
		var errs []string
		alerts, err := s.o.Alerts.Alerts()
		if err != nil {
			errs = append(errs, "reading alerts: "+err.Error())
		}
		slices.SortFunc(alerts, func(a, b AlertInfo) int {
			if a.Phase != b.Phase {
				return strings.Compare(a.Phase, b.Phase) // firing before pending
			}
			return strings.Compare(a.Key, b.Key)
		})
		for _, a := range alerts {
			v.Alerts = append(v.Alerts, alertRowOf(a, now))
		}
		sil, err := s.o.Alerts.Silences()
		if err != nil {
			errs = append(errs, "reading silences: "+err.Error())
		}
		slices.SortFunc(sil, func(a, b SilenceInfo) int { return a.Ends.Compare(b.Ends) })
		for _, x := range sil {
			v.Silences = append(v.Silences, silenceRow{ID: x.ID, Matchers: labelList(x.Matchers),
				Starts: absTime(x.Starts), Ends: absTime(x.Ends), EndsIn: until(now, x.Ends),
				Comment: x.Comment, CreatedBy: x.CreatedBy, Origin: x.Origin,
				Pending: x.Starts.After(now), Expirable: x.Origin == "api" && x.ID != ""})
		}
		v.Err = strings.Join(errs, "; ")
	}
	s.htmlCSP(w, http.StatusOK, "alerts", v, s.pages.alertsCSP)
}

func alertRowOf(a AlertInfo, now time.Time) alertRow {
	row := alertRow{Phase: a.Phase, CSS: "nodata", Severity: a.Severity, Rule: a.Rule, Key: a.Key,
		Summary: a.Summary, Held: a.Held, Labels: labelList(a.Labels),
		Delivered: a.Notified, Sending: a.Sending}
	since := a.Since
	if a.Phase == "firing" {
		row.CSS = "fail"
		if !a.FiredAt.IsZero() {
			since = a.FiredAt
		}
	}
	row.Since, row.SinceAgo = absTime(since), ago(now, since)
	for _, d := range a.Retrying {
		row.Retrying = append(row.Retrying, d.Notifier+": "+strconv.Itoa(d.Attempts)+" attempt(s), next "+
			until(now, d.NextAttempt)+": "+d.Error)
	}
	for _, d := range a.Failed {
		row.Failed = append(row.Failed, d.Notifier+": failed for good "+ago(now, d.FailedAt)+" after "+
			strconv.Itoa(d.Attempts)+" attempt(s): "+d.Error)
	}
	return row
}

// base is the origin the client reached this prober at.
func base(r *http.Request) string {
	u := url.URL{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if u.Host == "" {
		u.Host = "localhost"
	}
	return u.String()
}
