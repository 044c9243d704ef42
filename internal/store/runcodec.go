package store

import (
	"encoding/binary"
	"encoding/hex"
	"time"
	"unsafe"

	"github.com/prober-dev/prober/internal/result"
)

// The runs kept in full are kept encoded: a result.Run of 4 steps is about
// 1.6 KB of structs, strings and pointers the collector scans at every
// cycle; encoded it is one pointer-free slice of about 450 bytes. Runs are
// decoded only when read (status page, API), which is rare next to the
// 10,000 observed a minute.
//
// The encoding has no version of its own: in memory it lives only as long
// as the process; the archive (archive.go) stores it behind
// archiveRunVersion, which a change of layout here must bump. Strings are a uvarint length and their bytes; ids that
// are lowercase hex are kept decoded; times as Unix nanoseconds (so they
// come back in UTC, without a monotonic reading); durations as nanoseconds.
// Decoding is lossless otherwise (see TestRunCodecRoundTrip).

// Field tags of ids (appendID).
const (
	idRaw   = 0 // a uvarint length and the bytes
	idHex8  = 1 // 8 bytes: 16 lowercase hex digits
	idHex16 = 2 // 16 bytes: 32 lowercase hex digits
)

// Bits of a run's and a step's flags byte.
const (
	encRetried = 1 << iota
	encSummarized
	encNoStart
	encNoPlanned
	encCleanup
	encReused
	encNoStepStart
	encKindPart // a step kind's name and attributes follow the failures
)

// A run's flags byte has bits to spare (the step bits above are a step's):
// encStepFlags2 says that each of its steps has a second flags byte after
// its first. Runs encoded before it (no bit, no byte) decode as they were,
// and runs whose steps need none of its bits (every passing run) pay nothing.
const encStepFlags2 = encCleanup

// encCompact (a run's flags byte; the bit is a step's encReused) says that
// the run's and its steps' statuses and the steps' methods are coded bytes
// (codeOf), and each step's URL is the length of the prefix it shares with
// the step before's, then the rest: the URLs of a flow's steps share their
// scheme and host, often their path. A four-step run of the load
// harness's flows encodes to about 316 bytes instead of 452. Every run is
// encoded so since; runs encoded before (without the bit) decode as they
// were.
const encCompact = encReused

// The strings coded as 1 + their index (0: not in the list, the string
// follows).
var (
	statusCodes = []string{string(result.Passed), string(result.Failed), string(result.Skipped)}
	methodCodes = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
)

// Bits of a step's second flags byte.
const (
	encResponse   = 1 << iota // a kept response follows the kind part
	encRetries                // the step's retries (a varint) follow the response
	encScreenshot             // a screenshot (size, width, height, PNG) follows the retries
)

// appendRun appends r, its flow name and labels excepted, to b.
func appendRun(b []byte, r *result.Run) []byte {
	var flags byte
	if r.Retried {
		flags |= encRetried
	}
	if r.Summarized {
		flags |= encSummarized
	}
	if r.Start.IsZero() {
		flags |= encNoStart
	}
	if r.Planned.IsZero() {
		flags |= encNoPlanned
	}
	flags2 := false
	for i := range r.Steps {
		flags2 = flags2 || stepFlags2(&r.Steps[i]) != 0
	}
	if flags2 {
		flags |= encStepFlags2
	}
	flags |= encCompact
	b = append(b, flags)
	b = appendID(b, r.ID)
	b = appendID(b, r.TraceID)
	b = appendID(b, r.RetryOf)
	b = appendString(b, r.Region)
	var start int64 // what the other times are relative to
	if !r.Start.IsZero() {
		start = r.Start.UnixNano()
		b = binary.AppendVarint(b, start)
	}
	if !r.Planned.IsZero() {
		b = binary.AppendVarint(b, r.Planned.UnixNano()-start)
	}
	b = binary.AppendVarint(b, int64(r.Duration))
	b = appendCoded(b, string(r.Status), statusCodes)
	b = appendClass(b, r.Class)
	b = appendString(b, r.FailedStep)
	b = binary.AppendVarint(b, int64(r.Retry))
	b = binary.AppendUvarint(b, uint64(len(r.Steps)))
	prevURL := ""
	for i := range r.Steps {
		b = appendStep(b, &r.Steps[i], start, flags2, prevURL)
		prevURL = r.Steps[i].URL
	}
	return b
}

