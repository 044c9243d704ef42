package alert

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	Logger *slog.Logger
	// Source says where the evidence comes from, for pages: "prober (region eu-west-1)".
	Source string
	// StatusURL is the prober's status page, linked from pages.
	StatusURL  string
	Registerer prometheus.Registerer
}

// Manager runs the alert lifecycle: it turns each cycle's evaluations into
// state transitions and, in the same durable transaction, the notifications
// they cause. A crash at any point leaves either the old state and no
// notification, or the new state and its notifications in the outbox.
type Manager struct {
	db   *DB
	log  *slog.Logger
	opts ManagerOptions
	kick func()

	mu        sync.Mutex
	cfg       *config.Alerting
	rules     map[string]*config.Rule
	notifiers map[string]*config.Notifier

	alertsGauge *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

// flapWindow and flapFires: an alert key that fired this often within the
// window is flapping; it then stays firing for flapHold after its
// condition clears, so it pages once rather than again and again. The
// firings are kept per key in the database beyond the alert's life
// (bucketFires), so a resolve or a restart does not forget them: a key
// pages at most flapFires times while it flaps faster than flapHold. A
// page to a channel of an alert already firing (an escalation) counts as
// a firing.
const (
	flapWindow = time.Hour
	flapFires  = 3
	flapHold   = 15 * time.Minute
)

// SyncResend is how often a firing alert is re-sent to state-synced
// notifiers (NotifierTraits.StateSync: Alertmanager), apart from
// RepeatInterval: such a service resolves an alert not refreshed in time
// (so a dead evaluator's alerts end by themselves), which takes refreshes
// far more often than human reminders.
const SyncResend = time.Minute

// NewManager returns a manager over db. kick is called after notifications
// are enqueued (the dispatcher's Kick).
func NewManager(db *DB, cfg *config.Alerting, kick func(), o ManagerOptions) *Manager {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if kick == nil {
		kick = func() {}
	}
	m := &Manager{db: db, log: o.Logger, opts: o, kick: kick,
		alertsGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prober_alerts",
			Help: "Alerts by rule and state (pending, firing, held: silenced, inhibited or in a maintenance window; a member that joined an open incident counts as firing).",
		}, []string{"rule", "state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_alert_transitions_total",
			Help: "Alert state changes by rule and transition (pending, firing, resolved, cancelled).",
		}, []string{"rule", "to"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.alertsGauge, m.transitions)
	}
	m.SetConfig(cfg)
	return m
}

// SetConfig applies a new configuration (on reload). Alerts of rules that no
// longer exist resolve at the next cycle.
func (m *Manager) SetConfig(cfg *config.Alerting) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = cfg
	m.rules = map[string]*config.Rule{}
	for _, r := range cfg.Rules {
		m.rules[r.Name] = r
	}
	m.notifiers = map[string]*config.Notifier{}
	for _, n := range cfg.Notifiers {
		m.notifiers[n.Name] = n
	}
}

// Alerts returns the current alerts, sorted by key.
func (m *Manager) Alerts() ([]*State, error) {
	var out []*State
	err := m.db.View(func(tx *Tx) error {
		var err error
		out, err = tx.Alerts()
		return err
	})
	return out, err
}

// cycle is the work of one Process call.
type cycle struct {
	m      *Manager
	tx     *Tx
	now    time.Time
	states map[string]*State
	// evals are this cycle's evaluations by alert key, of the label sets
	// that have an alert or fire: an OK or Unknown evaluation of a label
	// set without one changes nothing (most of 10,000 flows, every cycle).
	evals    map[string]*golden.Evaluation
	enqueued int
	// prevTrue is LastTrue before this cycle, by alert key: a firing alert
	// owes state-synced notifiers a refresh when a multiple of SyncResend since it
	// fired lies between the two.
	prevTrue map[string]time.Time
	// silences are the API silences, read once a cycle when an alert
	// fires (Process writes none).
	silences     []*SilenceRecord
	silencesErr  error
	silencesRead bool
	// pages are the stored pages of alerts not decoded (yet): see
	// loadAlerts.
	pages map[*State]json.RawMessage
	// byIncident indexes alerts by State.Incident, built at first use in
	// a cycle; see members.
	byIncident map[string][]*State
	// clearing are the alerts whose condition cleared this cycle, in key
	// order: they resolve after the notifications. Until they have, they
	// hold their channels (a member firing now joins them, and the last
	// of them to clear resolves), but they hold nothing back and are not
	// "still firing".
	clearing   []*State
	isClearing map[*State]bool
}

