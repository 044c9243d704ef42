package config

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/template"
)

// Defaults of the alerting sections.
const (
	defaultStateDir      = "prober-state"
	defaultEvalInterval  = 5 * time.Second
	defaultRepeat        = 4 * time.Hour
	defaultFor           = time.Minute
	defaultKeepFiring    = 2 * time.Minute
	defaultNotifyTimeout = 10 * time.Second
)

// Severities, most severe first (PagerDuty's enum).
var severities = []string{"critical", "error", "warning", "info"}

// topLevelAlerting are the probes.yaml fields this file reads.
var topLevelAlerting = []string{"alerting", "notifiers", "signals", "rules", "prometheus"}

// alerting reads the alerting sections of probes.yaml. It runs after the
// flows are loaded, to check the flows, steps and dependencies rules name.
func (l *loader) alerting(f *file, o *object, c *common, cfg *Config) {
	a := &cfg.Alerting
	a.StateDir = defaultStateDir
	a.EvaluationInterval = defaultEvalInterval
	a.RepeatInterval = defaultRepeat
	ao := f.object(o.get("alerting"), "alerting", []string{
		"state_dir", "evaluation_interval", "repeat_interval", "routes", "links", "heartbeat", "silences", "maintenance",
	})
	if n := ao.get("state_dir"); n != nil {
		if s, ok := f.plain(n, "a directory", "state_dir cannot use {{...}}"); ok && s != "" {
			a.StateDir = s
		}
	}
	if n := ao.get("evaluation_interval"); n != nil {
		if d, ok := f.positive(n, "evaluation_interval"); ok {
			if d < 100*time.Millisecond {
				f.errorf(n, "evaluation_interval must be at least 100ms, got %s", d)
			} else {
				a.EvaluationInterval = d
			}
		}
	}
	if n := ao.get("repeat_interval"); n != nil {
		if d, ok := f.duration(n); ok {
			if d < 0 {
				f.errorf(n, "repeat_interval cannot be negative")
			} else {
				a.RepeatInterval = d
			}
		}
	}

	names := l.notifiers(f, o.get("notifiers"), c, a)
	a.Routes = l.routes(f, ao.get("routes"), ao.key("routes"), a.Notifiers, names)
	a.Links = l.links(f, ao.get("links"))
	a.Heartbeat = l.heartbeat(f, ao.get("heartbeat"), c)
	a.Silences = l.silences(f, ao.get("silences"))
	a.Maintenance = l.maintenance(f, ao.get("maintenance"))
	a.Prometheus = l.prometheus(f, o.get("prometheus"), c)

	sc := ruleScope{flows: map[string]*Flow{}, deps: map[string]bool{}, partial: l.flowMissing}
	for _, fl := range cfg.Flows {
		sc.flows[fl.Name] = fl
		for _, st := range append(slices.Clone(fl.Steps), fl.Cleanup...) {
			if st.Dependency != "" {
				sc.deps[st.Dependency] = true
			}
		}
	}
	a.Signals = l.signals(f, o.get("signals"), sc, a.Prometheus)
	a.Rules = l.rules(f, o.get("rules"), sc, names, a.Prometheus)
}

// ruleScope is what rules may name.
type ruleScope struct {
	flows map[string]*Flow
	deps  map[string]bool
	// partial: a flow file failed to load, so a name missing here may be
	// defined there; such names are not reported.
	partial bool
}

