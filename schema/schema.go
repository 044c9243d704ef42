// Package schema holds the JSON Schemas (draft 2020-12) of probes.yaml and
// of flow files, for editors: a `# yaml-language-server: $schema=...`
// modeline or an editor setting points at them, and `prober schema`
// prints them. They are kept by hand, for their descriptions and value
// types; a test checks their keys against what the loader accepts, so a
// key added to the loader and not here (or the other way) fails CI.
package schema

import _ "embed"

var (
	//go:embed probes.schema.json
	probes []byte
	//go:embed flow.schema.json
	flow []byte
	//go:embed steps.schema.json
	steps []byte
)

// Names are the schemas' names, as `prober schema NAME` takes them.
var Names = []string{"probes", "flow", "steps"}

// Get returns the schema called name ("probes", "flow" or "steps": the
// steps files of include:, which refers to flow's), or nil.
func Get(name string) []byte {
	switch name {
	case "probes":
		return probes
	case "flow":
		return flow
	case "steps":
		return steps
	}
	return nil
}
