package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ParseCron parses a standard 5-field cron spec or a descriptor (@hourly,
// @daily, ...). It refuses what robfig/cron mishandles: a TZ= prefix (which
// panics without a following space; flows have timezone: for that), @every
// (which silently rounds below 1s; flows have every:), and schedules that
// never fire. The returned schedule evaluates in the location of the time
// passed to Next.
func ParseCron(spec string) (sched cron.Schedule, err error) {
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return nil, errors.New("cron spec is empty")
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		return nil, errors.New("cron spec cannot set a time zone; use the timezone key")
	case strings.HasPrefix(s, "@every"):
		return nil, errors.New("@every is not supported in cron; use the every key")
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("bad cron spec %s: %v", quote(s), r)
		}
	}()
	sched, err = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad cron spec %s: %v", quote(s), err)
	}
	// robfig/cron gives up after five years and returns the zero time:
	// "0 0 30 2 *" would never run, silently.
	if sched.Next(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron spec %s never fires", quote(s))
	}
	return sched, nil
}

// Next returns the first time after t at which the schedule fires: t+Every,
// or the cron spec's next time in Location (UTC when nil). It returns the
// zero time for an invalid schedule, which Load never produces.
func (s Schedule) Next(t time.Time) time.Time {
	if s.Cron == "" {
		if s.Every <= 0 {
			return time.Time{}
		}
		return t.Add(s.Every)
	}
	sched, err := ParseCron(s.Cron)
	if err != nil {
		return time.Time{}
	}
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	next := sched.Next(t.In(loc))
	if next.IsZero() {
		return next
	}
	return next.In(t.Location())
}
