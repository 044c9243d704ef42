package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// The status page must render in well under 100 ms for 1,000 flows × 30 runs,
// now the largest page (?per_page=1000), however many flows are configured.
// So it reads only the newest run of every flow (for the headline and the
// order), and all kept runs only of the flows on the page (see list.go).
//
// html/template spends most of its time in per-value escaper calls made by
// reflection, so the parts of a flow's block that depend only on its runs (the
// strip, the story, the steps table) are memoized per flow, keyed by the runs
// they show (runs are immutable once stored, so trace ids and starts name
// them).
// The parts that depend on the clock ("12s ago") are rendered every time.

type statusHead struct {
	page
	Overall, OverallClass string
	Alerts                []alertLine
}

type flowRuns struct {
	info *FlowInfo
	runs []*result.Run // all kept, newest first
}

// flowRow is a flow in the list before paging: enough to filter and order.
type flowRow struct {
	info    *FlowInfo
	failing bool
}

// fragment is the memoized, already escaped output of flowstrip and
// flowtable for one flow.
type fragment struct {
	key          fragKey
	strip, table []byte
}

// fragKey identifies the runs a fragment shows: the strip's window of runs,
// newest first. The newest run, the oldest shown and the count pin the window
// because the source only ever prepends runs. Runs are named by trace id and
// start, not by pointer: the store decodes its runs afresh at each call, so
// their identity changes while they do not.
type fragKey struct {
	newestTrace, oldestTrace string
	newestStart, oldestStart int64
	n                        int
}

func keyOf(runs []*result.Run) fragKey {
	n := min(len(runs), stripRuns)
	return fragKey{runs[0].TraceID, runs[n-1].TraceID, runs[0].Start.UnixNano(), runs[n-1].Start.UnixNano(), n}
}

type fragCache struct {
	mu    sync.Mutex
	flows map[string]*fragment
}

func (c *fragCache) get() map[string]*fragment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flows
}

func (c *fragCache) set(m map[string]*fragment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flows = m
}

func (s *server) statusPage(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	lq := parseListQuery(r.URL.Query())
	infos := s.o.Source.Flows()
	// Every flow's state, for the headline and the order, from its newest run
	// alone: reading all kept runs of every flow is what made 10,000 flows
	// cost seconds.
	rows := make([]flowRow, 0, len(infos))
	var failing, nodata int
	fast, _ := s.o.Source.(NewestFinalSource)
	for i := range infos {
		var st state
		if passed, ok := newestFinal(fast, infos[i].Name); ok {
			st = stateFailing
			if passed {
				st = statePassing
			}
		} else {
			newest := s.o.Source.Recent(infos[i].Name, 1)
			if len(newest) == 1 && !newest[0].Final() {
				// A retry confirming its failure is going: the state is
				// that of the last final run, further back.
				newest = s.o.Source.Recent(infos[i].Name, 0)
			}
			st = stateOf(newest)
		}
		switch st {
		case stateFailing:
			failing++
		case stateNoData:
			nodata++
		}
		if lq.match(&infos[i]) {
			rows = append(rows, flowRow{&infos[i], st == stateFailing})
		}
	}
	// Failing flows first: they are why the reader is here. Then by name.
	slices.SortStableFunc(rows, func(a, b flowRow) int {
		if a.failing != b.failing {
			if a.failing {
				return -1
			}
			return 1
		}
		return strings.Compare(a.info.Name, b.info.Name)
	})
	win := paginate(len(rows), lq.page, lq.perPage)
	shown := rows[win.start:win.end]
	flows := make([]flowRuns, len(shown))
	for i, row := range shown {
		flows[i] = flowRuns{row.info, s.o.Source.Recent(row.info.Name, 0)}
	}

	head := statusHead{}
	head.Overall, head.OverallClass = overall(len(infos), failing, nodata)
	head.Alerts = s.alertLines()
	title := "prober"
	if failing > 0 {
		title = "FAILING · " + head.Overall + " · prober" // what a browser tab shows
	}
	head.page = s.page(title, true)

	buf := s.bufs.get()
	defer s.bufs.put(buf)
	err := s.pages.t.ExecuteTemplate(buf, "statushead", head)
	var list *listView
	if len(infos) > 0 { // with no flows the headline says it all
		list = lq.list(len(infos), len(rows), win)
	}
	if err == nil && list != nil {
		err = s.pages.t.ExecuteTemplate(buf, "listtop", list)
	}
	old := s.frags.get()
	fresh := make(map[string]*fragment, len(flows))
	for i := 0; i < len(flows) && err == nil; i++ {
		var fr *fragment
		fr, err = s.renderFlow(buf, &flows[i], old[flows[i].info.Name], now)
		if fr != nil {
			fresh[flows[i].info.Name] = fr
		}
	}
	if err == nil && list != nil {
		err = s.pages.t.ExecuteTemplate(buf, "listfoot", list)
	}
	if err == nil {
		err = s.pages.t.ExecuteTemplate(buf, "foot", head.page)
	}
	if err != nil {
		text(w, http.StatusInternalServerError, "rendering page: "+err.Error())
		return
	}
	// Keep exactly this page's fragments: flows removed by a reload or not on
	// this page drop out, so the cache holds at most one page (per_page) of
	// flows whatever the number of flows.
	s.frags.set(fresh)

	h := w.Header()
	h.Set("Content-Security-Policy", s.pages.statusCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes()) // an error means the client went away
}

