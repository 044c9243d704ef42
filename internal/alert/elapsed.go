package alert

import (
	"fmt"
	"time"
)

// Elapsed is how long the incident of p lasted (or has lasted) from its
// first failure to p, as 47m, 2h5m or 3d4h; "" when p does not say.
func Elapsed(p *Page) string {
	if p.Since.IsZero() || p.At.IsZero() || p.At.Before(p.Since) {
		return ""
	}
	return HumanDuration(p.At.Sub(p.Since))
}

// HumanDuration renders 47m, 2h5m, 3d4h, 30s.
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d.Hours())/24, int(d.Hours())%24
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}
