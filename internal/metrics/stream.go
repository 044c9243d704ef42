package metrics

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// HandlerOpts configure Handler.
type HandlerOpts struct {
	// ErrorLog receives errors of gathering and of writing the response,
	// worded as promhttp words them. Optional.
	ErrorLog promhttp.Logger
}

// acceptedFormats are promhttp's with OpenMetrics on, less the protobuf
// ones: a protobuf family is one length-prefixed message, so it cannot be
// written in pieces without its whole size first (or split into several
// messages of the same name, which not every reader merges). A client that
// asks for protobuf gets text instead, as content negotiation allows.
var acceptedFormats = []expfmt.Format{expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtOpenMetrics_0_0_1, expfmt.FmtText}

// streamBatch is how many series are built and encoded at a time; with the
// flows' lock held only while each flow's numbers are copied, it bounds the
// memory of a scrape whatever the number of flows.
const streamBatch = 512

// familyOrder is the per-flow families sorted by name, the order in which
// they are merged into the registry's families.
var familyOrder = func() []family {
	out := make([]family, nFamilies)
	for i := range out {
		out[i] = family(i)
	}
	slices.SortFunc(out, func(a, b family) int { return strings.Compare(familyInfo[a].name, familyInfo[b].name) })
	return out
}()

// Handler serves /metrics as promhttp.HandlerFor(g, EnableOpenMetrics)
// would (same families, series and exemplars, format negotiation, gzip),
// except that the per-flow families are written straight from the flows'
// records, a few hundred series at a time, instead of being built all at
// once by the registry: about a hundred series per flow made a scrape of
// 10,000 flows allocate hundreds of megabytes. Every other family of g
// (Go and process collectors, the prober's own, other packages') is
// gathered and encoded as usual. g is normally the registry m was
// registered with; the per-flow collector stays registered there (names
// are checked against it, and a Gather sees every series), silenced only
// while a scrape gathers: a Gather by someone else at that very moment
// misses the per-flow families.
func (m *Metrics) Handler(g prometheus.Gatherer, opts HandlerOpts) http.Handler {
	gzips := &sync.Pool{New: func() any {
		// Not promhttp's default level: at 10,000 flows that took 0.7 s of
		// CPU per scrape for 4.2 MB; the fastest takes 0.15 s for 5.7 MB.
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return zw
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, g, opts.ErrorLog, gzips)
	})
}