// newestFinal asks src (nil: not ok) how flow's newest run ended.
func newestFinal(src NewestFinalSource, flow string) (passed, ok bool) {
	if src == nil {
		return false, false
	}
	return src.NewestFinal(flow)
}

// renderFlow appends one flow's block to buf, reusing fr when it still shows
// the flow's latest runs. It returns the fragment to keep (nil: no runs).
func (s *server) renderFlow(buf *bytes.Buffer, f *flowRuns, fr *fragment, now time.Time) (*fragment, error) {
	t := s.pages.t
	fv := s.flowSummary(f.info, f.runs, now)
	if err := t.ExecuteTemplate(buf, "flowtop", fv); err != nil {
		return nil, err
	}
	if len(f.runs) == 0 {
		buf.WriteString("</section>\n")
		return nil, nil
	}
	hit := fr != nil && fr.key == keyOf(f.runs)
	if !hit {
		fr = &fragment{key: keyOf(f.runs)}
		addStrip(fv, f.runs)
	}
	if err := piece(t, buf, "flowstrip", fv, hit, &fr.strip); err != nil {
		return nil, err
	}
	if err := t.ExecuteTemplate(buf, "flowrun", fv.Last); err != nil {
		return nil, err
	}
	if !hit {
		s.addSteps(fv.Last, latestFinal(f.runs))
	}
	if err := piece(t, buf, "flowtable", fv.Last, hit, &fr.table); err != nil {
		return nil, err
	}
	buf.WriteString("</section>\n")
	return fr, nil
}

// piece writes a memoized fragment, or renders it and keeps a copy.
func piece(t *template.Template, buf *bytes.Buffer, name string, data any, hit bool, keep *[]byte) error {
	if hit {
		buf.Write(*keep)
		return nil
	}
	start := buf.Len()
	if err := t.ExecuteTemplate(buf, name, data); err != nil {
		return err
	}
	*keep = bytes.Clone(buf.Bytes()[start:])
	return nil
}

// overall is the one-line state of all flows and its CSS class.
func overall(n, failing, nodata int) (string, string) {
	flows := plural(n, "flow", "flows")
	switch {
	case n == 0:
		return "no flows configured", "nodata"
	case failing > 0:
		return fmt.Sprintf("%s of %s %s failing", thousands(failing), thousands(n), flows), "fail"
	case nodata == 0:
		return fmt.Sprintf("all %s %s passing", thousands(n), flows), "pass"
	default:
		return fmt.Sprintf("%s of %s %s passing, %s with no runs yet", thousands(n-nodata), thousands(n), flows, thousands(nodata)), "nodata"
	}
}
