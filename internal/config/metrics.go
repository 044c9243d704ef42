package config

import "go.yaml.in/yaml/v3"

// The metric levels (`metrics:` in probes.yaml and in a flow file): what
// the metrics package exports per flow. README: "Metric levels".
const (
	MetricsDefault  = "default"  // within the series budget
	MetricsDetailed = "detailed" // every family, every step's histogram
)

// metricsLevel reads a `metrics:` value, or reports where it is wrong.
func (f *file) metricsLevel(n *yaml.Node) (string, bool) {
	s, ok := f.plain(n, "a metric level", "metrics cannot use {{...}}")
	if !ok {
		return "", false
	}
	if s != MetricsDefault && s != MetricsDetailed {
		// The source, not the expansion, as for region.
		f.errorf(n, "metrics %s must be %s or %s", quote(n.Value), MetricsDefault, MetricsDetailed)
		return "", false
	}
	return s, true
}
