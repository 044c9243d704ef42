package web

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// The status page lists one page of flows: at 10,000 flows the whole list is
// ~60 MB of HTML and ~300,000 runs read from the store per view. What the
// reader is paged for comes first (failing flows), and a filter finds the
// rest.

// Page sizes of the status page's flow list (?per_page=).
const (
	defaultPerPage = 100
	maxPerPage     = 1000
)

// listQuery is what the status page's query string asks of the flow list.
// Bad values fall back to the defaults rather than failing: the page is what
// someone opens when paged, so it always answers.
type listQuery struct {
	q       string // the filter as typed, trimmed; "" = every flow
	lower   string // q in lower case, for matching
	page    int    // 1-based as asked; window clamps it to the last page
	perPage int
	// keepPerPage: per_page was given, valid and not the default, so links
	// keep it.
	keepPerPage bool
}

func parseListQuery(v url.Values) listQuery {
	lq := listQuery{q: strings.TrimSpace(v.Get("q")), page: 1, perPage: defaultPerPage}
	lq.lower = strings.ToLower(lq.q)
	if n, err := strconv.Atoi(v.Get("per_page")); err == nil && n >= 1 && n <= maxPerPage {
		lq.perPage, lq.keepPerPage = n, n != defaultPerPage
	}
	switch n, err := strconv.Atoi(v.Get("page")); {
	case err == nil && n >= 1:
		lq.page = n
	case errors.Is(err, strconv.ErrRange) && n > 0:
		lq.page = math.MaxInt // a page number too big for an int is past any end
	}
	return lq
}

// match reports whether f passes the filter: a case-insensitive substring of
// its name, description or one of its labels as "k=v".
func (lq *listQuery) match(f *FlowInfo) bool {
	if lq.lower == "" {
		return true
	}
	if strings.Contains(strings.ToLower(f.Name), lq.lower) ||
		strings.Contains(strings.ToLower(f.Description), lq.lower) {
		return true
	}
	for k, v := range f.Labels {
		if strings.Contains(strings.ToLower(k+"="+v), lq.lower) {
			return true
		}
	}
	return false
}

// href links to page of the list with the same filter and page size. The
// values are query-escaped here; html/template escapes the attribute.
func (lq *listQuery) href(page int) string {
	v := url.Values{}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if lq.keepPerPage {
		v.Set("per_page", strconv.Itoa(lq.perPage))
	}
	if lq.q != "" {
		v.Set("q", lq.q)
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// window is the part of a list of n flows that a page shows: [start, end).
type window struct {
	page, pages, start, end int
}

// paginate picks the page asked for, or the last one when it is past the end
// (an empty list has one empty page).
func paginate(n, page, perPage int) window {
	pages := max(1, (n+perPage-1)/perPage)
	page = min(max(page, 1), pages)
	start := (page - 1) * perPage
	return window{page, pages, start, min(start+perPage, n)}
}

// listView is the top and bottom of the status page's flow list: the filter
// form, how many flows match, and the pager.
type listView struct {
	Q       string // the filter, kept in the form
	PerPage int    // a page size to keep in the form, 0 = the default
	Matches string // `12 of 10,000 flows match "checkout"`; "" without a filter
	Empty   string // why no flows are listed; "" when some are
	Reset   string // a link to the unfiltered list; "" without a filter
	Pager   *pager // nil when every match fits on one page
}

type pager struct {
	Shown                   string // "flows 101–200 of 10,000"
	Page                    string // "page 2 of 100"
	First, Prev, Next, Last string // links; "" at that end
}

// list describes the flow list for a query that matched matched of total
// flows and the window of them shown.
func (lq *listQuery) list(total, matched int, w window) *listView {
	lv := &listView{Q: lq.q}
	if lq.keepPerPage {
		lv.PerPage = lq.perPage
	}
	if lq.q != "" {
		lv.Matches = fmt.Sprintf("%s of %s %s %s %s", thousands(matched), thousands(total),
			plural(total, "flow", "flows"), plural(matched, "matches", "match"), `"`+lq.q+`"`)
		keep := listQuery{perPage: lq.perPage, keepPerPage: lq.keepPerPage}
		lv.Reset = keep.href(1)
		if matched == 0 {
			lv.Empty = `No flow has "` + lq.q + `" in its name, description or labels.`
		}
	}
	if w.pages > 1 {
		p := &pager{Shown: fmt.Sprintf("flows %s–%s of %s", thousands(w.start+1), thousands(w.end), thousands(matched)),
			Page: fmt.Sprintf("page %s of %s", thousands(w.page), thousands(w.pages))}
		if w.page > 1 {
			p.First, p.Prev = lq.href(1), lq.href(w.page-1)
		}
		if w.page < w.pages {
			p.Next, p.Last = lq.href(w.page+1), lq.href(w.pages)
		}
		lv.Pager = p
	}
	return lv
}

// thousands prints n with comma separators: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
