package shop

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Duration is a time.Duration that travels through JSON as a Go duration
// string ("2s") so fault files and curl bodies stay human-readable. Integer
// nanoseconds are accepted on input for programmatic clients.
type Duration time.Duration

// MarshalJSON encodes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "2s"-style strings or integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. \"2s\" or \"500ms\")", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s (want a string like \"2s\" or integer nanoseconds)", b)
	}
	*d = Duration(n)
	return nil
}

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// FaultSet describes injected faults. The zero value is healthy.
type FaultSet struct {
	GatewayStatus    int      `json:"gateway_status,omitempty"`    // gateway answers this status instead of charging
	GatewayDelay     Duration `json:"gateway_delay,omitempty"`     // gateway sleeps this long before answering
	RetryAfter       Duration `json:"retry_after,omitempty"`       // with 429: Retry-After (seconds, rounded up); default 1s
	SwallowErrors    bool     `json:"swallow_errors,omitempty"`    // shop answers 200 processing when the gateway fails
	BlipRate         float64  `json:"blip_rate,omitempty"`         // fraction of shop /api requests answered 503
	ResetConnections bool     `json:"reset_connections,omitempty"` // shop drops /api connections without answering
	// The storefront's own (browser flows; storefront.go, hosted.go):
	PageDelay       Duration `json:"page_delay,omitempty"`        // the storefront's pages answer this late
	PayScriptError  bool     `json:"pay_script_error,omitempty"`  // the hosted payment page's script throws before wiring its pay button
	PayButtonHidden bool     `json:"pay_button_hidden,omitempty"` // a consent overlay covers the pay button: shown, but a click lands on the overlay
	// omitzero because omitempty never omits a struct such as time.Time.
	Until time.Time `json:"until,omitzero"` // the set expires at this time; zero = until cleared
}

// IsZero reports whether the set injects nothing.
func (fs FaultSet) IsZero() bool { return fs == FaultSet{} }

func (fs FaultSet) expired(now time.Time) bool {
	return !fs.Until.IsZero() && !now.Before(fs.Until)
}

// validate rejects sets that cannot be honoured, so a typo in a demo script
// fails loudly instead of silently leaving the system healthy.
func (fs FaultSet) validate() error {
	switch {
	case fs.GatewayStatus != 0 && (fs.GatewayStatus < 400 || fs.GatewayStatus > 599):
		return fmt.Errorf("gateway_status must be 0 or 400..599, got %d", fs.GatewayStatus)
	case fs.GatewayDelay < 0:
		return errors.New("gateway_delay must not be negative")
	case fs.RetryAfter < 0:
		return errors.New("retry_after must not be negative")
	case fs.BlipRate < 0 || fs.BlipRate > 1 || fs.BlipRate != fs.BlipRate:
		return fmt.Errorf("blip_rate must be within 0..1, got %v", fs.BlipRate)
	case fs.PageDelay < 0:
		return errors.New("page_delay must not be negative")
	}
	return nil
}

// overlay returns base with every non-zero field of o written over it.
func overlay(base, o FaultSet) FaultSet {
	if o.GatewayStatus != 0 {
		base.GatewayStatus = o.GatewayStatus
	}
	if o.GatewayDelay != 0 {
		base.GatewayDelay = o.GatewayDelay
	}
	if o.RetryAfter != 0 {
		base.RetryAfter = o.RetryAfter
	}
	if o.SwallowErrors {
		base.SwallowErrors = true
	}
	if o.BlipRate != 0 {
		base.BlipRate = o.BlipRate
	}
	if o.ResetConnections {
		base.ResetConnections = true
	}
	if o.PageDelay != 0 {
		base.PageDelay = o.PageDelay
	}
	if o.PayScriptError {
		base.PayScriptError = true
	}
	if o.PayButtonHidden {
		base.PayButtonHidden = true
	}
	if !o.Until.IsZero() {
		base.Until = o.Until
	}
	return base
}

// Faults is the run-time fault state shared by shop and gateway; safe for
// concurrent use. Sets are keyed by region; "" is the all-regions set.
type Faults struct {
	mu   sync.RWMutex
	sets map[string]FaultSet
}

