// Package prober holds the configuration that ships inside the binary: the
// shipped probes.yaml and flows, so `prober demo` and `prober once` work from
// any directory.
package prober

import "embed"

// DefaultConfig is probes.yaml and flows/*.yaml as shipped.
//
//go:embed probes.yaml flows/*.yaml
var DefaultConfig embed.FS
