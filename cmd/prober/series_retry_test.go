package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The series calculator of prober validate counts a step's retry counter
// (prober_step_retries_total): one series more for a step with a retry:
// block, none for a flow without.
func TestValidateSeriesStepRetry(t *testing.T) {
	count := func(flow string) int {
		t.Helper()
		dir := writeFiles(t, map[string]string{"probes.yaml": goodProbes, "flows/checkout.yaml": flow})
		code, out, errs := invoke("validate", "--config", dir+"/probes.yaml")
		if code != 0 {
			t.Fatalf("validate: exit %d\n%s%s", code, out, errs)
		}
		m := regexp.MustCompile(`(?m)^  checkout +default +(\d+) series$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no series line for checkout in\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	retried := strings.Replace(goodFlow, "      headers: {Authorization: \"Bearer {{token}}\"}\n",
		"      headers: {Authorization: \"Bearer {{token}}\"}\n    retry: {attempts: 3}\n", 1)
	if retried == goodFlow {
		t.Fatal("no retry: added")
	}
	without, with := count(goodFlow), count(retried)
	if with != without+1 {
		t.Errorf("checkout: %d series with a retry: block on orders, %d without: want one more", with, without)
	}
}