// lazyState is an alert's stored state but for its page, kept as stored.
// Decoding a hundred firing alerts' pages every few seconds was most of the
// cost of reading them, and a cycle mostly replaces them (advance renders
// a firing alert's page afresh) or stores them as they were; only a
// resolve reads one. The outer Page shadows State's: the JSON is State's.
type lazyState struct {
	*State
	Page json.RawMessage `json:"page"`
}

// loadAlerts reads every alert state, as Tx.Alerts but for the pages,
// kept in c.pages until page or store needs them.
func (c *cycle) loadAlerts() error {
	return c.tx.b(bucketAlerts).ForEach(func(k, v []byte) error {
		ls := lazyState{State: &State{}}
		if err := json.Unmarshal(v, &ls); err != nil {
			return fmt.Errorf("decode alert %q: %w", k, err)
		}
		c.states[ls.Key] = ls.State
		if len(ls.Page) > 0 {
			c.pages[ls.State] = ls.Page // a copy: valid after the transaction
		}
		return nil
	})
}

// page decodes s's stored page, unless it was already, or replaced.
func (c *cycle) page(s *State) error {
	raw, ok := c.pages[s]
	if !ok {
		return nil
	}
	delete(c.pages, s)
	if err := json.Unmarshal(raw, &s.Page); err != nil {
		return fmt.Errorf("decode alert %q: %w", s.Key, err)
	}
	return nil
}

// store writes s, with its stored page when that was neither read nor
// replaced: the same bytes as decoding and encoding it again.
func (c *cycle) store(s *State) error {
	raw, ok := c.pages[s]
	if !ok {
		return c.tx.PutAlert(s)
	}
	if s.Key == "" {
		return errors.New("alert state without a key")
	}
	return putJSON(c.tx.b(bucketAlerts), []byte(s.Key), lazyState{State: s, Page: raw})
}

// Process applies one evaluation cycle.
func (m *Manager) Process(ctx context.Context, evals []golden.Evaluation, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	var (
		enqueued int
		states   map[string]*State
	)
	err := m.db.Update(func(tx *Tx) error {
		c := &cycle{m: m, tx: tx, now: now, states: map[string]*State{}, evals: map[string]*golden.Evaluation{},
			prevTrue: map[string]time.Time{}, pages: map[*State]json.RawMessage{}, isClearing: map[*State]bool{}}
		if err := c.loadAlerts(); err != nil {
			return err
		}
		if err := c.run(evals); err != nil {
			return err
		}
		enqueued, states = c.enqueued, c.states
		return nil
	})
	if err != nil {
		return fmt.Errorf("processing alert evaluations: %w", err)
	}
	if enqueued > 0 {
		m.kick()
	}
	// The alerts just committed are exactly states: no need to read them
	// back.
	m.updateGauge(states)
	return nil
}

func (m *Manager) updateGauge(states map[string]*State) {
	m.alertsGauge.Reset()
	for _, r := range m.cfg.Rules {
		for _, st := range []string{"pending", "firing", "held"} {
			m.alertsGauge.WithLabelValues(r.Name, st)
		}
	}
	for _, s := range states {
		st := string(s.Phase)
		if s.Phase == Firing && s.Held != "" && !strings.HasPrefix(s.Held, "grouped") {
			st = "held"
		}
		m.alertsGauge.WithLabelValues(s.Rule, st).Inc()
	}
}