func (m *Metrics) serve(w http.ResponseWriter, r *http.Request, g prometheus.Gatherer, errLog promhttp.Logger, gzips *sync.Pool) {
	logf := func(v ...any) {
		if errLog != nil {
			errLog.Println(v...)
		}
	}
	mfs, err := m.gatherQuiet(g)
	if err != nil {
		logf("error gathering metrics:", err)
		w.Header().Del("Content-Encoding")
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	format := expfmt.NegotiateAccept(r.Header, acceptedFormats...)
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	var (
		out io.Writer = w
		gz  *gzip.Writer
	)
	if acceptsGzip(r.Header) {
		gz = gzips.Get().(*gzip.Writer)
		defer gzips.Put(gz)
		gz.Reset(w)
		h.Set("Content-Encoding", "gzip")
		out = gz
	}
	var names map[string]bool // promhttp's name[] filter
	if r.URL != nil {
		if q := r.URL.Query()["name[]"]; len(q) > 0 {
			names = make(map[string]bool, len(q))
			for _, n := range q {
				names[n] = true
			}
		}
	}
	err = m.write(r.Context(), out, format, mfs, names)
	if gz != nil && err == nil {
		err = gz.Close()
	}
	if err != nil {
		// Headers are out: all that can be done is stop, as promhttp does.
		logf("error encoding and sending metric family:", err)
	}
}

// gatherQuiet gathers g with the per-flow families left out. Its error is
// the registry's, logged and served with promhttp's words around it.
func (m *Metrics) gatherQuiet(g prometheus.Gatherer) ([]*dto.MetricFamily, error) {
	m.quiet.Add(1)
	defer m.quiet.Add(-1)
	return g.Gather()
}

// write encodes mfs (gathered without the per-flow families) and the
// per-flow families to out in format, merged in name order; names, when
// not nil, selects families by name.
func (m *Metrics) write(ctx context.Context, out io.Writer, format expfmt.Format, mfs []*dto.MetricFamily, names map[string]bool) error {
	hf := &headerFilter{w: out}
	enc := expfmt.NewEncoder(hf, format)
	// Sorted already by a Registry; a merge must not rely on it.
	slices.SortStableFunc(mfs, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	encode := func(mf *dto.MetricFamily) error {
		if names != nil && !names[mf.GetName()] {
			return nil
		}
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("%s: %w", mf.GetName(), err)
		}
		return nil
	}
	st := &streamer{m: m, hf: hf, fds: m.flowList(), batch: cmp.Or(m.batch, streamBatch)}
	// The per-flow families' names and label names are valid legacy names,
	// which no escaping scheme changes: encoded without the encoder's
	// escaping pass, which copies every batch.
	switch format.FormatType() {
	case expfmt.TypeOpenMetrics:
		st.encode = func(w io.Writer, mf *dto.MetricFamily) (int, error) { return expfmt.MetricFamilyToOpenMetrics(w, mf) }
	default:
		st.encode = expfmt.MetricFamilyToText
	}
	i := 0
	for _, f := range familyOrder {
		name := familyInfo[f].name
		for ; i < len(mfs) && mfs[i].GetName() < name; i++ {
			if err := encode(mfs[i]); err != nil {
				return err
			}
		}
		// The same name in the registry (another collector's series with
		// other constant labels): one family, its header written once.
		headerDone := false
		for ; i < len(mfs) && mfs[i].GetName() == name; i++ {
			if err := encode(mfs[i]); err != nil {
				return err
			}
			headerDone = true
		}
		if names != nil && !names[name] {
			continue
		}
		if err := st.family(ctx, f, headerDone); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	for ; i < len(mfs); i++ {
		if err := encode(mfs[i]); err != nil {
			return err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		// OpenMetrics' final "# EOF".
		if err := c.Close(); err != nil {
			return fmt.Errorf("closing: %w", err)
		}
	}
	return nil
}

// acceptsGzip negotiates Accept-Encoding between identity and gzip as
// promhttp does: the highest q wins, identity on a tie.
func acceptsGzip(h http.Header) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for _, v := range h.Values("Accept-Encoding") {
			for spec := range strings.SplitSeq(v, ",") {
				coding, params, _ := strings.Cut(spec, ";")
				coding = strings.ToLower(strings.TrimSpace(coding))
				if coding != offer && coding != "*" {
					continue
				}
				q := 1.0
				if k, val, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
				if q > bestQ {
					best, bestQ = offer, q
				}
			}
		}
	}
	return best == "gzip" && bestQ > 0
}

// headerFilter passes what is written through to w, except that after
// dropHeader the comment lines (# HELP, # TYPE, # UNIT) that open what is
// written next are dropped: the header of a family already begun. Sample
// lines never start with '#'.
type headerFilter struct {
	w        io.Writer
	dropping bool // dropping the comment lines at the start of the output
	inLine   bool // inside such a line
}

func (f *headerFilter) dropHeader() { f.dropping, f.inLine = true, false }

func (f *headerFilter) Write(p []byte) (int, error) {
	n := len(p)
	for f.dropping && len(p) > 0 {
		if f.inLine {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p, f.inLine = p[i+1:], false
			continue
		}
		if p[0] != '#' {
			f.dropping = false
			break
		}
		f.inLine = true
	}
	if len(p) == 0 {
		return n, nil
	}
	k, err := f.w.Write(p)
	return n - len(p) + k, err
}

// streamer writes per-flow families in batches, reusing one set of dto
// messages for every batch.
type streamer struct {
	m      *Metrics
	encode func(io.Writer, *dto.MetricFamily) (int, error) // expfmt's
	hf     *headerFilter
	fds    []*flowData // sorted by name: the output is deterministic
	batch  int         // series per batch, at least (a flow's are not split)

	samples []sample
	exs     []exemplar // histogram exemplars of samples
	ids     []byte     // the batch's hex trace ids (see flush)
	mf      dto.MetricFamily
	metrics []*dto.Metric
	slots   []*metricSlot
	hists   []*histSlot
	exSlots []*exemplarSlot
	flps    []*dto.LabelPair // the flows' labels (the records keep none)
	nh, nx  int              // histSlots, exemplarSlots in use
	nf      int              // flps in use
}

// metricSlot, histSlot and exemplarSlot hold one series' dto and the
// values it points to, reused from batch to batch.
type metricSlot struct {
	m       dto.Metric
	labels  [6]*dto.LabelPair
	value   float64
	counter dto.Counter
	gauge   dto.Gauge
}

type histSlot struct {
	h          dto.Histogram
	count      uint64
	sum, inf   float64
	buckets    [nBuckets + 1]dto.Bucket
	ptrs       [nBuckets + 1]*dto.Bucket
	cumulative [nBuckets + 1]uint64
}

type exemplarSlot struct {
	ex    dto.Exemplar
	label dto.LabelPair
	lps   [1]*dto.LabelPair
	trace string
	id    int // trace is ids[id:id+32] when >= 0
	value float64
	ts    timestamppb.Timestamp
}

// family writes family f of every flow. headerDone: its HELP and TYPE are
// written already.
func (s *streamer) family(ctx context.Context, f family, headerDone bool) error {
	fi := &familyInfo[f]
	s.mf.Name, s.mf.Help, s.mf.Type = &fi.name, &fi.help, &fi.kind
	for i, fd := range s.fds {
		if s.nf == len(s.flps) {
			s.flps = append(s.flps, new(dto.LabelPair))
		}
		n := len(s.samples)
		s.samples = s.m.appendFlow(s.samples, fd, f, &s.exs, s.flps[s.nf])
		if len(s.samples) > n {
			s.nf++ // its series point to it until the flush
		}
		if len(s.samples) == 0 || (len(s.samples) < s.batch && i < len(s.fds)-1) {
			continue
		}
		// Between batches, so that a client gone (or a scrape timeout)
		// stops the work.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		if err := s.flush(headerDone); err != nil {
			return err
		}
		headerDone = true
	}
	return nil
}

