package config

import (
	"errors"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// flowEntry is one flow file to load, with the overrides of its entry in
// probes.yaml.
type flowEntry struct {
	path   string
	at     *yaml.Node // the path in probes.yaml
	vars   map[string]string
	labels map[string]string
	sched  schedParts
}

func (l *loader) flowEntries(f *file, o *object) []*flowEntry {
	n := o.get("flows")
	if n == nil {
		at := o.key("flows")
		if at == nil {
			at = o.n
		}
		f.errorf(at, "flows: list at least one flow file")
		return nil
	}
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	default:
		f.errorf(n, "expected a list of flow files, got %s", describe(n))
		return nil
	}
	if len(items) == 0 {
		f.errorf(n, "flows: list at least one flow file")
	}
	var out []*flowEntry
	seen := map[string]Pos{}
	for _, it := range items {
		it = f.node(it)
		e := &flowEntry{}
		var pn *yaml.Node
		switch {
		case it.Kind == yaml.MappingNode:
			eo := f.object(it, "flow entry", []string{"file", "vars", "every", "cron", "timezone", "labels"})
			if vn := eo.get("vars"); vn != nil {
				e.vars = map[string]string{}
				l.varsInto(f, vn, e.vars)
			}
			if ln := eo.get("labels"); ln != nil {
				e.labels = map[string]string{}
				f.labelsInto(ln, e.labels)
			}
			e.sched = f.schedParts(eo)
			if pn = eo.get("file"); pn == nil {
				f.errorf(it, "flow entry needs file:")
				continue
			}
		case f.isScalar(it):
			pn = it
		default:
			f.errorf(it, "expected a flow file path or a mapping with file:, got %s", describe(it))
			continue
		}
		pat, ok := f.plain(pn, "a flow file path or glob", "flow paths cannot use {{...}}")
		if !ok {
			continue
		}
		for _, p := range l.expand(f, pn, pat) {
			if first, dup := seen[p]; dup {
				f.errorf(pn, "flow file %s is listed twice (first at %s)", p, first)
				continue
			}
			seen[p] = f.pos(pn)
			ee := *e
			ee.path, ee.at = p, pn
			out = append(out, &ee)
		}
	}
	return out
}

// whyConfigDir says why flow files must be under probes.yaml's directory,
// and what to do: the message of a refused flow path.
const whyConfigDir = "the configuration is read as one directory tree (what validate checks is what the daemon and its container load); move or copy the flow file under that directory and list it relative to it, e.g. flows/name.yaml"