func (sc ruleScope) flowNames() []string {
	out := make([]string, 0, len(sc.flows))
	for n := range sc.flows {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (sc ruleScope) depNames() []string {
	out := make([]string, 0, len(sc.deps))
	for n := range sc.deps {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// secretScope expands only secrets, from the resolved values.
type secretScope map[string]string

func (secretScope) Var(string) (string, bool)        { return "", false }
func (s secretScope) Secret(n string) (string, bool) { v, ok := s[n]; return v, ok }

// secretString reads a string that may hold {{secret:NAME}} placeholders
// (and ${env:...}), resolved now. Only secrets may be placeholders here.
func (l *loader) secretString(f *file, n *yaml.Node, want string, c *common) (string, bool) {
	var uses []use
	ps, ok := f.pieces(n, want, &uses)
	if !ok {
		return "", false
	}
	for _, u := range uses {
		switch {
		case u.secret && l.optionalUnset[u.name]:
			return "", false // the caller disables what needs it
		case !u.secret:
			l.errorAt(u.pos(), "only {{secret:NAME}} placeholders can be used here, not {{%s}}", u.name)
			ok = false
		case !c.secrets[u.name]:
			l.errorAt(u.pos(), "undefined secret %s (declare it under secrets: in probes.yaml)", quote(u.name))
			ok = false
		}
	}
	if !ok {
		return "", false
	}
	v, err := joinPieces(ps, 0).ExpandString(secretScope(l.secretValues))
	if err != nil {
		// Declared but unresolved: its own error is already reported, or
		// validate is skipping secrets (then the shape is all that counts).
		return "", l.skipSecrets
	}
	return v, true
}

func (l *loader) notifiers(f *file, n *yaml.Node, c *common, a *Alerting) map[string]*Notifier {
	byName := map[string]*Notifier{}
	if n == nil {
		return byName
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of notifiers (name: {type: pagerduty, ...}), got %s", describe(n))
		return byName
	}
	for _, p := range f.pairs(n) {
		if !validSlug(p.name) {
			f.errorf(p.key, "notifier name %s must match [a-z0-9][a-z0-9_-]*", quote(p.name))
			continue
		}
		no := f.object(p.val, "notifier", l.notifierKeys())
		nt := &Notifier{Name: p.name, Pos: f.pos(p.key), Timeout: defaultNotifyTimeout}
		tn := no.get("type")
		if tn == nil {
			f.errorf(p.key, "notifier %s needs a type: %s", p.name, l.notifierTypes())
			continue
		}
		typ, ok := f.str(tn, "a notifier type")
		if !ok {
			continue
		}
		nt.Type = NotifierType(typ)
		kind := l.notifierKind(typ)
		if kind == nil {
			f.errorf(tn, "unknown notifier type %s: want %s", quote(typ), l.notifierTypes())
			continue
		}
		allowed := kind.Keys()
		for name, fp := range no.known {
			if name != "type" && name != "timeout" && !slices.Contains(allowed, name) {
				f.errorf(fp.key, "%s does not apply to a %s notifier", name, typ)
			}
		}
		if v := no.get("timeout"); v != nil {
			if d, ok := f.positive(v, "timeout"); ok {
				nt.Timeout = d
			}
		}
		// The kind owns its block.
		nt.Spec = kind.Decode(&NotifierBlock{l: l, f: f, c: c, o: no, n: nt, k: p.key})
		if t, ok := kind.(NotifierTraiter); ok {
			nt.Traits = t.Traits()
		}
		byName[p.name] = nt
		a.Notifiers = append(a.Notifiers, nt)
	}
	return byName
}

// unsetSecret returns the first {{secret:NAME}} in s whose optional secret
// is not set, or "".
func unsetSecret(s string, unset map[string]bool) string {
	t, err := template.Parse(s)
	if err != nil {
		return ""
	}
	for _, r := range t.Refs() {
		if r.Secret && unset[r.Name] {
			return r.Name
		}
	}
	return ""
}

func checkHTTPURL(f *file, n *yaml.Node, s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.errorf(n, "%s is not an absolute http:// or https:// URL", quote(s))
		return false
	}
	return true
}

// routes reads severity -> notifiers. Without routes:, critical and error go
// to every notifier and warning and info to every notifier but those that
// page (NotifierTraits.Pages: PagerDuty): a warning should not wake anyone.
func (l *loader) routes(f *file, n, key *yaml.Node, all []*Notifier, names map[string]*Notifier) map[string][]string {
	routes := map[string][]string{}
	if n == nil {
		for _, nt := range all {
			for _, sev := range severities {
				if nt.Traits.Pages && (sev == "warning" || sev == "info") {
					continue
				}
				routes[sev] = append(routes[sev], nt.Name)
			}
		}
		return routes
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of severity to notifiers (critical: [pagerduty, slack]), got %s", describe(n))
		return routes
	}
	for _, p := range f.pairs(n) {
		if !slices.Contains(severities, p.name) {
			f.errorf(p.key, "unknown severity %s: want critical, error, warning or info%s", quote(p.name), didYouMean(p.name, severities))
			continue
		}
		routes[p.name] = l.notifierList(f, f.node(p.val), names)
	}
	return routes
}

func (l *loader) notifierList(f *file, n *yaml.Node, names map[string]*Notifier) []string {
	var out []string
	for _, it := range f.list(n, "a list of notifier names") {
		s, ok := f.str(it, "a notifier name")
		if !ok {
			continue
		}
		if names[s] == nil {
			known := make([]string, 0, len(names))
			for k := range names {
				known = append(known, k)
			}
			slices.Sort(known)
			f.errorf(it, "unknown notifier %s%s", quote(s), didYouMean(s, known))
			continue
		}
		out = append(out, s)
	}
	return out
}

// list returns the items of a sequence, or the scalar alone as a one-item list.
func (f *file) list(n *yaml.Node, want string) []*yaml.Node {
	switch {
	case n == nil || isNull(n):
		return nil
	case n.Kind == yaml.SequenceNode:
		out := make([]*yaml.Node, 0, len(n.Content))
		for _, it := range n.Content {
			out = append(out, f.node(it))
		}
		return out
	case n.Kind == yaml.ScalarNode:
		return []*yaml.Node{n}
	}
	f.errorf(n, "expected %s, got %s", want, describe(n))
	return nil
}

var linkVars = []string{"flow", "step", "trace_id", "rule", "region", "dependency"}

func (l *loader) links(f *file, n *yaml.Node) []Link {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of links (name: URL template), got %s", describe(n))
		return nil
	}
	var out []Link
	for _, p := range f.pairs(n) {
		v := f.node(p.val)
		s, ok := f.plain(v, "a URL template", "links use {flow}, {trace_id}, ... not {{...}}")
		if !ok {
			continue
		}
		// Check the {name} references and that the rest is a URL.
		probe := s
		for _, name := range linkVars {
			probe = strings.ReplaceAll(probe, "{"+name+"}", "x")
		}
		if i := strings.IndexByte(probe, '{'); i >= 0 {
			end := strings.IndexByte(probe[i:], '}')
			ref := probe[i:]
			if end > 0 {
				ref = probe[i : i+end+1]
			}
			f.errorf(v, "link %s: unknown reference %s (known: {%s})", p.name, ref, strings.Join(linkVars, "}, {"))
			continue
		}
		if !checkHTTPURL(f, v, probe) {
			continue
		}
		out = append(out, Link{Name: p.name, URL: s})
	}
	return out
}

func (l *loader) heartbeat(f *file, n *yaml.Node, c *common) *Heartbeat {
	if n == nil {
		return nil
	}
	o := f.object(n, "heartbeat", []string{"url", "interval", "max_page_delay"})
	h := &Heartbeat{Interval: time.Minute, MaxPageDelay: 5 * time.Minute}
	un := o.get("url")
	if un == nil {
		f.errorf(n, "heartbeat needs a url")
		return nil
	}
	u, ok := l.secretString(f, un, "a URL", c)
	if !ok {
		return nil
	}
	if u != "" && !checkHTTPURLQuiet(u) {
		f.errorf(un, "heartbeat url is not an absolute http:// or https:// URL")
		return nil
	}
	h.URL = u
	if v := o.get("interval"); v != nil {
		if d, ok := f.positive(v, "heartbeat.interval"); ok {
			h.Interval = d
		}
	}
	if v := o.get("max_page_delay"); v != nil {
		if d, ok := f.positive(v, "heartbeat.max_page_delay"); ok {
			h.MaxPageDelay = d
		}
	}
	return h
}

// checkHTTPURLQuiet validates a URL that may hold a secret, so it is never
// quoted in a message.
func checkHTTPURLQuiet(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (l *loader) matchers(f *file, n *yaml.Node, what string) map[string]string {
	m := map[string]string{}
	if n == nil {
		return m
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of label: value for %s, got %s", what, describe(n))
		return m
	}
	for _, p := range f.pairs(n) {
		if v, ok := f.plain(f.node(p.val), "a label value", "matchers cannot use {{...}}"); ok {
			m[p.name] = v
		}
	}
	return m
}

func (l *loader) silences(f *file, n *yaml.Node) []Silence {
	var out []Silence
	for _, it := range f.list(n, "a list of silences") {
		o := f.object(it, "silence", []string{"matchers", "starts", "ends", "comment"})
		s := Silence{Pos: f.pos(it), Matchers: l.matchers(f, o.get("matchers"), "a silence")}
		if len(s.Matchers) == 0 {
			f.errorf(it, "a silence needs matchers (e.g. {flow: checkout}); an empty one would mute everything")
			continue
		}
		ok := true
		for _, fld := range []struct {
			name string
			into *time.Time
		}{{"starts", &s.Starts}, {"ends", &s.Ends}} {
			v := o.get(fld.name)
			if v == nil {
				f.errorf(it, "a silence needs %s (RFC 3339, e.g. 2026-11-23T02:00:00Z)", fld.name)
				ok = false
				continue
			}
			t, good := f.timestamp(v)
			ok = ok && good
			*fld.into = t
		}
		if ok && !s.Ends.After(s.Starts) {
			f.errorf(o.get("ends"), "a silence must end after it starts")
			continue
		}
		if v := o.get("comment"); v != nil {
			s.Comment, _ = f.str(v, "a comment")
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

func (f *file) timestamp(n *yaml.Node) (time.Time, bool) {
	if f.isScalar(n) {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(n.Value)); err == nil {
			return t, true
		}
	}
	f.errorf(n, "expected a time like 2026-11-23T02:00:00Z, got %s", describe(n))
	return time.Time{}, false
}

func (l *loader) maintenance(f *file, n *yaml.Node) []Maintenance {
	var out []Maintenance
	for _, it := range f.list(n, "a list of maintenance windows") {
		o := f.object(it, "maintenance window", []string{"matchers", "cron", "duration", "timezone", "comment"})
		m := Maintenance{Pos: f.pos(it), Matchers: l.matchers(f, o.get("matchers"), "a maintenance window"), Location: time.UTC}
		ok := true
		if len(m.Matchers) == 0 {
			f.errorf(it, "a maintenance window needs matchers (e.g. {flow: checkout})")
			ok = false
		}
		if v := o.get("cron"); v == nil {
			f.errorf(it, "a maintenance window needs cron: when it starts")
			ok = false
		} else if s, good := f.str(v, "a cron spec"); good {
			if _, err := ParseCron(s); err != nil {
				f.errorf(v, "%v", err)
				ok = false
			} else {
				m.Cron = strings.TrimSpace(s)
			}
		}
		if v := o.get("duration"); v == nil {
			f.errorf(it, "a maintenance window needs a duration")
			ok = false
		} else if d, good := f.positive(v, "duration"); good {
			m.Duration = d
		} else {
			ok = false
		}
		if v := o.get("timezone"); v != nil {
			if name, good := f.str(v, "a time zone name"); good {
				if loc, err := time.LoadLocation(name); err != nil || name == "" {
					f.errorf(v, "unknown time zone %s", quote(name))
					ok = false
				} else {
					m.Location = loc
				}
			}
		}
		if v := o.get("comment"); v != nil {
			m.Comment, _ = f.str(v, "a comment")
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func (l *loader) prometheus(f *file, n *yaml.Node, c *common) *Prometheus {
	if n == nil {
		return nil
	}
	o := f.object(n, "prometheus", []string{"url", "bearer_token_file", "basic_auth", "timeout", "ca_file"})
	p := &Prometheus{Timeout: 10 * time.Second}
	un := o.get("url")
	if un == nil {
		f.errorf(n, "prometheus needs a url")
		return nil
	}
	if s, ok := f.plain(un, "a URL", "url cannot use {{...}}"); ok && checkHTTPURL(f, un, s) {
		p.URL = s
	}
	if v := o.get("bearer_token_file"); v != nil {
		p.BearerTokenFile, _ = f.plain(v, "a file path", "bearer_token_file cannot use {{...}}")
	}
	if v := o.get("basic_auth"); v != nil {
		bo := f.object(v, "basic_auth", []string{"user", "password"})
		if u := bo.get("user"); u != nil {
			p.BasicAuthUser, _ = f.plain(u, "a user name", "user cannot use {{...}}")
		}
		if pw := bo.get("password"); pw != nil {
			p.BasicAuthPass, _ = l.secretString(f, pw, "a password", c)
		}
	}
	if v := o.get("timeout"); v != nil {
		if d, ok := f.positive(v, "timeout"); ok {
			p.Timeout = d
		}
	}
	if v := o.get("ca_file"); v != nil {
		var h HTTPOptions
		f.tls(&yaml.Node{Kind: yaml.MappingNode, Line: v.Line, Column: v.Column, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: strTag, Value: "ca_file", Line: v.Line, Column: v.Column}, v}}, &h)
		p.CAPEM = h.CAPEM
	}
	if p.URL == "" {
		return nil
	}
	return p
}

func (l *loader) signals(f *file, n *yaml.Node, sc ruleScope, prom *Prometheus) []*Signal {
	var out []*Signal
	seen := map[string]Pos{}
	for _, it := range f.list(n, "a list of signals") {
		o := f.object(it, "signal", []string{"name", "dependency", "flow", "promql", "window", "unit"})
		s := &Signal{Pos: f.pos(it), Window: 5 * time.Minute}
		if v := o.get("name"); v == nil {
			f.errorf(it, "a signal needs a name")
			continue
		} else if name, ok := f.str(v, "a signal name"); ok {
			if first, dup := seen[name]; dup {
				f.errorf(v, "duplicate signal %s (first at %s)", quote(name), first)
				continue
			}
			seen[name] = f.pos(v)
			s.Name = name
		}
		kinds := 0
		if v := o.get("dependency"); v != nil {
			kinds++
			if d, ok := f.str(v, "a dependency name"); ok {
				if !sc.deps[d] && !sc.partial {
					f.errorf(v, "no step has dependency %s%s", quote(d), didYouMean(d, sc.depNames()))
				}
				s.Dependency, s.Unit = d, "ratio"
			}
		}
		if v := o.get("flow"); v != nil {
			kinds++
			if fl, ok := f.str(v, "a flow name"); ok {
				if sc.flows[fl] == nil && !sc.partial {
					f.errorf(v, "unknown flow %s%s", quote(fl), didYouMean(fl, sc.flowNames()))
				}
				s.Flow, s.Unit = fl, "ratio"
			}
		}
		if v := o.get("promql"); v != nil {
			kinds++
			s.PromQLQuery, _ = f.str(v, "a PromQL query")
			if prom == nil {
				f.errorf(v, "a promql signal needs prometheus: {url: ...} in probes.yaml")
			}
		}
		if kinds != 1 {
			f.errorf(it, "a signal needs exactly one of dependency, flow or promql")
			continue
		}
		if v := o.get("window"); v != nil {
			if d, ok := f.positive(v, "window"); ok {
				s.Window = d
			}
		}
		if v := o.get("unit"); v != nil {
			if u, ok := f.str(v, "a unit"); ok {
				if !slices.Contains([]string{"ratio", "seconds", ""}, u) {
					f.errorf(v, "unit must be ratio, seconds or empty, got %s", quote(u))
				}
				s.Unit = u
			}
		}
		out = append(out, s)
	}
	return out
}

// ruleKind is a rule kind's block: its key and its decoder, which sets the
// rule's part of that kind.
type ruleKind struct {
	kind   RuleKind
	decode func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule)
}

// RuleKinds are the rule kinds a configuration may use, in the order
// messages list them; each has its home in internal/rulekind (a test there
// checks both tables agree).
func RuleKinds() []RuleKind {
	kinds := ruleKindTable()
	out := make([]RuleKind, len(kinds))
	for i, k := range kinds {
		out[i] = k.kind
	}
	return out
}

// ruleSettings is what a rule kind's block is checked against.
type ruleSettings struct {
	scope ruleScope
	prom  *Prometheus
}

// ruleKindTable is the one table of rule kinds' settings: adding a kind is
// its settings (a type and a decoder) and one line here, beside its home in
// internal/rulekind.
func ruleKindTable() []ruleKind {
	return []ruleKind{
		{FlowFailing, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) {
			r.FlowFailing = l.flowFailing(f, n, rs.scope)
		}},
		{BurnRate, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) {
			r.BurnRate = l.burnRate(f, n, rs.scope)
		}},
		{DependencySuccess, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) {
			r.DependencySuccess = l.dependencySuccess(f, n, rs.scope)
		}},
		{Latency, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) {
			r.Latency = l.latency(f, n, rs.scope)
		}},
		{PromQL, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) {
			r.PromQL = l.promqlRule(f, n, rs.prom)
		}},
		{Absent, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) { r.Absent = l.absent(f, n, rs.scope) }},
		{CertExpiry, func(l *loader, f *file, n *yaml.Node, rs ruleSettings, r *Rule) {
			r.CertExpiry = l.certExpiry(f, n, rs.scope)
		}},
	}
}