// NewFaults returns a healthy fault state.
func NewFaults() *Faults { return &Faults{sets: map[string]FaultSet{}} }

// Set replaces the fault set of region ("" = all regions). Setting the zero
// set is the same as Clear(region), so snapshots list only real faults.
func (f *Faults) Set(region string, fs FaultSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fs.IsZero() {
		delete(f.sets, region)
		return
	}
	f.sets[region] = fs
}

// Clear removes the set of region; "" clears everything.
func (f *Faults) Clear(region string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if region == "" {
		clear(f.sets)
		return
	}
	delete(f.sets, region)
}

// Effective returns the all-regions set overlaid field by field with the
// region's set (non-zero region fields win, so a region can add or sharpen
// faults but not switch off an all-regions bool). Expired sets are ignored.
func (f *Faults) Effective(region string, now time.Time) FaultSet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var eff FaultSet
	if all, ok := f.sets[""]; ok && !all.expired(now) {
		eff = all
	}
	if region != "" {
		if rs, ok := f.sets[region]; ok && !rs.expired(now) {
			eff = overlay(eff, rs)
		}
	}
	return eff
}

// Snapshot returns the sets that are still active ("" key = all regions).
// Expired sets are left out so the admin view matches what is in force.
func (f *Faults) Snapshot() map[string]FaultSet {
	now := time.Now()
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]FaultSet, len(f.sets))
	for k, v := range f.sets {
		if !v.expired(now) {
			out[k] = v
		}
	}
	return out
}

// faultsView is the admin JSON shape.
type faultsView struct {
	All     FaultSet            `json:"all"`
	Regions map[string]FaultSet `json:"regions"`
}

func (f *Faults) view() faultsView {
	snap := f.Snapshot()
	v := faultsView{All: snap[""], Regions: map[string]FaultSet{}}
	for k, fs := range snap {
		if k != "" {
			v.Regions[k] = fs
		}
	}
	return v
}

// faultRequest is the PUT body: a FaultSet plus the "for" convenience.
type faultRequest struct {
	FaultSet
	For Duration `json:"for,omitempty"`
}

const maxRegionLen = 64

func validRegion(r string) bool {
	if len(r) > maxRegionLen {
		return false
	}
	for _, c := range []byte(r) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// adminRegion extracts ?region=, answering 400 itself when it is unusable.
func adminRegion(w http.ResponseWriter, r *http.Request) (string, bool) {
	region := r.URL.Query().Get("region")
	if !validRegion(region) {
		writeError(w, http.StatusBadRequest, "invalid_region",
			"region must be at most 64 characters of [A-Za-z0-9._-]")
		return "", false
	}
	return region, true
}

func (f *Faults) handleGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, f.view())
}

func (f *Faults) handlePut(now func() time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		region, ok := adminRegion(w, r)
		if !ok {
			return
		}
		var req faultRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		// Unknown fields are rejected: a misspelt fault must not look healthy.
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			msg := err.Error()
			if errors.Is(err, io.EOF) {
				msg = "request body must be a JSON fault set, e.g. {\"gateway_status\":504}"
			}
			writeError(w, http.StatusBadRequest, "invalid_json", msg)
			return
		}
		if dec.More() {
			writeError(w, http.StatusBadRequest, "invalid_json", "trailing data after the JSON object")
			return
		}
		fs := req.FaultSet
		if req.For < 0 {
			writeError(w, http.StatusBadRequest, "invalid_fault_set", "for must not be negative")
			return
		}
		if req.For > 0 {
			if !fs.Until.IsZero() {
				writeError(w, http.StatusBadRequest, "invalid_fault_set", "give either for or until, not both")
				return
			}
			fs.Until = now().Add(time.Duration(req.For))
		}
		if err := fs.validate(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_fault_set", err.Error())
			return
		}
		f.Set(region, fs)
		writeJSON(w, http.StatusOK, f.view())
	}
}

func (f *Faults) handleDelete(w http.ResponseWriter, r *http.Request) {
	region, ok := adminRegion(w, r)
	if !ok {
		return
	}
	f.Clear(region)
	writeJSON(w, http.StatusOK, f.view())
}