// expand resolves a flow path or glob relative to f's directory.
func (l *loader) expand(f *file, n *yaml.Node, pat string) []string {
	if pat == "" {
		f.errorf(n, "empty flow file path")
		return nil
	}
	if path.IsAbs(pat) || filepath.IsAbs(pat) {
		f.errorf(n, "flow path %s must be relative to the directory of %s: %s", quote(pat), path.Base(f.name), whyConfigDir)
		return nil
	}
	full := path.Join(f.dir, pat)
	if !fs.ValidPath(full) {
		f.errorf(n, "flow path %s is outside the configuration directory (the directory of %s): %s", quote(pat), path.Base(f.name), whyConfigDir)
		return nil
	}
	if !strings.ContainsAny(pat, `*?[\`) {
		st, err := fs.Stat(l.fsys, full)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.errorf(n, "flow file %s does not exist", full)
			return nil
		case err != nil:
			f.errorf(n, "%s", readError(err))
			return nil
		case st.IsDir():
			f.errorf(n, "flow file %s is a directory", full)
			return nil
		}
		return []string{full}
	}
	matches, err := fs.Glob(l.fsys, full)
	if err != nil {
		f.errorf(n, "bad glob %s: %v", quote(pat), err)
		return nil
	}
	var out []string
	for _, m := range matches {
		if m == f.name {
			continue // flows: ["*.yaml"] beside probes.yaml means the others
		}
		if st, err := fs.Stat(l.fsys, m); err == nil && !st.IsDir() {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		f.errorf(n, "glob %s matches no flow files", quote(pat))
	}
	return out
}

// schedParts are the schedule fields of a flow file or a flow entry,
// checked one by one; which of them apply is decided per flow.
type schedParts struct {
	f               *file
	every, cron, tz *yaml.Node // as given; nil when absent
	everyV          time.Duration
	cronV           string
	loc             *time.Location
}

func (f *file) schedParts(o *object) schedParts {
	sp := schedParts{f: f, every: o.get("every"), cron: o.get("cron"), tz: o.get("timezone")}
	if sp.every != nil {
		sp.everyV, _ = f.every(sp.every)
	}
	if sp.cron != nil {
		if s, ok := f.str(sp.cron, "a cron spec"); ok {
			if _, err := ParseCron(s); err != nil {
				f.errorf(sp.cron, "%v", err)
			} else {
				sp.cronV = strings.TrimSpace(s)
			}
		}
		if sp.every != nil {
			f.errorf(sp.cron, "set either every or cron, not both")
		}
	}
	if sp.tz != nil {
		if name, ok := f.str(sp.tz, "a time zone name"); ok {
			if loc, err := time.LoadLocation(name); err != nil || name == "" {
				f.errorf(sp.tz, "unknown time zone %s", quote(name))
			} else {
				sp.loc = loc
			}
		}
	}
	return sp
}

func (sp schedParts) set() bool { return sp.every != nil || sp.cron != nil }

// schedule decides a flow's schedule: the entry's every/cron if it sets one,
// else the flow file's, else the default every. An entry's timezone alone
// applies to the flow file's cron.
func schedule(c *common, entry, flow schedParts) Schedule {
	src, tz := flow, flow
	switch {
	case entry.set():
		src, tz = entry, entry
	case entry.tz != nil:
		tz = entry
	}
	if src.cron != nil {
		loc := tz.loc
		if loc == nil {
			loc = time.UTC
		}
		return Schedule{Cron: src.cronV, Location: loc}
	}
	if tz.tz != nil {
		tz.f.errorf(tz.tz, "timezone applies only to cron schedules")
	}
	if src.every != nil {
		return Schedule{Every: src.everyV}
	}
	return Schedule{Every: c.defs.every}
}

// flowCtx is the state of compiling one flow.
type flowCtx struct {
	l           *loader
	c           *common
	f           *file
	fl          *Flow
	stepTimeout time.Duration
	headers     []Header // flow-level: probes.yaml defaults overlaid by the flow file's
	headerUses  []use    // placeholders in the flow file's headers
	steps       []*stepInfo
	stepNames   map[string]Pos
	// includes is the chain of files being included (for cycles), and
	// prefix what their as: put before step names.
	includes []string
	prefix   string
}

// stepInfo is a compiled step and what its variables check needs.
type stepInfo struct {
	step *Step
	uses []use
	caps []string // names this step captures
}

// flow loads one flow file. It returns the flow's name node for the
// duplicate-name check across flows.
func (l *loader) flow(c *common, e *flowEntry) (*Flow, *yaml.Node) {
	data, err := readBounded(l.fsys, e.path, maxFileSize)
	if err != nil {
		c.probes.errorf(e.at, "%s", readError(err))
		return nil, nil
	}
	f, root := l.parse(e.path, data)
	if root == nil || !f.isMapping(root, "flow") {
		return nil, nil
	}
	o := f.topObject(root, "flow", []string{
		"name", "description", "every", "cron", "timezone", "timeout", "step_timeout", "labels", "vars",
		"headers", "body_limit", "keep_response", "follow_redirects", "max_redirects", "tls", "steps", "cleanup", "retries",
		"run_on_start", "metrics", "auth",
	})
	fl := &Flow{File: e.path, Pos: f.pos(root), Labels: map[string]string{}, Vars: map[string]string{}, FlowDef: &FlowDef{}}
	fc := &flowCtx{l: l, c: c, f: f, fl: fl, stepNames: map[string]Pos{}, includes: []string{e.path}}

	nameNode := o.get("name")
	if nameNode == nil {
		f.errorf(root, "flow needs a name")
	} else if s, ok := f.str(nameNode, "a flow name"); ok {
		if validSlug(s) {
			fl.Name = s
		} else {
			f.errorf(nameNode, "flow name %s must match [a-z0-9][a-z0-9_-]*", quote(s))
		}
	}
	if n := o.get("description"); n != nil {
		fl.Description, _ = f.str(n, "a description")
	}

	// Later wins: probes.yaml's vars, the flow file's, the entry's.
	maps.Copy(fl.Vars, c.vars)
	l.varsInto(f, o.get("vars"), fl.Vars)
	maps.Copy(fl.Vars, e.vars)
	f.labelsInto(o.get("labels"), fl.Labels)
	maps.Copy(fl.Labels, e.labels)

	fl.Schedule = schedule(c, e.sched, f.schedParts(o))
	if l.every >= time.Second {
		fl.Schedule = Schedule{Every: l.every}
	}

	fl.Timeout = c.defs.timeout
	if n := o.get("timeout"); n != nil {
		if t, ok := f.positive(n, "timeout"); ok {
			fl.Timeout = t
		}
	}
	// An inherited step timeout is capped by the flow's timeout; one the flow
	// sets itself must fit.
	fc.stepTimeout = min(c.defs.stepTimeout, fl.Timeout)
	if n := o.get("step_timeout"); n != nil {
		if t, ok := f.positive(n, "step_timeout"); ok {
			if t > fl.Timeout {
				f.errorf(n, "step_timeout %s is longer than the flow timeout %s", t, fl.Timeout)
			} else {
				fc.stepTimeout = t
			}
		}
	}
	fl.Retries = c.defs.retries
	if n := o.get("retries"); n != nil {
		if v, ok := f.integer(n, "retries", 0, 3); ok {
			fl.Retries = int(v)
		}
	}
	fl.RunOnStart = c.defs.runOnStart
	if n := o.get("run_on_start"); n != nil {
		if b, ok := f.boolean(n); ok {
			fl.RunOnStart = b
		}
	}
	fl.RunOnStart = fl.RunOnStart || l.runOnStart
	fl.Metrics = c.metrics
	if n := o.get("metrics"); n != nil {
		if lv, ok := f.metricsLevel(n); ok {
			fl.Metrics = lv
		}
	}
	fl.HTTP = c.defs.http
	f.httpOptions(o, &fl.HTTP)
	if n := o.get("auth"); n != nil {
		if a, ok := l.auth(f, n, c); ok {
			fl.HTTP.Auth = a
		}
	} else if n := o.key("auth"); n != nil {
		fl.HTTP.Auth = nil // auth: with nothing: none of the defaults'
	}
	fc.headers = overlayHeaders(c.defs.headers, f.headers(o.get("headers"), &fc.headerUses))

	if steps := o.get("steps"); steps == nil {
		at := o.key("steps")
		if at == nil {
			at = root
		}
		f.errorf(at, "flow needs at least one step")
	} else {
		fl.Steps = fc.stepList(steps, false)
		if len(fl.Steps) == 0 && steps.Kind == yaml.SequenceNode && !hasInclude(f, steps) {
			f.errorf(steps, "flow needs at least one step")
		}
	}
	if cl := o.get("cleanup"); cl != nil {
		fl.Cleanup = fc.stepList(cl, true)
	}
	fc.checkRefs()
	// The notes of this flow's includes end with it: a file it included
	// may be another flow's, or included there from elsewhere.
	clear(l.via)
	l.share(fl)
	return fl, nameNode
}

func (fc *flowCtx) stepList(n *yaml.Node, cleanup bool) []*Step {
	if n.Kind != yaml.SequenceNode {
		what := "steps"
		if cleanup {
			what = "cleanup steps"
		}
		fc.f.errorf(n, "expected a list of %s, got %s", what, describe(n))
		return nil
	}
	var out []*Step
	for _, info := range fc.stepInfos(n, cleanup) {
		out = append(out, info.step)
	}
	return out
}

// stepInfos compiles a list of steps, expanding includes, and records them
// in fc.steps in run order.
func (fc *flowCtx) stepInfos(n *yaml.Node, cleanup bool) []*stepInfo {
	if n.Kind != yaml.SequenceNode {
		fc.f.errorf(n, "expected a list of steps, got %s", describe(n))
		return nil
	}
	var out []*stepInfo
	for _, item := range n.Content {
		if isInclude(fc.f, item) {
			out = append(out, fc.include(item, cleanup)...)
			continue
		}
		info := fc.step(item, cleanup)
		fc.steps = append(fc.steps, info)
		out = append(out, info)
	}
	return out
}