func (l *loader) rules(f *file, n *yaml.Node, sc ruleScope, notifiers map[string]*Notifier, prom *Prometheus) []*Rule {
	var out []*Rule
	seen := map[string]Pos{}
	type inhib struct {
		r *Rule
		n []*yaml.Node
	}
	var inhibits []inhib
	kinds := ruleKindTable()
	ruleKinds := make([]string, len(kinds))
	for i, k := range kinds {
		ruleKinds[i] = string(k.kind)
	}
	for _, it := range f.list(n, "a list of rules") {
		fields := append([]string{"name", "for", "keep_firing_for", "severity", "labels", "notify", "group", "inhibits", "summary"}, ruleKinds...)
		o := f.object(it, "rule", fields)
		r := &Rule{Pos: f.pos(it), Severity: "critical", For: defaultFor, KeepFiringFor: defaultKeepFiring, Labels: map[string]string{}}
		if v := o.get("name"); v == nil {
			f.errorf(it, "a rule needs a name")
		} else if name, ok := f.str(v, "a rule name"); ok {
			switch first, dup := seen[name]; {
			case !validSlug(name):
				f.errorf(v, "rule name %s must match [a-z0-9][a-z0-9_-]*", quote(name))
			case dup:
				f.errorf(v, "duplicate rule name %s (first defined at %s)", quote(name), first)
			default:
				seen[name] = f.pos(v)
				r.Name = name
			}
		}
		var (
			kindNode *yaml.Node
			kind     ruleKind
		)
		for _, k := range kinds {
			if v := o.get(string(k.kind)); v != nil {
				if kindNode != nil {
					f.errorf(o.key(string(k.kind)), "a rule has one kind; it already is %s", r.Kind)
					continue
				}
				kindNode, r.Kind, kind = v, k.kind, k
			}
		}
		if kindNode == nil {
			f.errorf(it, "a rule needs one of %s", strings.Join(ruleKinds, ", "))
			continue
		}
		if r.Kind == BurnRate {
			r.For = 0 // the short window already smooths
		}
		if v := o.get("for"); v != nil {
			if d, ok := f.duration(v); ok && d >= 0 {
				r.For = d
			} else if ok {
				f.errorf(v, "for cannot be negative")
			}
		}
		if v := o.get("keep_firing_for"); v != nil {
			if d, ok := f.duration(v); ok && d >= 0 {
				r.KeepFiringFor = d
			} else if ok {
				f.errorf(v, "keep_firing_for cannot be negative")
			}
		}
		if v := o.get("severity"); v != nil {
			r.Severity = f.severity(v)
		}
		f.labelsInto(o.get("labels"), r.Labels)
		if v := o.get("notify"); v != nil {
			r.Notify = l.notifierList(f, v, notifiers)
		}
		if v := o.get("group"); v != nil {
			if g, ok := f.str(v, "a group name"); ok {
				r.Group = g
			}
		}
		if v := o.get("summary"); v != nil {
			r.Summary, _ = f.str(v, "a summary")
		}
		if v := o.get("inhibits"); v != nil {
			inhibits = append(inhibits, inhib{r, f.list(v, "a list of rule names")})
		}
		kind.decode(l, f, kindNode, ruleSettings{sc, prom}, r)
		out = append(out, r)
	}
	for _, in := range inhibits {
		for _, it := range in.n {
			name, ok := f.str(it, "a rule name")
			if !ok {
				continue
			}
			if _, known := seen[name]; !known {
				known := make([]string, 0, len(seen))
				for k := range seen {
					known = append(known, k)
				}
				slices.Sort(known)
				f.errorf(it, "unknown rule %s%s", quote(name), didYouMean(name, known))
				continue
			}
			if name == in.r.Name {
				f.errorf(it, "a rule cannot inhibit itself")
				continue
			}
			in.r.Inhibits = append(in.r.Inhibits, name)
		}
	}
	return out
}