func (c *cycle) run(evals []golden.Evaluation) error {
	unknownRules := map[string]bool{}
	for i := range evals {
		e := &evals[i]
		if e.Rule == nil {
			continue
		}
		if e.Status == golden.Unknown {
			unknownRules[e.Rule.Name] = true
		}
		key := e.Key // the engine's, when it names label sets with Key
		if key == "" {
			key = Key(e.Rule.Name, e.Labels)
		}
		// The last evaluation of a key counts: once one is kept, so are
		// the later ones.
		if e.Status != golden.Firing && c.states[key] == nil && c.evals[key] == nil {
			continue
		}
		c.evals[key] = e
	}
	// Conditions first: start pending, refresh, or clear.
	for key, e := range c.evals {
		s := c.states[key]
		switch e.Status {
		case golden.Firing:
			if s == nil {
				s = &State{Key: key, Rule: e.Rule.Name, Labels: maps.Clone(e.Labels), Phase: Pending, ActiveSince: c.now}
				c.states[key] = s
				c.transition(s, "pending")
			}
			c.prevTrue[key] = s.LastTrue
			s.LastTrue = c.now
			s.Severity = e.Severity
			s.Group = e.Rule.Group
		case golden.OK:
			if s != nil && s.Phase == Pending {
				c.transition(s, "cancelled")
				if err := c.tx.DeleteAlert(key); err != nil {
					return err
				}
				delete(c.states, key)
			}
		}
	}
	// Alerts whose label set was not evaluated: their flow or rule is gone.
	// They clear, unless their rule is Unknown this cycle (its data source
	// failed: absence of data is not health).
	for key, s := range c.states {
		if c.evals[key] != nil || unknownRules[s.Rule] {
			continue
		}
		if _, ok := c.m.rules[s.Rule]; ok && s.Phase == Firing && c.now.Sub(s.LastTrue) < c.keepFiring(s) {
			continue
		}
		if err := c.clear(s, "no longer evaluated"); err != nil {
			return err
		}
	}
	// Then transitions, in three passes so that what holds a page back
	// (an inhibiting alert) is known before anything pages: first phases,
	// then notifications, in a stable order, then the resolves of alerts
	// whose condition cleared, so that a member firing in the same cycle
	// as another clears joins the incident instead of a resolve and a new
	// trigger.
	keys := slices.Sorted(maps.Keys(c.states))
	var firing []*State
	for _, key := range keys {
		s := c.states[key]
		if s == nil {
			continue
		}
		fire, err := c.advance(s)
		if err != nil {
			return err
		}
		if fire {
			firing = append(firing, s)
		}
	}
	for _, s := range firing {
		if c.states[s.Key] == nil {
			continue
		}
		if err := c.notifyFiring(s, c.evals[s.Key]); err != nil {
			return err
		}
	}
	for _, s := range c.clearing {
		if err := c.clear(s, "condition cleared"); err != nil {
			return err
		}
	}
	// Alerts were only deleted since keys were sorted.
	for _, key := range keys {
		if s := c.states[key]; s != nil {
			if err := c.store(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cycle) transition(s *State, to string) {
	c.m.transitions.WithLabelValues(s.Rule, to).Inc()
	level := slog.LevelInfo
	if to == "firing" {
		level = slog.LevelWarn
	}
	c.m.log.Log(context.Background(), level, "alert_"+to, "rule", s.Rule, "key", s.Key, "severity", s.Severity)
}

func (c *cycle) rule(s *State) *config.Rule { return c.m.rules[s.Rule] }

func (c *cycle) keepFiring(s *State) time.Duration {
	d := time.Duration(0)
	if r := c.rule(s); r != nil {
		d = r.KeepFiringFor
	}
	// Flapping is judged at the latest firing (the firings in the window
	// up to it), not now: an alert that keeps flapping for hours stays
	// held.
	recent := 0
	if n := len(s.Fires); n > 0 {
		last := s.Fires[n-1]
		for _, t := range s.Fires {
			if last.Sub(t) < flapWindow {
				recent++
			}
		}
	}
	if recent >= flapFires {
		d = max(d, flapHold)
	}
	return d
}

// advance moves one alert along its lifecycle; it reports whether the alert
// is firing on a true condition and so may owe a notification.
func (c *cycle) advance(s *State) (bool, error) {
	e := c.evals[s.Key]
	r := c.rule(s)
	if e != nil && e.Status == golden.Firing {
		delete(c.pages, s)
		s.Page = c.render(s, e, Trigger) // the resolve retells the firing story
	}
	switch s.Phase {
	case Pending:
		if e == nil || e.Status != golden.Firing {
			return false, nil // Unknown: hold the pending timer where it is
		}
		if c.now.Sub(s.ActiveSince) < r.For {
			return false, nil
		}
		s.Phase, s.FiredAt = Firing, c.now
		if err := c.recordFire(s); err != nil {
			return false, err
		}
		c.transition(s, "firing")
		return true, nil
	case Firing:
		if e != nil && e.Status == golden.OK && c.now.Sub(s.LastTrue) >= c.keepFiring(s) {
			c.clearing = append(c.clearing, s) // after the notifications: see run
			c.isClearing[s] = true
			return false, nil
		}
		return e != nil && e.Status == golden.Firing, nil
	}
	return false, nil
}

// recordFire adds this firing to the key's durable history (which
// outlives the alert: a flapping alert is deleted on every resolve) and
// copies the last flapWindow of it into s, for keepFiring.
func (c *cycle) recordFire(s *State) error {
	fires, err := c.tx.Fires(s.Key)
	if err != nil {
		return err
	}
	s.Fires = append(recentFires(fires, c.now), c.now)
	return c.tx.PutFires(s.Key, s.Fires, c.now.Add(-flapWindow))
}

func recentFires(f []time.Time, now time.Time) []time.Time {
	out := f[:0]
	for _, t := range f {
		if now.Sub(t) < flapWindow {
			out = append(out, t)
		}
	}
	return out
}

// channels are the enabled notifiers for severity under rule r.
func (c *cycle) channels(r *config.Rule, severity string) []string {
	names := r.Notify
	if len(names) == 0 {
		names = c.m.cfg.Routes[severity]
	}
	var out []string
	for _, n := range names {
		if nt := c.m.notifiers[n]; nt != nil && nt.Disabled == "" {
			out = append(out, n)
		}
	}
	return out
}

// notifyFiring sends what a firing alert owes, as a member of its incident
// (its group's, or its own). The incident is open on a channel while a
// firing member whose severity routes there holds it (State.Notified), so
// its severity is the highest of its firing members:
//   - a channel its severity routes to that no member holds yet gets a
//     Trigger with this member's story, under the incident's dedup key, in
//     this cycle (a critical member joining a warning incident pages);
//   - a channel another member holds gets a note in its thread;
//   - a channel its severity no longer routes to (for keep_firing_for) is
//     released, and resolved if no other member holds it;
//   - a reminder after the repeat interval, an Alertmanager refresh.
//
// Unless it is held (silenced, inhibited).
func (c *cycle) notifyFiring(s *State, e *golden.Evaluation) error {
	r := c.rule(s)
	if held := c.held(s, e); held != "" {
		if s.Held != held {
			c.m.log.Info("alert_held", "rule", s.Rule, "key", s.Key, "why", held)
		}
		s.Held = held
		return nil
	}
	// A member that joined an incident under an older release ("grouped
	// with"): its channels were told by the leader's trigger and its note.
	joined := strings.HasPrefix(s.Held, "grouped with ")
	s.Held = ""
	incident := c.incident(s)
	c.join(s, incident)
	if s.IncidentSince.IsZero() {
		s.IncidentSince = c.incidentSince(s)
	}
	want := c.channels(r, s.Severity)
	var drop []string
	for _, ch := range s.Notified {
		if slices.Contains(want, ch) {
			delete(s.Unrouted, ch)
			continue
		}
		if _, ok := s.Unrouted[ch]; !ok {
			if s.Unrouted == nil {
				s.Unrouted = map[string]time.Time{}
			}
			s.Unrouted[ch] = c.now
		}
		if c.now.Sub(s.Unrouted[ch]) >= c.keepFiring(s) {
			drop = append(drop, ch)
		}
	}
	if len(s.Unrouted) == 0 {
		s.Unrouted = nil // the usual case, stored as nothing
	}
	if len(drop) > 0 {
		if err := c.release(s, drop, "now "+s.Severity, false); err != nil {
			return err
		}
	}
	var trigger, note []string
	for _, ch := range want {
		switch {
		case slices.Contains(s.Notified, ch):
		case c.heldByPeer(s, ch):
			note = append(note, ch)
		default:
			trigger = append(trigger, ch)
		}
	}
	if len(trigger) > 0 {
		// Paging again without firing again (its severity rose back, a
		// silence ended) counts as a firing for flap damping: a burn rate
		// that swings between critical and warning pages flapFires times,
		// then holds the page for flapHold.
		if n := len(s.Fires); n == 0 || !s.Fires[n-1].Equal(c.now) {
			if err := c.recordFire(s); err != nil {
				return err
			}
		}
		page := c.render(s, e, Trigger)
		for _, ch := range trigger {
			if err := c.enqueue(ch, incident, page); err != nil {
				return err
			}
		}
	}
	if len(note) > 0 && !joined {
		n := c.render(s, e, Reminder)
		n.Summary = "also firing: " + n.Summary
		for _, ch := range note {
			if err := c.enqueue(ch, incident, n); err != nil {
				return err
			}
		}
	}
	if fresh := slices.Concat(trigger, note); len(fresh) > 0 {
		s.Notified = append(s.Notified, fresh...)
		s.LastNotified = c.now
		return nil
	}
	if ri := c.m.cfg.RepeatInterval; ri > 0 && len(s.Notified) > 0 && c.now.Sub(s.LastNotified) >= ri {
		rem := c.render(s, e, Reminder)
		rem.Summary = "still firing: " + rem.Summary
		for _, ch := range s.Notified {
			if err := c.enqueue(ch, incident, rem); err != nil {
				return err
			}
		}
		s.LastNotified = c.now
		return nil // state-synced notifiers had their refresh too
	}
	if c.syncResendDue(s) {
		// Not LastNotified: that paces the human reminders.
		rem := c.render(s, e, Reminder)
		for _, ch := range c.stateSynced(s.Notified) {
			if err := c.enqueue(ch, incident, rem); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncResendDue says whether firing alert s owes state-synced notifiers a
// refresh this cycle: a multiple of SyncResend since it fired was crossed
// since its previous true evaluation. Derived from durable state, so the
// rhythm survives restarts, and a restart after a long gap refreshes at once.
func (c *cycle) syncResendDue(s *State) bool {
	prev, ok := c.prevTrue[s.Key]
	if !ok || s.FiredAt.IsZero() {
		return false
	}
	return c.now.Sub(s.FiredAt)/SyncResend > prev.Sub(s.FiredAt)/SyncResend
}

// stateSynced are the enabled state-synced notifiers among names.
func (c *cycle) stateSynced(names []string) []string {
	var out []string
	for _, n := range names {
		if nt := c.m.notifiers[n]; nt != nil && nt.Traits.StateSync && nt.Disabled == "" {
			out = append(out, n)
		}
	}
	return out
}

// held says why a firing alert must not notify now, or "".
func (c *cycle) held(s *State, e *golden.Evaluation) string {
	for _, sil := range c.m.cfg.Silences {
		if !c.now.Before(sil.Starts) && c.now.Before(sil.Ends) && matchesAlert(sil.Matchers, s) {
			return "silenced until " + sil.Ends.UTC().Format(time.RFC3339)
		}
	}
	for _, mw := range c.m.cfg.Maintenance {
		if inMaintenance(mw, c.now) && matchesAlert(mw.Matchers, s) {
			return "in a maintenance window (" + mw.Cron + " for " + mw.Duration.String() + ")"
		}
	}
	if !c.silencesRead {
		c.silences, c.silencesErr = c.tx.Silences()
		c.silencesRead = true
	}
	if c.silencesErr == nil {
		for _, sil := range c.silences {
			if !c.now.Before(sil.Starts) && c.now.Before(sil.Ends) && matchesAlert(sil.Matchers, s) {
				return "silenced until " + sil.Ends.UTC().Format(time.RFC3339) + " (" + sil.ID + ")"
			}
		}
	}
	// Inhibition: an alert of a rule that inhibits this one, whose
	// dependency (if it names one) is the one this alert failed at. A
	// pending inhibitor holds too: when both conditions start together, the
	// cause must not lose the race to its symptom.
	dep := ""
	if e != nil {
		dep = e.Evidence.Dependency
	}
	for _, o := range c.states {
		if o == s || o.Held != "" && !strings.HasPrefix(o.Held, "grouped") || c.isClearing[o] {
			continue
		}
		or := c.m.rules[o.Rule]
		if or == nil || !slices.Contains(or.Inhibits, s.Rule) {
			continue
		}
		if od := o.Labels["dependency"]; od != "" && od != dep {
			continue
		}
		return "inhibited by " + o.Rule
	}
	return ""
}

// matchesAlert says whether every matcher of m (at least one) holds for
// s's labels with its severity and rule (which win over labels of those
// names), without building that map for every firing alert every cycle.
func matchesAlert(m map[string]string, s *State) bool {
	for k, v := range m {
		var have string
		switch k {
		case "severity":
			have = s.Severity
		case "rule":
			have = s.Rule
		default:
			have = s.Labels[k]
		}
		if have != v {
			return false
		}
	}
	return len(m) > 0
}

func inMaintenance(mw config.Maintenance, now time.Time) bool {
	sched, err := config.ParseCron(mw.Cron)
	if err != nil {
		return false
	}
	start := sched.Next(now.Add(-mw.Duration).In(mw.Location))
	return !start.IsZero() && !start.After(now)
}

// incident is the dedup key an alert pages under: its group's, or its own.
func (c *cycle) incident(s *State) string {
	if s.Group != "" {
		return Key("group:"+s.Group, nil)
	}
	return s.Key
}

// join makes s a member of incident, in the cycle's index of members.
func (c *cycle) join(s *State, incident string) {
	if s.Incident == incident && c.byIncident != nil {
		return // indexed when the index was built, or when it joined
	}
	s.Incident = incident
	if c.byIncident != nil {
		c.byIncident[incident] = append(c.byIncident[incident], s)
	}
}

// peers calls fn for the other firing members of s's incident that hold a
// channel, until fn returns false. The index is built once a cycle: a
// group of 10,000 flows must not scan every alert for every member.
func (c *cycle) peers(s *State, fn func(o *State) bool) {
	if s.Incident == "" {
		return
	}
	if c.byIncident == nil {
		c.byIncident = map[string][]*State{}
		for _, o := range c.states {
			if o.Incident != "" {
				c.byIncident[o.Incident] = append(c.byIncident[o.Incident], o)
			}
		}
	}
	for _, o := range c.byIncident[s.Incident] {
		// Entries go stale as alerts clear or move: check them.
		if o == s || c.states[o.Key] != o || o.Phase != Firing || o.Incident != s.Incident || len(o.Notified) == 0 {
			continue
		}
		if !fn(o) {
			return
		}
	}
}

// members are the other members of s's incident still firing (not
// clearing this cycle) that hold a channel, by key.
func (c *cycle) members(s *State) []*State {
	var out []*State
	c.peers(s, func(o *State) bool {
		if !c.isClearing[o] {
			out = append(out, o)
		}
		return true
	})
	slices.SortFunc(out, func(a, b *State) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// heldByPeer says whether another firing member of s's incident holds channel
// ch (has told it).
func (c *cycle) heldByPeer(s *State, ch string) bool {
	found := false
	c.peers(s, func(o *State) bool {
		found = slices.Contains(o.Notified, ch)
		return !found
	})
	return found
}

// incidentSince is when s's incident began: the first failure of the
// members holding it, or s's own when it opens the incident.
func (c *cycle) incidentSince(s *State) time.Time {
	since := s.ActiveSince
	if !s.Page.Since.IsZero() && s.Page.Since.Before(since) {
		since = s.Page.Since
	}
	for _, o := range c.members(s) {
		if !o.IncidentSince.IsZero() && o.IncidentSince.Before(since) {
			since = o.IncidentSince
		}
	}
	return since
}

// firingList names members as "checkout_slo (warning), gateway_success
// (critical)".
func firingList(ms []*State) string {
	parts := make([]string, len(ms))
	for i, o := range ms {
		parts[i] = o.Rule + " (" + o.Severity + ")"
	}
	return strings.Join(parts, ", ")
}

// clear ends an alert: it releases every channel it holds.
func (c *cycle) clear(s *State, why string) error {
	defer func() {
		delete(c.states, s.Key)
	}()
	if err := c.tx.DeleteAlert(s.Key); err != nil {
		return err
	}
	if s.Phase != Firing {
		c.transition(s, "cancelled")
		return nil
	}
	c.transition(s, "resolved")
	if len(s.Notified) == 0 {
		return nil // never paged (held the whole time): nothing to resolve
	}
	return c.release(s, slices.Clone(s.Notified), why, true)
}

// release gives up s's hold on channels chs: it cleared, or its severity
// no longer routes there. Per channel:
//   - Alertmanager holds each member as an alert of its own: it resolves;
//   - another member still holds the channel: the incident stays open
//     there; a member that cleared says so in the thread (PagerDuty, which
//     shows no notes, is told nothing);
//   - nobody holds it: the incident resolves there, naming the members
//     still firing elsewhere (e.g. PagerDuty resolves while a warning keeps
//     the Slack thread open).
func (c *cycle) release(s *State, chs []string, why string, cleared bool) error {
	if err := c.page(s); err != nil {
		return err
	}
	others := c.members(s)
	base := s.Page
	base.At, base.DedupKey = c.now, s.Incident
	base.Since = cmp.Or(s.IncidentSince, base.Since)
	base.Summary = resolveSummary(base.Summary)
	for _, ch := range chs {
		nt := c.m.notifiers[ch]
		var p Page
		switch held := c.heldByPeer(s, ch); {
		case nt != nil && nt.Traits.StateSync:
			p = base
			p.Kind, p.Since = Resolve, s.Page.Since
			p.Details = append([]Field{{Name: "resolved", Value: why}}, p.Details...)
		case held:
			// Held by a member still firing, or by one that clears later
			// this cycle and resolves the channel then.
			var still []*State
			for _, m := range others {
				if slices.Contains(m.Notified, ch) {
					still = append(still, m)
				}
			}
			if !cleared || len(still) == 0 || nt != nil && nt.Traits.NoNotes {
				break
			}
			p = base
			p.Kind = Reminder
			p.Note = truncateBytes(fmt.Sprintf("%s resolved (%s); still firing: %s", s.Rule, why, firingList(still)), 1024)
		default:
			p = base
			p.Kind = Resolve
			p.Details = append([]Field{{Name: "resolved", Value: why}}, p.Details...)
			if len(others) > 0 {
				p.Details = append(p.Details[:1:1], append([]Field{{Name: "still firing", Value: firingList(others)}}, p.Details[1:]...)...)
			}
		}
		if p.Kind != "" {
			if err := c.enqueue(ch, s.Incident, p); err != nil {
				return err
			}
		}
		s.Notified = slices.DeleteFunc(s.Notified, func(n string) bool { return n == ch })
		delete(s.Unrouted, ch)
	}
	return nil
}

// elapsed matches the engine's " for 2m" (since the trouble began) in a
// firing summary.
var elapsed = regexp.MustCompile(` for \d+[dhms](\d+[hms])?\b`)

// resolveSummary is the firing story a resolve retells, without its own
// elapsed time: a resolve states one duration, from the first failure to
// the resolve (Page.Since to Page.At), which the notifiers render as
// "Resolved after 47m". The firing summary's "for 20s" was true when it
// was written and reads as a second, conflicting duration on a resolve.
func resolveSummary(summary string) string {
	return truncateBytes(elapsed.ReplaceAllString(summary, ""), 1024)
}

func (c *cycle) enqueue(notifier, incident string, p Page) error {
	n := &Notification{Notifier: notifier, AlertKey: incident, Page: p, Created: c.now}
	if err := c.tx.Enqueue(n); err != nil {
		return err
	}
	c.enqueued++
	c.m.log.Info("page_queued", "notifier", notifier, "kind", string(p.Kind), "dedup_key", p.DedupKey, "rule", p.Rule)
	return nil
}

// render makes the page of an alert from its latest evaluation.
func (c *cycle) render(s *State, e *golden.Evaluation, kind Kind) Page {
	ev := e.Evidence
	p := Page{
		Kind:     kind,
		DedupKey: c.incident(s),
		Rule:     s.Rule,
		Group:    s.Group,
		Severity: s.Severity,
		Summary:  truncateBytes(e.Summary, 1024),
		Source:   c.m.opts.Source,
		Labels:   maps.Clone(s.Labels),
		At:       c.now,
		Since:    s.ActiveSince,
		Class:    ev.Class,
	}
	if p.Group == "" {
		p.Group = s.Rule
	}
	if p.Summary == "" {
		p.Summary = truncateBytes(s.Rule+": "+e.Value, 1024)
	}
	if !ev.Since.IsZero() {
		p.Since = ev.Since
	}
	switch {
	case ev.Flow != "":
		p.Component = ev.Flow
	case ev.Dependency != "":
		p.Component = ev.Dependency
	}
	if len(ev.RegionsFailing) > 0 {
		p.Source = fmt.Sprintf("%s, failing in %s", c.m.opts.Source, strings.Join(ev.RegionsFailing, ", "))
	}
	add := func(name, value string) {
		if value != "" {
			p.Details = append(p.Details, Field{Name: name, Value: value})
		}
	}
	add("rule", s.Rule)
	add("severity", s.Severity)
	add("condition", e.Value)
	add("flow", ev.Flow)
	add("step", ev.Step)
	add("dependency", ev.Dependency)
	add("expectation", ev.Expectation)
	add("actual", ev.Actual)
	add("failure", ev.Message)
	add("class", ev.Class)
	// Only a list that names someone: a burn rate or a dependency rule has
	// regions in its evidence but none failing by itself ("0 of 1 ()").
	if ev.RegionsTotal > 0 && len(ev.RegionsFailing) > 0 {
		add("regions failing", fmt.Sprintf("%d of %d (%s)", len(ev.RegionsFailing), ev.RegionsTotal, strings.Join(ev.RegionsFailing, ", ")))
	}
	if ev.Retries > 0 {
		add("confirmed by", plural(ev.Retries, "immediate retry", "immediate retries"))
	}
	if !p.Since.IsZero() {
		add("since", p.Since.UTC().Format(time.RFC3339))
	}
	add("trace ids", strings.Join(ev.TraceIDs, " "))
	for _, sig := range e.Signals {
		add(sig.Name, sig.Text)
	}
	for _, o := range c.states {
		if strings.HasPrefix(o.Held, "inhibited by "+s.Rule) {
			add("held back", o.Rule+" "+labelString(o.Labels))
		}
	}
	trace := ""
	if len(ev.TraceIDs) > 0 {
		trace = ev.TraceIDs[0]
	}
	vars := map[string]string{"flow": ev.Flow, "step": ev.Step, "trace_id": trace, "rule": s.Rule,
		"dependency": ev.Dependency, "region": strings.Join(ev.RegionsFailing, ",")}
links:
	for _, l := range c.m.cfg.Links {
		u := l.URL
		for k, v := range vars {
			if !strings.Contains(u, "{"+k+"}") {
				continue
			}
			if v == "" {
				continue links // a dashboard for no flow is no help
			}
			u = strings.ReplaceAll(u, "{"+k+"}", url.QueryEscape(v))
		}
		p.Links = append(p.Links, Link{Name: l.Name, URL: u})
	}
	if c.m.opts.StatusURL != "" {
		target := strings.TrimSuffix(c.m.opts.StatusURL, "/") + "/"
		if trace != "" {
			target += "runs/" + trace
			if ev.Flow != "" { // the run page looks there first
				target += "?flow=" + url.QueryEscape(ev.Flow)
			}
		} else if ev.Flow != "" {
			target += "flows/" + url.PathEscape(ev.Flow)
		}
		p.Links = append(p.Links, Link{Name: "prober", URL: target})
	}
	return p
}

// Key is an alert's dedup key: rule and labels, never region, so one
// incident spans regions and every replica computes the same key. Readable
// when short, hashed when it would exceed PagerDuty's 255 bytes.
func Key(rule string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString("prober/")
	b.WriteString(rule)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k == "rule" || k == "region" {
			continue
		}
		b.WriteString("/")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(labels[k])
	}
	if b.Len() <= 200 {
		return b.String()
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "prober/" + truncateBytes(rule, 100) + "/" + hex.EncodeToString(sum[:16])
}

func labelString(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if k != "rule" {
			parts = append(parts, k+"="+l[k])
		}
	}
	return strings.Join(parts, ",")
}

// AddSilence stores a silence made through the API: it survives restarts
// and applies from the next evaluation.
func (m *Manager) AddSilence(s SilenceRecord) (*SilenceRecord, error) {
	if len(s.Matchers) == 0 {
		return nil, fmt.Errorf("a silence needs matchers; an empty one would mute everything")
	}
	if s.Starts.IsZero() {
		s.Starts = time.Now()
	}
	if !s.Ends.After(s.Starts) {
		return nil, fmt.Errorf("a silence must end after it starts")
	}
	if s.Ends.Sub(s.Starts) > 90*24*time.Hour {
		return nil, fmt.Errorf("a silence lasts at most 90 days; use a maintenance window for recurring quiet")
	}
	var id [8]byte
	sum := sha256.Sum256([]byte(fmt.Sprint(time.Now().UnixNano(), s.Matchers, s.Comment)))
	copy(id[:], sum[:])
	s.ID = hex.EncodeToString(id[:])
	s.Created = time.Now()
	if err := m.db.Update(func(tx *Tx) error { return tx.PutSilence(&s) }); err != nil {
		return nil, fmt.Errorf("storing the silence: %w", err)
	}
	m.log.Info("silence_added", "id", s.ID, "matchers", labelString(s.Matchers), "ends", s.Ends.UTC().Format(time.RFC3339),
		"created_by", s.CreatedBy)
	return &s, nil
}

// RemoveSilence deletes an API silence.
func (m *Manager) RemoveSilence(id string) error {
	err := m.db.Update(func(tx *Tx) error { return tx.DeleteSilence(id) })
	if err == nil {
		m.log.Info("silence_removed", "id", id)
	}
	return err
}

// Silences lists the API silences that have not ended.
func (m *Manager) Silences() ([]*SilenceRecord, error) {
	var out []*SilenceRecord
	err := m.db.View(func(tx *Tx) error {
		all, err := tx.Silences()
		for _, s := range all {
			if time.Now().Before(s.Ends) {
				out = append(out, s)
			}
		}
		return err
	})
	return out, err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
