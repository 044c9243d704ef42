// Package report renders runs for people and CI: the step-by-step story
// `prober once` prints, and JUnit XML.
package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// Text writes the story of a run: each step with its status, HTTP status,
// duration and phases, the failed expectation with the actual value, the
// class, and the trace id to search the logs for.
func Text(w io.Writer, r *result.Run) error {
	var b strings.Builder
	verdict := "PASSED"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "%s %s in %s  region=%s  trace_id=%s\n", r.Flow, verdict, result.Round(r.Duration), r.Region, r.TraceID)
	width := 4
	for _, s := range r.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range r.Steps {
		mark := map[result.Status]string{result.Passed: "ok  ", result.Failed: "FAIL", result.Skipped: "skip"}[s.Status]
		name := s.Name
		if s.Cleanup {
			name += " (cleanup)"
		}
		fmt.Fprintf(&b, "  %s %-*s", mark, width+10, name)
		if s.Status == result.Skipped {
			fmt.Fprintf(&b, "  %s\n", strings.TrimPrefix(s.Message(), "skipped: "))
			continue
		}
		code := "---"
		if s.HTTPStatus != 0 {
			code = fmt.Sprint(s.HTTPStatus)
		}
		fmt.Fprintf(&b, "  %s %9s", code, result.Round(s.Duration))
		if s.Status == result.Failed {
			fmt.Fprintf(&b, "  class=%s", s.Class)
		}
		if s.Attempts > 1 {
			fmt.Fprintf(&b, "  attempts=%d", s.Attempts)
		}
		if s.Retries > 0 { // the step's retry: at work (until polls are the rest)
			fmt.Fprintf(&b, "  retries=%d", s.Retries)
		}
		fmt.Fprintf(&b, "  span_id=%s\n", s.SpanID)
		if s.Method != "" && s.URL != "" {
			fmt.Fprintf(&b, "       %s %s\n", s.Method, s.URL)
		}
		if s.HTTPStatus != 0 {
			fmt.Fprintf(&b, "       %s\n", phases(s.Timings))
		} else if s.Kind != "" && s.Timings != (result.Timings{}) {
			fmt.Fprintf(&b, "       connect %s, tls %s, first byte %s\n",
				result.Round(s.Timings.Connect), result.Round(s.Timings.TLS), result.Round(s.Timings.FirstByte))
		}
		// A step kind's own part, whatever the kind (already redacted).
		for _, a := range s.Attrs {
			fmt.Fprintf(&b, "       %s: %s\n", a.Name, a.Value)
		}
		for _, f := range s.Failures {
			fmt.Fprintf(&b, "       -> %s\n", f.Message)
		}
		writeKept(&b, &s, "       ")
	}
	if !r.OK() {
		fmt.Fprintf(&b, "%s\n", r.Summary())
	}
	fmt.Fprintf(&b, "search the system's logs for trace_id=%s\n", r.TraceID)
	_, err := io.WriteString(w, b.String())
	return err
}

func phases(t result.Timings) string {
	if t.Reused {
		return fmt.Sprintf("reused connection, processing %s, transfer %s, first byte %s",
			result.Round(t.Processing), result.Round(t.Transfer), result.Round(t.FirstByte))
	}
	return fmt.Sprintf("dns %s, connect %s, tls %s, processing %s, transfer %s, first byte %s",
		result.Round(t.DNS), result.Round(t.Connect), result.Round(t.TLS),
		result.Round(t.Processing), result.Round(t.Transfer), result.Round(t.FirstByte))
}

// JUnit XML, the subset CI systems read: one testsuite per run, one testcase
// per step.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string          `xml:"name,attr"`
	Tests     int             `xml:"tests,attr"`
	Failures  int             `xml:"failures,attr"`
	Skipped   int             `xml:"skipped,attr"`
	Time      string          `xml:"time,attr"`
	Timestamp string          `xml:"timestamp,attr"`
	Props     []junitProperty `xml:"properties>property"`
	Cases     []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// JUnit writes runs as JUnit XML.
func JUnit(w io.Writer, runs []*result.Run) error {
	out := junitSuites{}
	for _, r := range runs {
		s := junitSuite{
			Name:      r.Flow,
			Time:      secs(r.Duration),
			Timestamp: r.Start.UTC().Format(time.RFC3339),
			Props: []junitProperty{
				{"trace_id", r.TraceID}, {"region", r.Region}, {"run_id", r.ID}, {"class", string(r.Class)},
			},
		}
		for _, st := range r.Steps {
			c := junitCase{Name: st.Name, Classname: r.Flow, Time: secs(st.Duration)}
			if st.Status != result.Skipped {
				c.SystemOut = fmt.Sprintf("trace_id=%s span_id=%s http_status=%d", r.TraceID, st.SpanID, st.HTTPStatus)
				if st.Response != nil {
					c.SystemOut += "\n\nresponse:\n" + keptText(&st)
				}
			}
			s.Tests++
			switch st.Status {
			case result.Failed:
				s.Failures++
				var msgs []string
				for _, f := range st.Failures {
					msgs = append(msgs, f.Message)
				}
				c.Failure = &junitFailure{Message: st.Message(), Type: string(st.Class), Text: strings.Join(msgs, "\n")}
			case result.Skipped:
				s.Skipped++
				c.Skipped = &junitSkipped{Message: st.Message()}
			}
			s.Cases = append(s.Cases, c)
		}
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encoding JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