func (f *file) severity(n *yaml.Node) string {
	s, ok := f.str(n, "a severity")
	if !ok {
		return "critical"
	}
	if !slices.Contains(severities, s) {
		f.errorf(n, "unknown severity %s: want critical, error, warning or info%s", quote(s), didYouMean(s, severities))
		return "critical"
	}
	return s
}

// ratio reads 0.95 or "95%" as a ratio in [0, 1].
func (f *file) ratio(n *yaml.Node, what string) (float64, bool) {
	if f.isScalar(n) {
		s := strings.TrimSpace(n.Value)
		pct := strings.HasSuffix(s, "%")
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err == nil {
			if pct {
				v /= 100
			}
			if v >= 0 && v <= 1 {
				return v, true
			}
			f.errorf(n, "%s must be between 0 and 1 (or 0%% and 100%%), got %s", what, describe(n))
			return 0, false
		}
	}
	f.errorf(n, "expected a ratio like 0.95 or 95%%, got %s", describe(n))
	return 0, false
}

func (l *loader) flowRef(f *file, n *yaml.Node, sc ruleScope) string {
	s, ok := f.str(n, "a flow name")
	if !ok {
		return ""
	}
	if sc.flows[s] == nil && !sc.partial {
		f.errorf(n, "unknown flow %s%s", quote(s), didYouMean(s, sc.flowNames()))
	}
	return s
}

