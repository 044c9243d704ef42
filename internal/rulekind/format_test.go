package rulekind

import (
	"math"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{percent(0), "0%"},
		{percent(1), "100%"},
		{percent(0.998), "99.8%"},
		{percent(0.125), "12.5%"},
		{percent(0.5), "50%"},
		{percent(2.0 / 3), "66.7%"},
		{percent(0.9996), "99.96%"}, // not "100%"
		{percent(0.99999), "99.999%"},
		{percent(0.0004), "0.04%"}, // not "0%"
		{percent(0.995), "99.5%"},
		{percent(math.NaN()), "NaN"},
		{number(0.21), "0.21"},
		{number(0.002), "0.002"},
		{number(42), "42"},
		{number(1234.5678), "1235"},
		{number(123456), "123456"},
		{number(1.5e15), "1.5e+15"},
		{number(1e-5), "1e-05"},
		{times(20.1), "20.1x"},
		{times(20), "20x"},
		{times(14.4), "14.4x"},
		{times(5.5555), "5.56x"},
		{times(144), "144x"},
		{times(0), "0x"},
		{human(0), "0s"},
		{human(45 * time.Second), "45s"},
		{human(2*time.Minute + 10*time.Second), "2m"},
		{human(47 * time.Minute), "47m"},
		{human(59*time.Minute + 50*time.Second), "1h"},
		{human(65 * time.Minute), "1h5m"},
		{human(26 * time.Hour), "1d2h"},
		{human(48 * time.Hour), "2d"},
		{human(-time.Minute), "0s"},
		{span(5 * time.Minute), "5m"},
		{span(time.Hour), "1h"},
		{span(90 * time.Minute), "1h30m"},
		{span(20 * time.Second), "20s"},
		{span(72 * time.Hour), "3d"},
		{span(90 * time.Second), "1m30s"},
		{latency(2312 * time.Millisecond), "2.31s"},
		{latency(350123 * time.Microsecond), "350ms"},
		{latency(1234567 * time.Nanosecond), "1.23ms"},
		{latency(123456 * time.Millisecond), "2m3s"},
		{quantileName(0.95), "p95"},
		{quantileName(0.999), "p99.9"},
		{quantileName(0.5), "p50"},
		{truncate("héllo", 2), "h"},
		{truncate("héllo", 3), "hé"},
		{truncate("abc", 10), "abc"},
		{labelString(map[string]string{"job": "shop", "code": "5xx"}), `{code="5xx", job="shop"}`},
		{labelString(nil), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
