package config

import "slices"

// stdKind stands in for a notifier package in config's own tests: those
// packages import config, so its in-package tests cannot register them.
// Each notifier package tests its own block through Load.
type stdKind struct {
	typ     string
	keys    []string
	secrets []string // keys that hold secrets
	traits  NotifierTraits
}

func (k stdKind) Type() string           { return k.typ }
func (k stdKind) Keys() []string         { return k.keys }
func (k stdKind) Traits() NotifierTraits { return k.traits }

// Decode reads every key as a plain string or a secret; the values are
// kept by key.
func (k stdKind) Decode(b *NotifierBlock) any {
	m := map[string]string{}
	for _, key := range k.keys {
		read := b.String
		if slices.Contains(k.secrets, key) {
			read = b.Secret
		}
		if s, ok := read(key, "a string"); ok {
			m[key] = s
		}
	}
	return m
}

// testKinds are the stand-ins for the daemon's table, in its order.
var testKinds = []NotifierKind{
	stdKind{typ: "pagerduty", keys: []string{"url", "routing_key"}, secrets: []string{"routing_key"},
		traits: NotifierTraits{Pages: true, NoNotes: true}},
	stdKind{typ: "slack", keys: []string{"url", "token", "channel", "webhook_url"}, secrets: []string{"token", "webhook_url"}},
	stdKind{typ: "console"},
	stdKind{typ: "alertmanager", keys: []string{"url"}, traits: NotifierTraits{StateSync: true}},
}