func (l *loader) flowFailing(f *file, n *yaml.Node, sc ruleScope) *FlowFailingRule {
	o := f.object(n, "flow_failing", []string{"flows", "min_regions", "regions", "degraded_severity"})
	r := &FlowFailingRule{}
	for _, it := range f.list(o.get("flows"), "a list of flow names") {
		if s := l.flowRef(f, it, sc); s != "" {
			r.Flows = append(r.Flows, s)
		}
	}
	r.MinRegions, r.Regions, r.DegradedSeverity = f.quorum(o)
	return r
}

// quorum reads a rule's region quorum (flow_failing, dependency_success):
// min_regions (default 1), regions (the M expected) and degraded_severity
// (default warning).
func (f *file) quorum(o *object) (minRegions int, regions []string, degraded string) {
	minRegions, degraded = 1, "warning"
	if v := o.get("min_regions"); v != nil {
		if m, ok := f.integer(v, "min_regions", 1, 1000); ok {
			minRegions = int(m)
		}
	}
	for _, it := range f.list(o.get("regions"), "a list of regions") {
		if s, ok := f.str(it, "a region"); ok {
			if !validSlug(s) {
				f.errorf(it, "region %s must match [a-z0-9][a-z0-9_-]*", quote(s))
				continue
			}
			regions = append(regions, s)
		}
	}
	if len(regions) > 0 && minRegions > len(regions) {
		f.errorf(o.get("min_regions"), "min_regions %d is more than the %d regions listed", minRegions, len(regions))
	}
	if v := o.get("degraded_severity"); v != nil {
		degraded = f.severity(v)
	}
	return minRegions, regions, degraded
}