// appendCoded appends s as 1 + its index in codes, or 0 and s.
func appendCoded(b []byte, s string, codes []string) []byte {
	for i, c := range codes {
		if c == s {
			return append(b, byte(i+1))
		}
	}
	return appendString(append(b, 0), s)
}

// appendURL appends url as the length of its common prefix with prev and
// the rest.
func appendURL(b []byte, url, prev string) []byte {
	n := 0
	for n < len(url) && n < len(prev) && url[n] == prev[n] {
		n++
	}
	b = binary.AppendUvarint(b, uint64(n))
	return appendString(b, url[n:])
}

// stepFlags2 is s's second flags byte.
func stepFlags2(s *result.Step) byte {
	var f byte
	if s.Response != nil {
		f |= encResponse
	}
	if s.Retries != 0 {
		f |= encRetries
	}
	if s.Screenshot != nil {
		f |= encScreenshot
	}
	return f
}

// appendStep appends s compactly (encCompact), prevURL being the URL of
// the step before ("" for the first).
func appendStep(b []byte, s *result.Step, runStart int64, withFlags2 bool, prevURL string) []byte {
	var flags byte
	if s.Cleanup {
		flags |= encCleanup
	}
	if s.Timings.Reused {
		flags |= encReused
	}
	if s.Start.IsZero() {
		flags |= encNoStepStart
	}
	if s.Kind != "" || len(s.Attrs) > 0 {
		flags |= encKindPart // HTTP steps pay nothing for it
	}
	b = append(b, flags)
	flags2 := stepFlags2(s)
	if withFlags2 {
		b = append(b, flags2)
	}
	b = appendString(b, s.Name)
	b = appendString(b, s.Dependency)
	b = appendID(b, s.SpanID)
	b = appendCoded(b, s.Method, methodCodes)
	b = appendURL(b, s.URL, prevURL)
	b = appendCoded(b, string(s.Status), statusCodes)
	b = appendClass(b, s.Class)
	b = binary.AppendVarint(b, int64(s.HTTPStatus))
	b = binary.AppendVarint(b, int64(s.Attempts))
	if !s.Start.IsZero() {
		b = binary.AppendVarint(b, s.Start.UnixNano()-runStart)
	}
	for _, d := range [...]time.Duration{s.Duration, s.Timings.DNS, s.Timings.Connect, s.Timings.TLS,
		s.Timings.Processing, s.Timings.Transfer, s.Timings.FirstByte} {
		b = binary.AppendVarint(b, int64(d))
	}
	b = binary.AppendVarint(b, s.BodyBytes)
	b = binary.AppendUvarint(b, uint64(len(s.Failures)))
	for _, f := range s.Failures {
		b = appendString(b, f.Expectation)
		b = appendString(b, f.Actual)
		b = appendString(b, f.Message)
	}
	if flags&encKindPart != 0 {
		b = appendString(b, s.Kind)
		b = binary.AppendUvarint(b, uint64(len(s.Attrs)))
		for _, a := range s.Attrs {
			b = appendString(b, a.Name)
			b = appendString(b, a.Value)
		}
	}
	if flags2&encResponse != 0 {
		b = appendResponse(b, s.Response)
	}
	if flags2&encRetries != 0 {
		b = binary.AppendVarint(b, int64(s.Retries))
	}
	if flags2&encScreenshot != 0 {
		sh := s.Screenshot
		b = binary.AppendVarint(b, int64(sh.Bytes))
		b = binary.AppendVarint(b, int64(sh.Width))
		b = binary.AppendVarint(b, int64(sh.Height))
		b = binary.AppendUvarint(b, uint64(len(sh.PNG)))
		b = append(b, sh.PNG...)
	}
	return b
}

