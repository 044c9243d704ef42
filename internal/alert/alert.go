// Package alert turns rule evaluations into pages that are sent once and
// never lost: the alert lifecycle (pending, firing, resolved; hysteresis,
// dedup, incidents, silences, inhibition), a durable outbox on disk (bbolt),
// and the dispatcher that delivers from it with retries. The notifiers
// (PagerDuty Events v2, Slack, Alertmanager API v2, console, the generic
// webhook, Opsgenie, Microsoft Teams, e-mail) live in their own packages
// under alert/notify and plug in as NotifierPlugin; this package holds
// only their seam and shared plumbing.
package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// Kind is what a notification does to an incident.
type Kind string

const (
	Trigger  Kind = "trigger"  // open (or join) the incident
	Reminder Kind = "reminder" // still firing after the repeat interval (Slack thread; PagerDuty: nothing)
	Resolve  Kind = "resolve"  // close it
)

// Field is one labelled fact of a page, in display order.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Link is a URL a page offers (dashboard, log search by trace id, runbook).
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Page is what a notifier delivers, independent of the channel: everything
// is decided and rendered before it enters the outbox, so a delivery after a
// restart sends exactly what was decided.
type Page struct {
	Kind Kind `json:"kind"`
	// DedupKey identifies the incident: the same for its trigger, reminders
	// and resolve, and for every replica and restart (<= 255 bytes).
	DedupKey string `json:"dedup_key"`
	Rule     string `json:"rule"`
	Group    string `json:"group"`
	// Severity is critical, error, warning or info (PagerDuty's enum).
	Severity string `json:"severity"`
	// Summary is the one line that reads like a story (<= 1024 bytes).
	Summary string `json:"summary"`
	// Note, on a Reminder, is a thread note's own words about the
	// incident ("checkout_failing resolved (condition cleared); still
	// firing: checkout_slo (warning)"), shown instead of "Still failing":
	// its Rule may have resolved while the incident stays open.
	Note string `json:"note,omitempty"`
	// Source is where it was seen from: "prober (regions a, b, c)".
	Source    string            `json:"source"`
	Component string            `json:"component,omitempty"` // the flow or dependency
	Class     string            `json:"class,omitempty"`     // the failure class
	Labels    map[string]string `json:"labels,omitempty"`
	Details   []Field           `json:"details,omitempty"`
	Links     []Link            `json:"links,omitempty"`
	// At is when the transition happened; Since when the condition began.
	At    time.Time `json:"at"`
	Since time.Time `json:"since"`
}

// Notification is one page to one notifier, as stored in the outbox.
type Notification struct {
	ID       uint64 `json:"id"` // assigned by the outbox, increasing
	Notifier string `json:"notifier"`
	// AlertKey orders deliveries: one alert's notifications to one
	// notifier are delivered in ID order, never overtaking each other.
	AlertKey    string    `json:"alert_key"`
	Page        Page      `json:"page"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// Failed is when a dead letter failed for good (zero while pending).
	Failed time.Time `json:"failed,omitzero"`
}

// Notifier delivers pages to one destination.
type Notifier interface {
	Name() string
	Type() config.NotifierType
	// Send delivers p. thread is what the previous successful Send for the
	// same alert returned ("" at first): e.g. the Slack message to thread
	// under and update. Send returns the thread to keep. Errors are
	// *DeliveryError when the notifier can tell retryable from permanent;
	// any other error is retried.
	Send(ctx context.Context, p *Page, thread string) (string, error)
}

// DeliveryError is a failed delivery, classified.
type DeliveryError struct {
	// Permanent errors (4xx other than 429: a bad routing key, an invalid
	// event) are not retried: retrying cannot fix them. They are logged
	// with the service's own error text.
	Permanent bool
	// RetryAfter is the service's requested wait (429 Retry-After), if any.
	RetryAfter time.Duration
	Status     int    // HTTP status, if any
	Msg        string // the service's error text, redacted
}

func (e *DeliveryError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Msg)
	}
	return e.Msg
}

// Phase of an alert.
type Phase string

const (
	Pending Phase = "pending" // the condition holds, not yet for long enough
	Firing  Phase = "firing"
)

// State is one alert's durable state. An alert that resolves is deleted
// once its resolve is in the outbox.
type State struct {
	Key    string            `json:"key"` // the dedup key
	Rule   string            `json:"rule"`
	Group  string            `json:"group"`
	Labels map[string]string `json:"labels"`
	Phase  Phase             `json:"phase"`
	// ActiveSince is when the condition began to hold (continuously);
	// LastTrue the last evaluation where it held.
	ActiveSince time.Time `json:"active_since"`
	LastTrue    time.Time `json:"last_true"`
	FiredAt     time.Time `json:"fired_at,omitzero"`
	Severity    string    `json:"severity"`
	// Notified are the channels this alert holds its incident open on:
	// those its severity routes to, told by its trigger or by a note when
	// another member had opened the incident there. A channel resolves
	// when its last holder releases it.
	Notified []string `json:"notified,omitempty"`
	// Unrouted are the channels it holds that its severity no longer
	// routes to, since the first cycle it did not: each is released after
	// keep_firing_for.
	Unrouted map[string]time.Time `json:"unrouted,omitempty"`
	// IncidentSince is when its incident began (the first failure of the
	// members holding it when it joined): resolves count from there.
	IncidentSince time.Time `json:"incident_since,omitzero"`
	LastNotified  time.Time `json:"last_notified,omitzero"`
	// Held says why a firing alert did not page: "silenced", "inhibited by
	// <rule>" ("grouped with <rule>" was written by older releases for a
	// member that joined an incident).
	Held string `json:"held,omitempty"`
	// Incident is the dedup key paged for this alert: its group's, or its
	// own.
	Incident string `json:"incident,omitempty"`
	// Fires are the times its key fired within flapWindow up to this
	// firing, read from the durable history (Tx.Fires), for flap damping.
	Fires []time.Time `json:"fires,omitempty"`
	// Page is the last page rendered for it.
	Page Page `json:"page"`
}

// NotifierPlugin is a notifier type in its own package (alert/notify/...):
// config decodes and validates its block through it (config.NotifierKind),
// and New builds the notifier from the decoded block. The daemon's one
// table of plug-ins is what registers it.
type NotifierPlugin interface {
	config.NotifierKind
	// New builds the notifier of n, whose Spec is what Decode returned.
	New(n *config.Notifier, o NotifierOptions) (Notifier, error)
	// Example is a valid block of the type, in YAML flow style: the
	// daemon's tests load and build it.
	Example() string
}

// SecretChecker is a NotifierPlugin that checks its notifier's resolved
// secrets against the shapes its service issues (validate --secrets), so
// that a truncated or mistyped key fails validation instead of the first
// page at night. Each problem is one message that describes the secret
// (its length, the prefix expected) and never quotes it.
type SecretChecker interface {
	CheckSecrets(n *config.Notifier) []string
}
