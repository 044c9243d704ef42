package alert

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// What became of the pages: read from the outbox and the dead letters, so
// the status page, the API, the metrics and the heartbeat tell the truth
// about delivery rather than about intent.

// Delivery states of a notification, or of an incident on one channel.
const (
	DeliveryDelivered = "delivered" // the service accepted it
	DeliverySending   = "sending"   // in the outbox, not attempted yet
	DeliveryRetrying  = "retrying"  // in the outbox after a failed attempt
	DeliveryFailed    = "failed"    // a dead letter: failed for good
)

// Undelivered is a notification not delivered (yet): pending in the outbox
// or a dead letter.
type Undelivered struct {
	ID       uint64
	Notifier string
	AlertKey string
	Kind     Kind
	Rule     string
	Severity string
	State    string // sending, retrying, failed
	Attempts int
	Created  time.Time
	// NextAttempt is when a retrying notification is tried again.
	NextAttempt time.Time
	// Failed is when a dead letter failed for good.
	Failed time.Time
	// Error is the service's answer to the last attempt (notifiers redact
	// their secrets from it).
	Error string
	// Open says a dead letter is newer than its notifier's last successful
	// delivery: nothing has shown since that the notifier can deliver.
	Open bool
}

// Undelivered lists the outbox (by ID) and then the dead letters (by ID).
func (d *Dispatcher) Undelivered() ([]Undelivered, error) {
	var out []Undelivered
	err := d.db.View(func(tx *Tx) error {
		if err := tx.eachPending(func(n *Notification) error {
			u := undelivered(n)
			u.State = DeliverySending
			if n.Attempts > 0 {
				u.State, u.NextAttempt = DeliveryRetrying, n.NextAttempt
			}
			out = append(out, u)
			return nil
		}); err != nil {
			return err
		}
		last := map[string]time.Time{}
		return tx.eachDead(func(n *Notification) error {
			t, ok := last[n.Notifier]
			if !ok {
				var err error
				if t, err = tx.lastDelivery(n.Notifier); err != nil {
					return err
				}
				last[n.Notifier] = t
			}
			u := undelivered(n)
			u.State, u.Failed = DeliveryFailed, n.Failed
			u.Open = !n.Failed.IsZero() && n.Failed.After(t)
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

func undelivered(n *Notification) Undelivered {
	return Undelivered{ID: n.ID, Notifier: n.Notifier, AlertKey: n.AlertKey, Kind: n.Page.Kind, Rule: n.Page.Rule,
		Severity: n.Page.Severity, Attempts: n.Attempts, Created: n.Created, Error: n.LastError}
}

// ChannelDelivery is how an alert's incident fared on one channel: the
// worst of its notifications there (failed, then retrying, then sending;
// delivered when none is left).
type ChannelDelivery struct {
	Notifier string
	State    string
	// Last is the notification that decided State (zero when delivered).
	Last Undelivered
}

// Channels reports the delivery of s's incident on each channel it was
// notified to, from und (Dispatcher.Undelivered). Dead letters count from
// the time s fired: an older one belongs to an earlier incident.
func Channels(s *State, und []Undelivered) []ChannelDelivery {
	incident := s.Incident
	if incident == "" {
		incident = s.Key
	}
	rank := map[string]int{DeliveryDelivered: 0, DeliverySending: 1, DeliveryRetrying: 2, DeliveryFailed: 3}
	out := make([]ChannelDelivery, 0, len(s.Notified))
	for _, ch := range s.Notified {
		c := ChannelDelivery{Notifier: ch, State: DeliveryDelivered}
		for _, u := range und {
			if u.Notifier != ch || u.AlertKey != incident {
				continue
			}
			if u.State == DeliveryFailed && u.Created.Before(s.FiredAt) {
				continue
			}
			if rank[u.State] > rank[c.State] {
				c.State, c.Last = u.State, u
			}
		}
		out = append(out, c)
	}
	return out
}

// DeliveryTrouble says why pages to notifiers cannot be trusted to arrive,
// "" when they can: an open dead letter (a permanent failure not followed
// by a delivery), or a page waiting in the outbox longer than maxAge. The
// heartbeat withholds its ping while there is trouble for a paging
// notifier, so that a dead man's switch pages someone when pages cannot be
// delivered.
func (d *Dispatcher) DeliveryTrouble(notifiers []string, maxAge time.Duration) (string, error) {
	und, err := d.Undelivered()
	if err != nil {
		return "", err
	}
	now := d.now()
	var why []string
	for _, name := range notifiers {
		var dead, late int
		var lastErr string
		var oldest time.Time
		for _, u := range und {
			if u.Notifier != name {
				continue
			}
			switch {
			case u.State == DeliveryFailed && u.Open:
				dead++
				lastErr = u.Error
			case u.State != DeliveryFailed && now.Sub(u.Created) > maxAge:
				late++
				if oldest.IsZero() || u.Created.Before(oldest) {
					oldest = u.Created
				}
				if u.Error != "" {
					lastErr = u.Error
				}
			}
		}
		if dead == 0 && late == 0 {
			continue
		}
		var parts []string
		if dead > 0 {
			parts = append(parts, fmt.Sprintf("%d page(s) failed for good since its last delivery", dead))
		}
		if late > 0 {
			parts = append(parts, fmt.Sprintf("%d page(s) undelivered for more than %s (oldest %s)", late, maxAge, now.Sub(oldest).Round(time.Second)))
		}
		s := name + ": " + strings.Join(parts, ", ")
		if lastErr != "" {
			s += " (last error: " + clip(lastErr, 200) + ")"
		}
		why = append(why, s)
	}
	slices.Sort(why)
	return strings.Join(why, "; "), nil
}

// RetryFailed puts the open dead letters of notifier (every configured
// notifier when "") back into the outbox and wakes the workers: after the
// cause is fixed (a routing key, a token), the pages that failed for good
// are sent after all, and the heartbeat resumes once they are delivered.
func (d *Dispatcher) RetryFailed(notifier string) (int, error) {
	var names []string
	for _, w := range d.order {
		if notifier == "" || w.name == notifier {
			names = append(names, w.name)
		}
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("no notifier %q is configured", notifier)
	}
	total := 0
	err := d.db.Update(func(tx *Tx) error {
		total = 0
		for _, name := range names {
			n, err := tx.requeueOpenDead(name, d.now())
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("requeueing dead letters: %w", err)
	}
	if total > 0 {
		d.log.Info("dead_letters_requeued", "notifier", notifier, "count", total)
		d.Kick()
	}
	return total, nil
}
