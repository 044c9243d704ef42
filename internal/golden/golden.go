// Package golden evaluates alerting rules over run results and golden
// signals: flows failing in N of M regions (after retries confirm), burn
// rates on a flow's synthetic success SLO, dependency (gateway) success,
// latency quantiles, certificate expiry, and PromQL over the system's own
// metrics. It says for each rule and label set whether users are hurt
// (Firing), not (OK), or we cannot tell (Unknown: missing data is never OK
// and never a page), with the evidence a page needs. It knows nothing of
// notifiers or alert state. What each rule kind means lives in its home in
// internal/rulekind; this package runs them (the Engine) over the
// in-process store or Prometheus.
package golden

import "github.com/prober-dev/prober/internal/rulekind"

// The types rules are judged with, defined with the rule kinds.
type (
	Status            = rulekind.Status
	RegionState       = rulekind.RegionState
	Sample            = rulekind.Sample
	Source            = rulekind.Source
	HistoryCoverage   = rulekind.HistoryCoverage
	RegionRatio       = rulekind.RegionRatio
	DependencyRegions = rulekind.DependencyRegions
	FlowsByDependency = rulekind.FlowsByDependency
	RegionSeen        = rulekind.RegionSeen
	SignalValue       = rulekind.SignalValue
	Evidence          = rulekind.Evidence
	Evaluation        = rulekind.Evaluation
)

// Statuses.
const (
	Unknown = rulekind.Unknown
	OK      = rulekind.OK
	Firing  = rulekind.Firing
)

// ErrNoPromQL is returned by sources that cannot run PromQL (the in-process
// store); promql rules and signals are then unknown.
var ErrNoPromQL = rulekind.ErrNoPromQL