func (l *loader) burnRate(f *file, n *yaml.Node, sc ruleScope) *BurnRateRule {
	o := f.object(n, "burn_rate", []string{"flow", "slo", "min_runs", "windows"})
	r := &BurnRateRule{MinRuns: 10, Windows: DefaultBurnWindows}
	if v := o.get("flow"); v == nil {
		f.errorf(n, "burn_rate needs a flow")
	} else {
		r.Flow = l.flowRef(f, v, sc)
	}
	if v := o.get("slo"); v == nil {
		f.errorf(n, "burn_rate needs an slo (e.g. 99.5%%)")
	} else if s, ok := f.ratio(v, "slo"); ok {
		if s <= 0 || s >= 1 {
			f.errorf(v, "slo must be above 0%% and below 100%%, got %s", describe(v))
		}
		r.SLO = s
	}
	if v := o.get("min_runs"); v != nil {
		if m, ok := f.integer(v, "min_runs", 1, 1_000_000); ok {
			r.MinRuns = int(m)
		}
	}
	if v := o.get("windows"); v != nil {
		r.Windows = nil
		for _, it := range f.list(v, "a list of burn windows") {
			wo := f.object(it, "burn window", []string{"long", "short", "factor", "severity"})
			w := BurnWindow{Severity: "critical"}
			ok := true
			for _, fld := range []struct {
				name string
				into *time.Duration
			}{{"long", &w.Long}, {"short", &w.Short}} {
				if fv := wo.get(fld.name); fv == nil {
					f.errorf(it, "a burn window needs %s", fld.name)
					ok = false
				} else if d, good := f.positive(fv, fld.name); good {
					*fld.into = d
				} else {
					ok = false
				}
			}
			if fv := wo.get("factor"); fv == nil {
				f.errorf(it, "a burn window needs a factor")
				ok = false
			} else if x, good := f.float(fv, "factor"); good && x > 0 {
				w.Factor = x
			} else {
				if good {
					f.errorf(fv, "factor must be positive")
				}
				ok = false
			}
			if fv := wo.get("severity"); fv != nil {
				w.Severity = f.severity(fv)
			}
			if ok && w.Short >= w.Long {
				f.errorf(it, "the short window (%s) must be shorter than the long one (%s)", w.Short, w.Long)
				ok = false
			}
			if ok {
				r.Windows = append(r.Windows, w)
			}
		}
	}
	return r
}