// flush encodes the batch of samples.
func (s *streamer) flush(headerDone bool) error {
	s.metrics, s.nh, s.nx = s.metrics[:0], 0, 0
	for i := range s.samples {
		s.metrics = append(s.metrics, s.fill(i, &s.samples[i]))
	}
	if len(s.ids) > 0 {
		// One string for the batch's trace ids, which exemplars hold
		// decoded, rather than one each.
		ids := string(s.ids)
		for _, x := range s.exSlots[:s.nx] {
			if x.id >= 0 {
				x.trace = ids[x.id : x.id+traceIDLen]
			}
		}
		s.ids = s.ids[:0]
	}
	s.mf.Metric = s.metrics
	if headerDone {
		s.hf.dropHeader()
	}
	_, err := s.encode(s.hf, &s.mf)
	s.samples, s.exs, s.nf = s.samples[:0], s.exs[:0], 0
	return err
}

// fill makes slot i the dto of smp, as smp.Write would.
func (s *streamer) fill(i int, smp *sample) *dto.Metric {
	if i == len(s.slots) {
		s.slots = append(s.slots, new(metricSlot))
	}
	sl := s.slots[i]
	m := &sl.m
	m.Label = sl.labels[:copy(sl.labels[:], smp.labels[:smp.n])]
	slices.SortFunc(m.Label, compareLabels)
	m.Counter, m.Gauge, m.Histogram = nil, nil, nil
	sl.value = smp.value
	switch smp.kind {
	case dto.MetricType_COUNTER:
		sl.counter.Value, sl.counter.Exemplar = &sl.value, s.exemplar(smp.ex, smp.exOdd)
		m.Counter = &sl.counter
	case dto.MetricType_GAUGE:
		sl.gauge.Value = &sl.value
		m.Gauge = &sl.gauge
	case dto.MetricType_HISTOGRAM:
		m.Histogram = s.histogram(&smp.h)
	}
	return m
}

// histogram is h.dto() in reused storage.
func (s *streamer) histogram(h *histo) *dto.Histogram {
	if s.nh == len(s.hists) {
		s.hists = append(s.hists, new(histSlot))
	}
	hs := s.hists[s.nh]
	s.nh++
	hs.count, hs.sum = h.count(), h.sum
	hs.h.SampleCount, hs.h.SampleSum = &hs.count, &hs.sum
	n := 0
	h.eachBucket(&hs.cumulative, func(i int, e *exemplar, odd string) {
		var ub *float64
		if i < nBuckets {
			ub = &durationBuckets[i]
		} else if e != nil {
			// An exemplar on +Inf needs that bucket spelled out.
			hs.inf = math.Inf(1)
			ub = &hs.inf
		} else {
			return
		}
		b := &hs.buckets[n]
		b.CumulativeCount, b.UpperBound, b.Exemplar = &hs.cumulative[i], ub, nil
		if e != nil {
			b.Exemplar = s.exemplar(*e, odd)
		}
		hs.ptrs[n] = b
		n++
	})
	hs.h.Bucket = hs.ptrs[:n]
	// Rule thresholds, on the few histograms with some: a fresh slice.
	hs.h.Bucket = h.withExtra(hs.h.Bucket, &hs.cumulative)
	return &hs.h
}

// exemplar is e.dto(odd) in reused storage; its trace id is set by flush.
func (s *streamer) exemplar(e exemplar, odd string) *dto.Exemplar {
	if e.id == (traceID{}) && odd == "" {
		return nil
	}
	if s.nx == len(s.exSlots) {
		s.exSlots = append(s.exSlots, new(exemplarSlot))
	}
	x := s.exSlots[s.nx]
	s.nx++
	x.trace, x.id, x.value = odd, -1, e.value
	if e.id != (traceID{}) {
		x.id = len(s.ids)
		s.ids = e.id.appendHex(s.ids)
	}
	x.label.Name, x.label.Value = &traceIDName, &x.trace
	x.lps[0] = &x.label
	t := time.Unix(0, e.at)
	x.ts.Seconds, x.ts.Nanos = t.Unix(), int32(t.Nanosecond())
	x.ex.Label, x.ex.Value, x.ex.Timestamp = x.lps[:], &x.value, &x.ts
	return &x.ex
}