func appendResponse(b []byte, r *result.Response) []byte {
	b = appendString(b, r.Proto)
	b = binary.AppendVarint(b, int64(r.Status))
	b = binary.AppendUvarint(b, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	b = appendString(b, string(r.Body))
	if r.Truncated {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendClass writes a known class as 1 + its index in result.Classes, an
// unknown one as 0 and the string.
func appendClass(b []byte, c result.Class) []byte {
	for i, k := range result.Classes {
		if k == c {
			return append(b, byte(i+1))
		}
	}
	return appendString(append(b, 0), string(c))
}

func appendID(b []byte, s string) []byte {
	var raw [16]byte
	switch {
	case len(s) == 16 && unhex(raw[:8], s):
		return append(append(b, idHex8), raw[:8]...)
	case len(s) == 32 && unhex(raw[:], s):
		return append(append(b, idHex16), raw[:]...)
	}
	return appendString(append(b, idRaw), s)
}

// runDecoder reads an encoding made by appendRun. The encoding is
// converted to one string, so that the run's strings share it (one
// allocation rather than one per string). A short or malformed input
// (which appendRun never makes) yields zero values, never a panic.
type runDecoder struct {
	s       string
	bad     bool
	compact bool // encCompact
}

func decodeRun(enc []byte, flow string, labels map[string]string) *result.Run {
	r, _ := decodeRunChecked(string(enc), flow, labels)
	return r
}

// decodeRunChecked is decodeRun that says whether the encoding was whole
// and well formed.
func decodeRunChecked(enc string, flow string, labels map[string]string) (*result.Run, bool) {
	d := runDecoder{s: enc}
	r := &result.Run{Flow: flow, Labels: labels}
	flags := d.byte()
	d.compact = flags&encCompact != 0
	r.Retried = flags&encRetried != 0
	r.Summarized = flags&encSummarized != 0
	r.ID = d.id()
	r.TraceID = d.id()
	r.RetryOf = d.id()
	r.Region = d.string()
	var start int64
	if flags&encNoStart == 0 {
		start = d.varint()
		r.Start = time.Unix(0, start).UTC()
	}
	if flags&encNoPlanned == 0 {
		r.Planned = time.Unix(0, start+d.varint()).UTC()
	}
	r.Duration = time.Duration(d.varint())
	r.Status = result.Status(d.coded(statusCodes))
	r.Class = d.class()
	r.FailedStep = d.string()
	r.Retry = int(d.varint())
	n := d.uvarint()
	if n > uint64(len(d.s)) { // each step takes at least one byte
		n = 0
	}
	if n > 0 {
		r.Steps = make([]result.Step, n)
	}
	prevURL := ""
	for i := range r.Steps {
		d.step(&r.Steps[i], start, flags&encStepFlags2 != 0, prevURL)
		prevURL = r.Steps[i].URL
	}
	return r, !d.bad && len(d.s) == 0
}

// runHead reads what a run's encoding says before its steps: whether it
// was retried and whether it passed, allocating nothing (ids are skipped,
// not decoded; enc is read in place, and nothing read from it outlives
// the call). whole is false for an encoding too short or malformed.
func runHead(enc []byte) (retried, passed, whole bool) {
	d := runDecoder{s: unsafe.String(unsafe.SliceData(enc), len(enc))}
	flags := d.byte()
	d.compact = flags&encCompact != 0
	for range 3 { // ID, TraceID, RetryOf
		d.skipID()
	}
	d.string() // Region
	if flags&encNoStart == 0 {
		d.varint()
	}
	if flags&encNoPlanned == 0 {
		d.varint()
	}
	d.varint() // Duration
	status := d.coded(statusCodes)
	if d.bad {
		return false, false, false
	}
	return flags&encRetried != 0, status == string(result.Passed), true
}

// skipID passes over an id appendID wrote.
func (d *runDecoder) skipID() {
	switch d.byte() {
	case idRaw:
		d.string()
	case idHex8:
		d.skip(8)
	case idHex16:
		d.skip(16)
	default:
		d.bad = true
	}
}

func (d *runDecoder) skip(n int) {
	if n > len(d.s) {
		d.bad = true
		d.s = ""
		return
	}
	d.s = d.s[n:]
}

func (d *runDecoder) step(s *result.Step, runStart int64, withFlags2 bool, prevURL string) {
	flags := d.byte()
	var flags2 byte
	if withFlags2 {
		flags2 = d.byte()
	}
	s.Cleanup = flags&encCleanup != 0
	s.Timings.Reused = flags&encReused != 0
	s.Name = d.string()
	s.Dependency = d.string()
	s.SpanID = d.id()
	if d.compact {
		s.Method = d.coded(methodCodes)
		s.URL = d.url(prevURL)
		s.Status = result.Status(d.coded(statusCodes))
	} else {
		s.Method = d.string()
		s.URL = d.string()
		s.Status = result.Status(d.string())
	}
	s.Class = d.class()
	s.HTTPStatus = int(d.varint())
	s.Attempts = int(d.varint())
	if flags&encNoStepStart == 0 {
		s.Start = time.Unix(0, runStart+d.varint()).UTC()
	}
	for _, p := range [...]*time.Duration{&s.Duration, &s.Timings.DNS, &s.Timings.Connect, &s.Timings.TLS,
		&s.Timings.Processing, &s.Timings.Transfer, &s.Timings.FirstByte} {
		*p = time.Duration(d.varint())
	}
	s.BodyBytes = d.varint()
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		n = 0
	}
	if n > 0 {
		s.Failures = make([]result.Failure, n)
	}
	for i := range s.Failures {
		f := &s.Failures[i]
		f.Expectation, f.Actual, f.Message = d.string(), d.string(), d.string()
	}
	if flags&encKindPart != 0 {
		s.Kind = d.string()
		s.Attrs = d.attrs()
	}
	if flags2&encResponse != 0 {
		s.Response = &result.Response{Proto: d.string(), Status: int(d.varint()), Headers: d.attrs()}
		if body := d.string(); body != "" {
			s.Response.Body = []byte(body)
		}
		s.Response.Truncated = d.byte() == 1
	}
	if flags2&encRetries != 0 {
		s.Retries = int(d.varint())
	}
	if flags2&encScreenshot != 0 {
		s.Screenshot = &result.Screenshot{Bytes: int(d.varint()), Width: int(d.varint()), Height: int(d.varint())}
		if png := d.string(); png != "" {
			s.Screenshot.PNG = []byte(png)
		}
	}
}

func (d *runDecoder) attrs() []result.Attr {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		n = 0
	}
	if n == 0 {
		return nil
	}
	as := make([]result.Attr, n)
	for i := range as {
		as[i].Name, as[i].Value = d.string(), d.string()
	}
	return as
}

func (d *runDecoder) byte() byte {
	if len(d.s) == 0 {
		d.bad = true
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *runDecoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := d.byte()
		if d.bad {
			return 0
		}
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	d.bad = true
	return 0
}

func (d *runDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *runDecoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.bad = true
		d.s = ""
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

// coded reads a string appendCoded wrote (or, for a run encoded before
// encCompact, appendString).
func (d *runDecoder) coded(codes []string) string {
	if !d.compact {
		return d.string()
	}
	i := int(d.byte())
	if i == 0 {
		return d.string()
	}
	if i <= len(codes) {
		return codes[i-1]
	}
	d.bad = true
	return ""
}

// url reads a URL appendURL wrote after prev.
func (d *runDecoder) url(prev string) string {
	n := d.uvarint()
	if n > uint64(len(prev)) {
		d.bad = true
		return ""
	}
	rest := d.string()
	switch {
	case rest == "":
		return prev[:n]
	case n == 0:
		return rest
	}
	return prev[:n] + rest
}

func (d *runDecoder) class() result.Class {
	i := int(d.byte())
	if i == 0 {
		return result.Class(d.string())
	}
	if i <= len(result.Classes) {
		return result.Classes[i-1]
	}
	d.bad = true
	return ""
}

func (d *runDecoder) id() string {
	var n int
	switch d.byte() {
	case idRaw:
		return d.string()
	case idHex8:
		n = 8
	case idHex16:
		n = 16
	default:
		d.bad = true
		return ""
	}
	if len(d.s) < n {
		d.bad, d.s = true, ""
		return ""
	}
	v := hex.EncodeToString([]byte(d.s[:n]))
	d.s = d.s[n:]
	return v
}