func (f *file) float(n *yaml.Node, what string) (float64, bool) {
	if f.isScalar(n) {
		if v, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
			return v, true
		}
	}
	f.errorf(n, "expected a number for %s, got %s", what, describe(n))
	return 0, false
}

func (l *loader) dependencySuccess(f *file, n *yaml.Node, sc ruleScope) *DependencySuccessRule {
	o := f.object(n, "dependency_success", []string{"dependency", "below", "window", "min_calls", "min_failures",
		"min_regions", "regions", "degraded_severity"})
	r := &DependencySuccessRule{Window: 5 * time.Minute, MinCalls: 3, MinFailures: 2}
	r.MinRegions, r.Regions, r.DegradedSeverity = f.quorum(o)
	if v := o.get("dependency"); v == nil {
		f.errorf(n, "dependency_success needs a dependency")
	} else if d, ok := f.str(v, "a dependency name"); ok {
		if !sc.deps[d] && !sc.partial {
			f.errorf(v, "no step has dependency %s%s", quote(d), didYouMean(d, sc.depNames()))
		}
		r.Dependency = d
	}
	if v := o.get("below"); v == nil {
		f.errorf(n, "dependency_success needs below: the success ratio that pages (e.g. 95%%)")
	} else if x, ok := f.ratio(v, "below"); ok {
		r.Below = x
	}
	if v := o.get("window"); v != nil {
		if d, ok := f.positive(v, "window"); ok {
			r.Window = d
		}
	}
	if v := o.get("min_calls"); v != nil {
		if m, ok := f.integer(v, "min_calls", 1, 1_000_000); ok {
			r.MinCalls = int(m)
		}
	}
	if v := o.get("min_failures"); v != nil {
		if m, ok := f.integer(v, "min_failures", 1, 1_000_000); ok {
			r.MinFailures = int(m)
		}
	}
	return r
}

