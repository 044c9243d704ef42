package alert

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Reacher is a notifier that can tell cheaply, without sending anything a
// human sees, whether its service answers again: an optional behaviour the
// dispatcher tests for. It asks while pages wait on a backoff, and retries
// them at once when the service answers.
type Reacher interface {
	Reach(ctx context.Context) error
}

// ReachHTTP asks u with a GET and judges the answer: any HTTP answer but a
// 5xx or 429 means the service is back (a 404 or 405 for a GET on an
// endpoint that only takes POST is a healthy service saying so). The error
// never quotes u, which may be a secret (a Slack webhook).
func ReachHTTP(ctx context.Context, hc *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("reachability request: %s", transportText(err))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reachability: %s", transportText(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("reachability: HTTP %d", resp.StatusCode)
	}
	return nil
}
