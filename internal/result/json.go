package result

import (
	"encoding/json"
	"time"
)

// Durations travel as milliseconds (floats), the unit people read in logs and
// APIs; time.Duration's nanosecond integers are easy to misread.

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fromMS(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

type timingsJSON struct {
	DNS        float64 `json:"dns_ms"`
	Connect    float64 `json:"connect_ms"`
	TLS        float64 `json:"tls_ms"`
	Processing float64 `json:"processing_ms"`
	Transfer   float64 `json:"transfer_ms"`
	FirstByte  float64 `json:"first_byte_ms"`
	Reused     bool    `json:"reused_connection"`
}

// MarshalJSON encodes the phases in milliseconds.
func (t Timings) MarshalJSON() ([]byte, error) {
	return json.Marshal(timingsJSON{ms(t.DNS), ms(t.Connect), ms(t.TLS), ms(t.Processing),
		ms(t.Transfer), ms(t.FirstByte), t.Reused})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (t *Timings) UnmarshalJSON(b []byte) error {
	var j timingsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Timings{fromMS(j.DNS), fromMS(j.Connect), fromMS(j.TLS), fromMS(j.Processing),
		fromMS(j.Transfer), fromMS(j.FirstByte), j.Reused}
	return nil
}

type stepAlias Step

type stepJSON struct {
	stepAlias
	DurationMS float64 `json:"duration_ms"`
	Timings    Timings `json:"timings"`
}

// MarshalJSON adds duration_ms and the timings.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepJSON{stepAlias(s), ms(s.Duration), s.Timings})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (s *Step) UnmarshalJSON(b []byte) error {
	var j stepJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Step(j.stepAlias)
	s.Duration = fromMS(j.DurationMS)
	s.Timings = j.Timings
	return nil
}

type runAlias Run

type runJSON struct {
	runAlias
	DurationMS float64 `json:"duration_ms"`
}

// MarshalJSON adds duration_ms.
func (r Run) MarshalJSON() ([]byte, error) {
	return json.Marshal(runJSON{runAlias(r), ms(r.Duration)})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (r *Run) UnmarshalJSON(b []byte) error {
	var j runJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Run(j.runAlias)
	r.Duration = fromMS(j.DurationMS)
	return nil
}
