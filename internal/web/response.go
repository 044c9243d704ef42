package web

import (
	"fmt"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// responseView is what a failed step kept of the server's answer, ready to
// show: every byte through result.Text (the template escapes the rest).
type responseView struct {
	StatusLine string
	Headers    []result.Attr
	Body       string
	// Note says how much of the body is shown: "truncated at 4096 bytes
	// (of 10000)", "66 bytes", "no body".
	Note string
}

func responseOf(st *result.Step) *responseView {
	k := st.Response
	if k == nil {
		return nil
	}
	v := &responseView{StatusLine: k.StatusLine(), Body: result.Text(k.Body)}
	for _, h := range k.Headers {
		// The runner keeps cookie values as fingerprints; a run stored by an
		// older prober may hold them whole.
		val := secret.MaskCookies(h.Name, h.Value, nil)
		v.Headers = append(v.Headers, result.Attr{Name: result.TextLine(h.Name), Value: result.TextLine(val)})
	}
	switch {
	case k.Truncated:
		v.Note = fmt.Sprintf("truncated at %d bytes (of %d)", len(k.Body), st.BodyBytes)
	case len(k.Body) == 0:
		v.Note = "no body"
	default:
		v.Note = fmt.Sprintf("%d bytes", len(k.Body))
	}
	return v
}
