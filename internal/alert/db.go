package alert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The durable store is one bbolt file rather than a home-made journal:
// bbolt gives ACID transactions with an fsync on every commit, a torn write
// or a crash mid-commit leaves the previous committed state (copy-on-write
// pages plus two meta pages), space is reused without a compaction pass, and
// its exclusive file lock stops two daemons from sharing one state. A journal
// would need all of that written and crash-tested by hand.

// schemaVersion is the layout of the buckets and values below. A file with a
// newer version was written by a newer prober: refuse it rather than guess.
const schemaVersion = 1

// deadLetterCap bounds the dead letters kept for inspection.
const deadLetterCap = 1000

// lockTimeout is how long OpenDB waits for another process's lock (a var
// for tests).
var lockTimeout = 2 * time.Second

// boltNoSync skips fsync (FuzzOpenDB's thousands of opens only).
var boltNoSync = false

var (
	bucketSchema   = []byte("schema")
	bucketMeta     = []byte("meta")
	bucketAlerts   = []byte("alerts")
	bucketOutbox   = []byte("outbox")
	bucketDead     = []byte("dead")
	bucketThreads  = []byte("threads")
	bucketSilences = []byte("silences")

	keyVersion = []byte("version")

	allBuckets = [][]byte{bucketSchema, bucketMeta, bucketAlerts, bucketOutbox, bucketDead, bucketThreads, bucketSilences}
)

// DB is the durable alert state: alert states, the outbox of notifications,
// dead letters, thread memory, silences and small daemon metadata. Safe for
// concurrent use; writes are serialised by bbolt.
type DB struct {
	path string
	bolt *bolt.DB
}

// OpenDB opens the state file at path, creating it (and its directory) when
// it does not exist. A file that exists must be sound: an empty, truncated
// or damaged one is a *CorruptError (errors.Is ErrCorrupt), never a panic
// and never a silent fresh start.
func OpenDB(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("alert state %s: %w", path, err)
	}
	size, err := precheck(path)
	if err != nil {
		return nil, err
	}
	return openBolt(path, size)
}

func lockedError(path string) error {
	return fmt.Errorf("alert state %s: locked by another process (is another prober running with the same state_dir?)", path)
}

// precheck walks an existing file's structure before bbolt maps it (see
// checkFile), under a shared lock so that a file another prober is writing
// reads as locked, not corrupt. It returns the file's size, -1 if there is
// none.
func precheck(path string) (int64, error) {
	st, err := os.Stat(path) // before opening: opening a FIFO blocks
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("alert state %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("alert state %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("alert state %s: %w", path, err)
	}
	defer f.Close()
	if err := lockShared(f, lockTimeout); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, lockedError(path)
		}
		return 0, fmt.Errorf("alert state %s: lock: %w", path, err)
	}
	why, err := checkOpenFile(f)
	if err != nil {
		return 0, fmt.Errorf("alert state %s: %w", path, err)
	}
	if why != "" {
		return 0, &CorruptError{Path: path, Reason: why}
	}
	return st.Size(), nil
}

// maxCheckedSize bounds the files whose every record OpenDB reads back
// (bbolt's Check and a decode of each value): state files are kilobytes to
// a few megabytes; a bigger one is only walked by precheck, keeping a start
// bounded in time.
const maxCheckedSize = 64 << 20

// openBolt opens the (prechecked) file with bbolt. A fault or panic inside
// bbolt, should precheck have missed a kind of damage, becomes a
// CorruptError too.
func openBolt(path string, size int64) (db *DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var b *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if b != nil {
				closeQuietly(b)
			}
			db, err = nil, &CorruptError{Path: path, Reason: fmt.Sprintf("bbolt: %v", r)}
		}
	}()
	b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, NoSync: boltNoSync})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, lockedError(path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, &CorruptError{Path: path, Reason: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("alert state %s: %w", path, err)
	}
	var damaged string
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				damaged = fmt.Sprintf("bucket %s: %v", name, err)
				return err
			}
		}
		sb := tx.Bucket(bucketSchema)
		if v := sb.Get(keyVersion); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				damaged = fmt.Sprintf("unreadable schema version %q", v)
				return errors.New(damaged)
			}
			if n > schemaVersion {
				return fmt.Errorf("schema version %d is newer than this prober's %d (written by a newer release; upgrade, or move the file away)", n, schemaVersion)
			}
			if n == schemaVersion {
				return nil
			}
		}
		return sb.Put(keyVersion, []byte(strconv.Itoa(schemaVersion)))
	})
	if err == nil && size >= 0 && size <= maxCheckedSize {
		if damaged = readBack(b); damaged != "" {
			err = errors.New(damaged)
		}
	}
	if err != nil {
		_ = b.Close()
		if damaged != "" {
			return nil, &CorruptError{Path: path, Reason: damaged}
		}
		return nil, fmt.Errorf("alert state %s: %w", path, err)
	}
	return &DB{path: path, bolt: b}, nil
}

// readBack runs bbolt's consistency check (key order, page accounting) and
// decodes every stored record, returning what is wrong or "".
func readBack(b *bolt.DB) string {
	var why string
	_ = b.View(func(btx *bolt.Tx) error {
		for err := range btx.Check() {
			if why == "" {
				why = err.Error()
			}
		}
		if why != "" {
			return nil
		}
		tx := &Tx{tx: btx}
		for _, read := range []func() error{
			func() error { _, err := tx.Alerts(); return err },
			func() error { _, err := tx.Silences(); return err },
			func() error { _, err := tx.Pending(); return err },
			func() error { _, err := tx.Dead(); return err },
		} {
			if err := read(); err != nil {
				why = err.Error()
				return nil
			}
		}
		return nil
	})
	return why
}