func (l *loader) latency(f *file, n *yaml.Node, sc ruleScope) *LatencyRule {
	o := f.object(n, "latency", []string{"flow", "step", "quantile", "above", "window", "min_samples"})
	r := &LatencyRule{Quantile: 0.95, Window: 10 * time.Minute, MinSamples: 5}
	if v := o.get("flow"); v == nil {
		f.errorf(n, "latency needs a flow")
	} else {
		r.Flow = l.flowRef(f, v, sc)
	}
	if v := o.get("step"); v != nil {
		if s, ok := f.str(v, "a step name"); ok {
			r.Step = s
			if fl := sc.flows[r.Flow]; fl != nil {
				var names []string
				for _, st := range append(slices.Clone(fl.Steps), fl.Cleanup...) {
					names = append(names, st.Name)
				}
				if !slices.Contains(names, s) {
					f.errorf(v, "flow %s has no step %s%s", r.Flow, quote(s), didYouMean(s, names))
				}
			}
		}
	}
	if v := o.get("quantile"); v != nil {
		if q, ok := f.ratio(v, "quantile"); ok {
			if q <= 0 || q >= 1 {
				f.errorf(v, "quantile must be between 0 and 1 exclusive, got %s", describe(v))
			}
			r.Quantile = q
		}
	}
	if v := o.get("above"); v == nil {
		f.errorf(n, "latency needs above: the duration that pages (e.g. 2s)")
	} else if d, ok := f.positive(v, "above"); ok {
		r.Above = d
	}
	if v := o.get("window"); v != nil {
		if d, ok := f.positive(v, "window"); ok {
			r.Window = d
		}
	}
	if v := o.get("min_samples"); v != nil {
		if m, ok := f.integer(v, "min_samples", 1, 1_000_000); ok {
			r.MinSamples = int(m)
		}
	}
	return r
}

func (l *loader) absent(f *file, n *yaml.Node, sc ruleScope) *AbsentRule {
	o := f.object(n, "absent", []string{"flows", "regions"})
	r := &AbsentRule{}
	for _, it := range f.list(o.get("flows"), "a list of flow names") {
		if s := l.flowRef(f, it, sc); s != "" {
			r.Flows = append(r.Flows, s)
		}
	}
	for _, it := range f.list(o.get("regions"), "a list of regions") {
		if s, ok := f.str(it, "a region"); ok {
			if !validSlug(s) {
				f.errorf(it, "region %s must match [a-z0-9][a-z0-9_-]*", quote(s))
				continue
			}
			r.Regions = append(r.Regions, s)
		}
	}
	return r
}

var promOps = []string{">", ">=", "<", "<=", "==", "!="}

func (l *loader) promqlRule(f *file, n *yaml.Node, prom *Prometheus) *PromQLRule {
	o := f.object(n, "promql", []string{"query", "above", "below", "op", "value"})
	r := &PromQLRule{}
	if prom == nil {
		f.errorf(n, "a promql rule needs prometheus: {url: ...} in probes.yaml")
	}
	if v := o.get("query"); v == nil {
		f.errorf(n, "promql needs a query")
	} else {
		r.Query, _ = f.str(v, "a PromQL query")
	}
	// above: x and below: x are shorthands for op/value.
	set := 0
	if v := o.get("above"); v != nil {
		set++
		r.Op = ">"
		r.Value, _ = f.float(v, "above")
	}
	if v := o.get("below"); v != nil {
		set++
		r.Op = "<"
		r.Value, _ = f.float(v, "below")
	}
	if v := o.get("op"); v != nil {
		set++
		if s, ok := f.str(v, "a comparison"); ok {
			if !slices.Contains(promOps, s) {
				f.errorf(v, "op must be one of %s, got %s", strings.Join(promOps, " "), quote(s))
			}
			r.Op = s
		}
		if vv := o.get("value"); vv == nil {
			f.errorf(n, "op needs a value")
		} else {
			r.Value, _ = f.float(vv, "value")
		}
	}
	if set != 1 {
		f.errorf(n, "promql needs exactly one of above, below or op with value")
	}
	return r
}
