package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NotifierKind is a notifier type registered with the loader
// (Options.Notifiers, the daemon's one table): its block is decoded and
// validated by the notifier's own package, so that config knows none of
// them.
type NotifierKind interface {
	// Type is the value of type: that selects the kind.
	Type() string
	// Keys are the fields of its block besides type and timeout.
	Keys() []string
	// Decode reads the block through b, reporting problems with b.Errorf,
	// and returns the notifier's settings (kept as Notifier.Spec).
	Decode(b *NotifierBlock) any
}

// NotifierTraits are what the alert lifecycle and the default routes need
// to know of a notifier's service, instead of its type.
type NotifierTraits struct {
	// Pages: it wakes someone. Without routes:, warning and info go to
	// every notifier but those that page: a warning should not wake anyone.
	Pages bool
	// StateSync: the service keeps alerts, not incidents, and forgets those
	// not refreshed (Alertmanager): each firing alert is re-sent
	// periodically, and each member's resolve goes there on its own.
	StateSync bool
	// NoNotes: the service shows no notes in an open incident (PagerDuty
	// keeps its incident; a note would be a reminder it drops).
	NoNotes bool
}

// NotifierTraiter is implemented by kinds whose notifiers have traits.
type NotifierTraiter interface {
	Traits() NotifierTraits
}

// NotifierBlock is one notifier's block in probes.yaml, read by its kind's
// Decode with the loader's own checks and file:line:col errors.
type NotifierBlock struct {
	l *loader
	f *file
	c *common
	o *object
	n *Notifier
	k *yaml.Node // the notifier's name
}

// Name is the notifier's name (its key under notifiers:).
func (b *NotifierBlock) Name() string { return b.n.Name }

// Has says whether the block sets key.
func (b *NotifierBlock) Has(key string) bool { return b.o.get(key) != nil }

// Errorf reports a problem at key's value, or at the notifier's name when
// key is "" or not set.
func (b *NotifierBlock) Errorf(key, format string, args ...any) {
	n := b.k
	if v := b.o.get(key); key != "" && v != nil {
		n = v
	}
	b.f.errorf(n, format, args...)
}

// String reads a plain string (${env:...} allowed, no placeholders).
func (b *NotifierBlock) String(key, want string) (string, bool) {
	v := b.o.get(key)
	if v == nil {
		return "", false
	}
	return b.f.plain(v, want, key+" cannot use {{...}}")
}

// Text reads a string as written: no ${env:...}, no placeholders resolved
// (a template the notifier executes itself).
func (b *NotifierBlock) Text(key, want string) (string, bool) {
	v := b.o.get(key)
	if v == nil {
		return "", false
	}
	return b.f.str(v, want)
}

// URL reads an absolute http(s) URL that holds no secret.
func (b *NotifierBlock) URL(key string) (string, bool) {
	return b.URLSecretsIn(key, "the notifier's secret fields")
}

// URLSecretsIn is URL whose error for a placeholder says where secrets
// belong instead ("routing_key, token or webhook_url").
func (b *NotifierBlock) URLSecretsIn(key, where string) (string, bool) {
	v := b.o.get(key)
	if v == nil {
		return "", false
	}
	s, ok := b.f.plain(v, "a URL", key+" cannot use {{...}}; secrets belong in "+where)
	if !ok || !checkHTTPURL(b.f, v, s) {
		return "", false
	}
	return s, true
}

// Strings reads a list of plain strings (one string is a list of one),
// such as a mail notifier's recipients. check, if not nil, vets each item;
// its error is reported at the item. ok is false when any item failed.
func (b *NotifierBlock) Strings(key, want string, check func(string) error) (out []string, ok bool) {
	v := b.o.get(key)
	if v == nil {
		return nil, false
	}
	items := b.f.list(v, "a list of "+want)
	ok = items != nil
	for _, it := range items {
		s, good := b.f.plain(it, want, key+" cannot use {{...}}")
		if good && check != nil {
			if err := check(s); err != nil {
				b.f.errorf(it, "%v", err)
				good = false
			}
		}
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// Secret reads a string that may hold {{secret:NAME}}, resolved (and so
// redacted wherever it would appear). An optional secret that is not set
// disables the notifier (Notifier.Disabled) rather than failing the load.
func (b *NotifierBlock) Secret(key, want string) (string, bool) {
	v := b.o.get(key)
	if v == nil {
		return "", false
	}
	if v.Kind == yaml.ScalarNode {
		if name := unsetSecret(v.Value, b.l.optionalUnset); name != "" {
			b.n.Disabled = "optional secret " + name + " is not set"
		}
	}
	return b.l.secretString(b.f, v, want, b.c)
}

// notifierTypes lists every known type for error messages: "a, b or c".
func (l *loader) notifierTypes() string {
	var ts []string
	for _, k := range l.notifierKinds {
		ts = append(ts, k.Type())
	}
	switch len(ts) {
	case 0:
		return "none is registered"
	case 1:
		return ts[0]
	}
	return strings.Join(ts[:len(ts)-1], ", ") + " or " + ts[len(ts)-1]
}

// notifierKeys are every field a notifier block may hold.
func (l *loader) notifierKeys() []string {
	keys := []string{"type", "timeout"}
	for _, k := range l.notifierKinds {
		keys = append(keys, k.Keys()...)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// notifierKind returns the registered kind of typ, or nil.
func (l *loader) notifierKind(typ string) NotifierKind {
	for _, k := range l.notifierKinds {
		if k.Type() == typ {
			return k
		}
	}
	return nil
}

// checkNotifierKinds reports kinds registered twice: a programming error,
// caught by any load.
func (l *loader) checkNotifierKinds() error {
	seen := map[string]bool{}
	for _, k := range l.notifierKinds {
		if seen[k.Type()] {
			return fmt.Errorf("notifier type %s registered twice", k.Type())
		}
		seen[k.Type()] = true
	}
	return nil
}