func closeQuietly(b *bolt.DB) {
	defer func() { _ = recover() }()
	_ = b.Close()
}

// Path is the state file.
func (d *DB) Path() string { return d.path }

// Close closes the file. Transactions after Close fail.
func (d *DB) Close() error { return d.bolt.Close() }

// Update runs fn in one read-write transaction, committed (and fsynced) when
// fn returns nil and rolled back otherwise. tx must not be used after fn
// returns.
func (d *DB) Update(fn func(tx *Tx) error) error {
	return d.bolt.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(tx *Tx) error) error {
	return d.bolt.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Tx is one transaction over the store.
type Tx struct {
	tx *bolt.Tx
}

func (tx *Tx) b(name []byte) *bolt.Bucket { return tx.tx.Bucket(name) }

func u64key(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

// getJSON decodes the value at key into v; false if there is none.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// Alert returns the alert state for key, or nil, nil if there is none.
func (tx *Tx) Alert(key string) (*State, error) {
	var s State
	ok, err := getJSON(tx.b(bucketAlerts), []byte(key), &s)
	if !ok || err != nil {
		return nil, err
	}
	return &s, nil
}

// PutAlert stores s under s.Key.
func (tx *Tx) PutAlert(s *State) error {
	if s.Key == "" {
		return errors.New("alert state without a key")
	}
	return putJSON(tx.b(bucketAlerts), []byte(s.Key), s)
}

// DeleteAlert removes the state for key (no error if there is none).
func (tx *Tx) DeleteAlert(key string) error {
	return tx.b(bucketAlerts).Delete([]byte(key))
}

// Alerts returns every alert state, sorted by key.
func (tx *Tx) Alerts() ([]*State, error) {
	var out []*State
	err := tx.b(bucketAlerts).ForEach(func(k, v []byte) error {
		var s State
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode alert %q: %w", k, err)
		}
		out = append(out, &s)
		return nil
	})
	return out, err
}

// SilenceRecord is a silence created through the API (config silences live
// in the config).
type SilenceRecord struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers"`
	Starts    time.Time         `json:"starts"`
	Ends      time.Time         `json:"ends"`
	Comment   string            `json:"comment,omitempty"`
	CreatedBy string            `json:"created_by,omitempty"`
	Created   time.Time         `json:"created"`
}

// PutSilence stores s under s.ID.
func (tx *Tx) PutSilence(s *SilenceRecord) error {
	if s.ID == "" {
		return errors.New("silence without an id")
	}
	return putJSON(tx.b(bucketSilences), []byte(s.ID), s)
}

// DeleteSilence removes the silence id (no error if there is none).
func (tx *Tx) DeleteSilence(id string) error {
	return tx.b(bucketSilences).Delete([]byte(id))
}

// Silences returns the stored silences, sorted by ID.
func (tx *Tx) Silences() ([]*SilenceRecord, error) {
	var out []*SilenceRecord
	err := tx.b(bucketSilences).ForEach(func(k, v []byte) error {
		var s SilenceRecord
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode silence %q: %w", k, err)
		}
		out = append(out, &s)
		return nil
	})
	return out, err
}

// Meta returns the daemon's value for key, nil if none. The slice is a
// copy, valid after the transaction.
func (tx *Tx) Meta(key string) ([]byte, error) {
	v := tx.b(bucketMeta).Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// PutMeta stores v under key; a nil v deletes it.
func (tx *Tx) PutMeta(key string, v []byte) error {
	if v == nil {
		return tx.b(bucketMeta).Delete([]byte(key))
	}
	return tx.b(bucketMeta).Put([]byte(key), v)
}

// bucketFires keeps each alert key's recent firing times for flap damping,
// beyond the alert's life: an alert's state is deleted on resolve, and a
// history that went with it never saw a flapping alert fire twice. It is
// created on first write rather than in OpenDB, and pruned there.
var bucketFires = []byte("fires")

// Fires returns the stored firing times of the alert key, oldest first.
func (tx *Tx) Fires(key string) ([]time.Time, error) {
	b := tx.b(bucketFires)
	if b == nil {
		return nil, nil // never written: no alert has fired since
	}
	var out []time.Time
	if _, err := getJSON(b, []byte(key), &out); err != nil {
		return nil, fmt.Errorf("reading the firing history: %w", err)
	}
	return out, nil
}

// PutFires stores the firing times of the alert key (none deletes them),
// and drops every other key's history whose newest firing is before
// expired: a key that stopped firing must not stay forever.
func (tx *Tx) PutFires(key string, fires []time.Time, expired time.Time) error {
	b, err := tx.tx.CreateBucketIfNotExists(bucketFires)
	if err != nil {
		return fmt.Errorf("creating the firing history: %w", err)
	}
	var stale [][]byte
	err = b.ForEach(func(k, v []byte) error {
		var ts []time.Time
		if json.Unmarshal(v, &ts) != nil || len(ts) == 0 || ts[len(ts)-1].Before(expired) {
			stale = append(stale, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	if len(fires) == 0 {
		return b.Delete([]byte(key))
	}
	return putJSON(b, []byte(key), fires)
}
