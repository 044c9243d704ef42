package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// prober validate prints the series each flow exports at its level (the
// count a scrape shows: internal/daemon's TestSeriesCountIsScraped), their
// total and the samples a month at the given scrape interval.
func TestValidateSeries(t *testing.T) {
	repo := repoProbes(t)
	for _, c := range []struct {
		interval  string
		perSeries float64 // samples a month per series
	}{{"", 30 * 24 * 3600 / 15}, {"60s", 30 * 24 * 3600 / 60}} {
		args := []string{"validate", "--config", repo}
		if c.interval != "" {
			args = append(args, "--scrape-interval", c.interval)
		}
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		head := regexp.MustCompile(`(?m)^series: (\d+) from 3 flow\(s\) \(metrics: default\); (\S+) (\S+) samples a month at a (\S+) scrape$`).FindStringSubmatch(out.String())
		if head == nil {
			t.Fatalf("no series line in\n%s", out.String())
		}
		total, _ := strconv.Atoi(head[1])
		sum := 0
		for _, m := range regexp.MustCompile(`(?m)^  (checkout|shop_health|shop_certificate) +default +(\d+) series$`).FindAllStringSubmatch(out.String(), -1) {
			n, _ := strconv.Atoi(m[2])
			sum += n
		}
		if sum != total || total == 0 {
			t.Errorf("flows' series add up to %d, total %d:\n%s", sum, total, out.String())
		}
		want := humanCount(float64(total) * c.perSeries)
		if got := head[2] + " " + head[3]; got != want {
			t.Errorf("samples a month %q, want %q (%d series)", got, want, total)
		}
		if want := time.Duration(30*24*3600/c.perSeries) * time.Second; head[4] != want.String() {
			t.Errorf("at a %s scrape, want %s", head[4], want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config", repo, "--scrape-interval", "0s"}, &out, &errb); code != 2 {
		t.Errorf("--scrape-interval 0s: exit %d, want 2", code)
	}
}

func TestHumanCount(t *testing.T) {
	for n, want := range map[float64]string{999: "999", 7_257_600: "7.3 million", 190e9: "190 billion", 12_345: "12 thousand"} {
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%g) = %q, want %q", n, got, want)
		}
	}
}
