package golden

import "github.com/prober-dev/prober/internal/rulekind"

// The page formats, shared with the rule kinds.
var (
	percent  = rulekind.Percent
	number   = rulekind.Number
	latency  = rulekind.Latency
	truncate = rulekind.Truncate
)

const maxSummary = rulekind.MaxSummary
