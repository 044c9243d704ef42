package alert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbox: notifications waiting for delivery, keyed by ID (big-endian,
// so bbolt's key order is ID order), the dead letters, and the thread
// memory per (notifier, alert key). The dispatcher is the only reader and
// writer besides Enqueue.

// Enqueue adds n to the outbox. It assigns n.ID (increasing, never reused)
// and sets Created and NextAttempt to now when they are zero. The caller
// should Kick the dispatcher after the transaction commits.
func (tx *Tx) Enqueue(n *Notification) error {
	if n.Notifier == "" {
		return errors.New("enqueue: notification without a notifier")
	}
	b := tx.b(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	n.ID = id
	if n.Created.IsZero() {
		n.Created = time.Now()
	}
	if n.NextAttempt.IsZero() {
		n.NextAttempt = n.Created
	}
	return putJSON(b, u64key(id), n)
}

// Pending returns every undelivered notification, by ID.
func (tx *Tx) Pending() ([]*Notification, error) {
	return listNotifications(tx.b(bucketOutbox))
}

// Dead returns the dead letters (permanently failed notifications, the
// last deadLetterCap of them), by ID.
func (tx *Tx) Dead() ([]*Notification, error) {
	return listNotifications(tx.b(bucketDead))
}

func listNotifications(b *bolt.Bucket) ([]*Notification, error) {
	var out []*Notification
	err := eachNotification(b, func(n *Notification) error {
		out = append(out, n)
		return nil
	})
	return out, err
}

// notification reads one outbox entry; nil if it is gone.
func (tx *Tx) notification(id uint64) (*Notification, error) {
	var n Notification
	ok, err := getJSON(tx.b(bucketOutbox), u64key(id), &n)
	if !ok || err != nil {
		return nil, err
	}
	return &n, nil
}

// putNotification rewrites an outbox entry (attempts, next attempt).
func (tx *Tx) putNotification(n *Notification) error {
	return putJSON(tx.b(bucketOutbox), u64key(n.ID), n)
}

// removeNotification deletes an outbox entry.
func (tx *Tx) removeNotification(id uint64) error {
	return tx.b(bucketOutbox).Delete(u64key(id))
}

// bury moves n from the outbox to the dead letters, dropping the oldest
// dead letters beyond the cap.
func (tx *Tx) bury(n *Notification) error {
	if err := tx.removeNotification(n.ID); err != nil {
		return err
	}
	b := tx.b(bucketDead)
	if err := putJSON(b, u64key(n.ID), n); err != nil {
		return err
	}
	// Count by walking (Stats misses this transaction's writes); the
	// bucket holds at most deadLetterCap+1 keys.
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys[:max(len(keys)-deadLetterCap, 0)] {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func threadKey(notifier, alertKey string) []byte {
	return []byte(notifier + "\x00" + alertKey)
}

// Thread returns the thread memory of (notifier, alert key): what the last
// successful Send returned, "" if none.
func (tx *Tx) Thread(notifier, alertKey string) (string, error) {
	return string(tx.b(bucketThreads).Get(threadKey(notifier, alertKey))), nil
}

// setThread stores the thread memory; "" deletes it.
func (tx *Tx) setThread(notifier, alertKey, thread string) error {
	b := tx.b(bucketThreads)
	if thread == "" {
		return b.Delete(threadKey(notifier, alertKey))
	}
	return b.Put(threadKey(notifier, alertKey), []byte(thread))
}

// eachPending calls fn for every outbox entry, by ID.
func (tx *Tx) eachPending(fn func(n *Notification) error) error {
	return eachNotification(tx.b(bucketOutbox), fn)
}

// eachDead calls fn for every dead letter, by ID.
func (tx *Tx) eachDead(fn func(n *Notification) error) error {
	return eachNotification(tx.b(bucketDead), fn)
}

func eachNotification(b *bolt.Bucket, fn func(n *Notification) error) error {
	return b.ForEach(func(k, v []byte) error {
		var n Notification
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("decode notification %d: %w", binary.BigEndian.Uint64(k), err)
		}
		return fn(&n)
	})
}

// lastDeliveryKey is the meta key of a notifier's last successful delivery.
func lastDeliveryKey(notifier string) string { return "last_delivery\x00" + notifier }

// setLastDelivery records that notifier delivered a notification at t: its
// earlier dead letters no longer say that it cannot deliver.
func (tx *Tx) setLastDelivery(notifier string, t time.Time) error {
	b, err := t.UTC().MarshalText()
	if err != nil {
		return err
	}
	return tx.PutMeta(lastDeliveryKey(notifier), b)
}

// lastDelivery is when notifier last delivered a notification (zero if
// never, as far as this state file knows).
func (tx *Tx) lastDelivery(notifier string) (time.Time, error) {
	b, err := tx.Meta(lastDeliveryKey(notifier))
	if err != nil || b == nil {
		return time.Time{}, err
	}
	var t time.Time
	if err := t.UnmarshalText(b); err != nil {
		return time.Time{}, fmt.Errorf("last delivery of %s: %w", notifier, err)
	}
	return t, nil
}

// requeueOpenDead moves notifier's open dead letters (failed after its last
// delivery) back into the outbox under their own IDs, so they keep their
// place before later notifications of the same alert, with no attempts
// made. A dead letter followed by a delivery stays dead: a later
// notification (a resolve, say) already reached the service, and sending
// the older one now would undo it. It returns how many it moved.
func (tx *Tx) requeueOpenDead(notifier string, now time.Time) (int, error) {
	last, err := tx.lastDelivery(notifier)
	if err != nil {
		return 0, err
	}
	var move []*Notification
	if err := tx.eachDead(func(n *Notification) error {
		if n.Notifier == notifier && !n.Failed.IsZero() && n.Failed.After(last) {
			move = append(move, n)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, n := range move {
		if err := tx.b(bucketDead).Delete(u64key(n.ID)); err != nil {
			return 0, err
		}
		n.Attempts, n.NextAttempt, n.Failed = 0, now, time.Time{}
		if err := tx.putNotification(n); err != nil {
			return 0, err
		}
	}
	return len(move), nil
}
