package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/schema"
)

// The README's configuration examples load through the loader as `prober
// validate` runs it (the daemon's step and notifier kinds, secrets
// declared but not read): not only the JSON Schema's shapes, but what the
// loader checks besides (expressions, variables, includes, files, rules).
//
// The rules, so that no block is skipped silently:
//   - every ```yaml block (also one indented inside a list) is a prober
//     file or a part of one, unless the line before it is the marker
//     <!-- readme-example: not prober's -->, for another program's file
//     (Prometheus', an OpenTelemetry collector's), which is listed;
//   - a block is the file its top-level keys belong to, tried in order:
//     a flow file, a steps file (with params:), probes.yaml, or one step
//     (expect:, capture:, retry: shown in isolation); a YAML list is a
//     list of steps. A part gets what its file requires besides: a flow a
//     name and a step, a step a name and a request, probes.yaml a flow;
//   - a first line `# PATH.yaml` names the file: a flow's include: is
//     served by the README block that names the included path;
//   - beside a flow, a probes.yaml declares the secrets it references and
//     the site's variables (readmeSiteVars); any other undefined variable
//     is an error of the example (a capture it forgot);
//   - files named by ca_file, client_cert and client_key are made: a CA
//     and a client certificate and key of a test CA.
//
// A block that does not load fails the test with its README line.

// readmeNotProbers is the marker before a block of another program's file.
const readmeNotProbers = "<!-- readme-example: not prober's -->"

// readmeSiteVars are the variables a site's probes.yaml would define.
var readmeSiteVars = []string{"shop_url", "base", "api", "domain", "mail_host", "mtls_url"}

type readmeBlock struct {
	line     int    // of the fence in README.md
	text     string // dedented
	foreign, // marked as another program's file
	unclosed bool // no closing fence
}

// readmeBlocks returns every ```yaml block of readme.
func readmeBlocks(readme string) []readmeBlock {
	lines := strings.Split(readme, "\n")
	open := regexp.MustCompile("^( *)```yaml\\s*$")
	var out []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := open.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		b := readmeBlock{line: i + 1, unclosed: true}
		for j := i - 1; j >= 0; j-- {
			if s := strings.TrimSpace(lines[j]); s != "" {
				b.foreign = s == readmeNotProbers
				break
			}
		}
		var body []string
		j := i + 1
		for ; j < len(lines); j++ {
			l := lines[j]
			if strings.TrimSpace(l) == "```" {
				b.unclosed = false
				break
			}
			if strings.HasPrefix(strings.TrimSpace(l), "```") {
				break // a fence with text after it closes nothing (CommonMark)
			}
			body = append(body, strings.TrimPrefix(l, m[1]))
		}
		b.text = dedent(body)
		out = append(out, b)
		i = j
	}
	return out
}

// schemaKeys are the top-level keys of each schema, and a step's.
func schemaKeys(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, name := range schema.Names {
		var doc struct {
			Properties map[string]any
			Defs       map[string]struct{ Properties map[string]any } `json:"$defs"`
		}
		if err := json.Unmarshal(schema.Get(name), &doc); err != nil {
			t.Fatal(err)
		}
		out[name] = map[string]bool{}
		for k := range doc.Properties {
			out[name][k] = true
		}
		if st, ok := doc.Defs["step"]; ok && name == "flow" {
			out["step"] = map[string]bool{}
			for k := range st.Properties {
				out["step"][k] = true
			}
		}
	}
	return out
}

// readmeExample is a block as the files to load.
type readmeExample struct {
	files map[string]string // relative to the config directory
	abs   map[string][]byte // absolute paths named (read through Options.ReadFile)
	// probes is probes.yaml built up to this part, when the block is one:
	// the next part is laid over it if this one loads.
	probes string
}

// secretRefs are the secrets text references.
func secretRefs(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\{\{\s*secret:([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// declare declares the secrets names, from the environment.
func declare(names []string) string {
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "  %s: {env: %s}\n", n, strings.ReplaceAll(n, ".", "_"))
	}
	return sb.String()
}

// readmeStepKinds are a step's kind blocks: a step without one gets a request.
var readmeStepKinds = []string{"request", "tls", "tcp", "dns", "icmp", "grpc", "browser"}

// build turns block b into the files of a configuration, or says why not.
func (ex *readmeExample) build(b readmeBlock, keys map[string]map[string]bool, named map[string]string, pems map[string][]byte, base *string, shipped map[string]string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return fmt.Errorf("an empty block")
	}
	top := doc.Content[0]
	own := ""
	if first, _, _ := strings.Cut(b.text, "\n"); strings.HasPrefix(first, "# ") {
		if f := strings.Fields(first)[1]; strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".yml") {
			own = strings.TrimSuffix(f, ":")
		}
	}
	kind := ""
	text := b.text
	switch top.Kind {
	case yaml.SequenceNode:
		kind, text = "flow", "steps:\n"+indent(b.text, "  ")
	case yaml.MappingNode:
		var names []string
		for i := 0; i < len(top.Content); i += 2 {
			names = append(names, top.Content[i].Value)
		}
		within := func(set map[string]bool) bool {
			for _, n := range names {
				if !set[n] {
					return false
				}
			}
			return true
		}
		notifiers := len(names) > 0
		for i := 1; i < len(top.Content); i += 2 {
			v := top.Content[i]
			notifiers = notifiers && v.Kind == yaml.MappingNode && slices.ContainsFunc(v.Content, func(k *yaml.Node) bool { return k.Value == "type" })
		}
		switch {
		case notifiers && !within(keys["probes"]) && !within(keys["flow"]):
			// Notifier entries shown alone: under notifiers:, with the
			// secrets they name declared (a part of probes.yaml cannot).
			kind, text = "probes", "notifiers:\n"+indent(b.text, "  ")
			if d := declare(secretRefs(b.text)); d != "" {
				text = "secrets:\n" + d + text
			}
		case own == "probes.yaml" || own == "" && within(keys["probes"]) && !within(keys["flow"]):
			kind = "probes"
		case strings.HasPrefix(own, "steps/") || slices.Contains(names, "params") && within(keys["steps"]):
			kind = "steps"
		case within(keys["flow"]):
			kind = "flow"
		case within(keys["step"]):
			kind = "flow"
			step := b.text
			if !slices.Contains(names, "name") {
				step = "name: readme_step\n" + step
			}
			if !slices.ContainsFunc(names, func(n string) bool { return slices.Contains(readmeStepKinds, n) }) {
				step += "request: {url: \"http://127.0.0.1:1/\"}\n"
			}
			text = "steps:\n  - " + strings.TrimPrefix(indent(step, "    "), "    ")
		default:
			return fmt.Errorf("cannot tell which file the keys %v belong to (mark another program's file with %s)", names, readmeNotProbers)
		}
	default:
		return fmt.Errorf("neither a mapping nor a list")
	}
	probes := func(flows ...string) string {
		var sb strings.Builder
		sb.WriteString("vars:\n")
		for _, v := range readmeSiteVars {
			fmt.Fprintf(&sb, "  %s: \"https://%s.example\"\n", v, strings.ReplaceAll(v, "_", "-"))
		}
		if d := declare(secretRefs(text)); d != "" {
			sb.WriteString("secrets:\n" + d)
		}
		sb.WriteString("flows:\n")
		for _, f := range flows {
			fmt.Fprintf(&sb, "  - %s\n", f)
		}
		return sb.String()
	}
	switch kind {
	case "probes":
		merged, err := overlayYAML(*base, text)
		if err != nil {
			return err
		}
		ex.probes = merged
		ex.files["probes.yaml"] = merged
		for p, body := range shipped {
			ex.files[p] = body
		}
		var cfg struct {
			Flows []yaml.Node
		}
		if err := yaml.Unmarshal([]byte(merged), &cfg); err != nil {
			return err
		}
		for _, f := range cfg.Flows {
			p := flowPath(&f)
			if _, ok := ex.files[p]; !ok && !strings.ContainsAny(p, "*?[") {
				if text, ok := named[p]; ok {
					ex.files[p] = text
				} else {
					return fmt.Errorf("flows: %s: neither a shipped flow nor a README block named so", p)
				}
			}
		}
	case "flow":
		if own == "" {
			own = "flows/readme.yaml"
		}
		if !regexp.MustCompile(`(?m)^name:`).MatchString(text) {
			text = "name: readme\n" + text
		}
		if !regexp.MustCompile(`(?m)^(steps|cleanup):`).MatchString(text) {
			text += "steps:\n  - name: s\n    request: {url: \"http://127.0.0.1:1/\"}\n"
		}
		ex.files[own] = text
		ex.files["probes.yaml"] = probes(own)
	case "steps":
		if own == "" {
			own = "steps/readme.yaml"
		}
		ex.files[own] = text
		var st struct {
			Params map[string]struct {
				Default *string
			}
		}
		if err := yaml.Unmarshal([]byte(text), &st); err != nil {
			return err
		}
		var with []string
		for name, p := range st.Params {
			if p.Default == nil {
				with = append(with, name+": readme-value")
			}
		}
		slices.Sort(with)
		ex.files["flows/readme.yaml"] = "name: readme\nsteps:\n  - include: ../" + own + "\n    with: {" + strings.Join(with, ", ") + "}\n"
		ex.files["probes.yaml"] = probes("flows/readme.yaml")
	}
	// Included steps files, from the README blocks that name them.
	for p, text := range ex.files {
		for _, m := range regexp.MustCompile(`(?m)^\s*-?\s*include:\s*(\S+)`).FindAllStringSubmatch(text, -1) {
			inc := path.Join(path.Dir(p), m[1])
			if _, ok := ex.files[inc]; ok {
				continue
			}
			body, ok := named[inc]
			if !ok {
				return fmt.Errorf("include: %s: no README block names %s on its first line", m[1], inc)
			}
			ex.files[inc] = body
		}
	}
	// The certificate files named.
	for p, text := range ex.files {
		for _, m := range regexp.MustCompile(`\b(ca_file|client_cert|client_key):\s*"?([^"\s,}]+)`).FindAllStringSubmatch(text, -1) {
			file := m[2]
			if strings.Contains(file, "{{") || strings.Contains(file, "${") {
				continue
			}
			if path.IsAbs(file) {
				ex.abs[file] = pems[m[1]]
			} else {
				ex.files[path.Join(path.Dir(p), file)] = string(pems[m[1]])
			}
		}
	}
	return nil
}

// dedent takes the indentation all lines share off them: a step's keys
// shown as they sit in a flow.
func dedent(lines []string) string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); common < 0 || n < common {
			common = n
		}
	}
	for i, l := range lines {
		lines[i] = l[min(max(common, 0), len(l)-len(strings.TrimLeft(l, " "))):]
	}
	return strings.Join(lines, "\n") + "\n"
}

// overlayYAML lays the top-level keys of over on base: a mapping's
// entries (secrets, notifiers, alerting's keys) are merged, anything else
// replaced.
func overlayYAML(base, over string) (string, error) {
	var b, o yaml.Node
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		return "", err
	}
	if err := yaml.Unmarshal([]byte(over), &o); err != nil {
		return "", err
	}
	bm, om := b.Content[0], o.Content[0]
	for i := 0; i+1 < len(om.Content); i += 2 {
		k, v := om.Content[i], om.Content[i+1]
		j := slices.IndexFunc(bm.Content, func(n *yaml.Node) bool { return n.Value == k.Value })
		switch {
		case k.Value == "flows" && j >= 0 && j%2 == 0 && v.Kind == yaml.SequenceNode:
			// The README's flows besides the shipped ones (which the
			// shipped rules name), each path once: the README's entry wins.
			old := bm.Content[j+1]
			for _, e := range v.Content {
				old.Content = slices.DeleteFunc(old.Content, func(x *yaml.Node) bool { return flowPath(x) == flowPath(e) })
				old.Content = append(old.Content, e)
			}
		case j < 0 || j%2 == 1:
			bm.Content = append(bm.Content, k, v)
		case v.Kind == yaml.MappingNode && bm.Content[j+1].Kind == yaml.MappingNode:
			old := bm.Content[j+1]
			for m := 0; m+1 < len(v.Content); m += 2 {
				n := slices.IndexFunc(old.Content, func(x *yaml.Node) bool { return x.Value == v.Content[m].Value })
				if n >= 0 && n%2 == 0 {
					old.Content[n+1] = v.Content[m+1]
				} else {
					old.Content = append(old.Content, v.Content[m], v.Content[m+1])
				}
			}
		default:
			bm.Content[j+1] = v
		}
	}
	out, err := yaml.Marshal(&b)
	return string(out), err
}

// flowPath is the path of an entry of flows:.
func flowPath(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "file" {
				return n.Content[i+1].Value
			}
		}
	}
	return n.Value
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// loadReadmeExample loads the files as `prober validate` does.
func loadReadmeExample(t *testing.T, ex *readmeExample) error {
	t.Helper()
	dir := writeFiles(t, ex.files)
	o := (&configFlags{}).loadOptions()
	o.SkipSecrets = true
	o.Env = func(string) (string, bool) { return "", false } // ${env:...} take their defaults
	o.ReadFile = func(p string) ([]byte, error) {
		if b, ok := ex.abs[p]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	_, err := config.Load(os.DirFS(dir), "probes.yaml", o)
	return err
}

func TestReadmeExamplesLoad(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	problems, loaded := readmeProblems(t, string(readme))
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("loaded %d README examples", loaded)
	if loaded < 25 {
		t.Errorf("loaded %d README examples, want the 27 or so of probes.yaml, flows and steps", loaded)
	}
}

// TestReadmeExamplesLoadFails: a broken example, a block of nobody's file
// and a block without its closing fence are reported at their lines.
func TestReadmeExamplesLoadFails(t *testing.T) {
	readme := strings.Join([]string{
		"# x", "", // 1-2
		"```yaml", "steps:", "  - name: a", "    request: {url: \"http://x/\"}", "    expect:", "      - status === 200", "```", // 3-9
		"", "```yaml", "receivers: {otlp: {}}", "```", // 10-13
		"", "<!-- readme-example: not prober's -->", "```yaml", "scrape_configs: []", "```", // 14-18
		"", "```yaml", "    expect:", "      - status == 200", "```", // 19-23: loads
		"", "```yaml", "tls: {ca_file: ca.pem}", "``` text", // 24-27
	}, "\n")
	problems, loaded := readmeProblems(t, readme)
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		"README.md:3: the example does not load:\nflows/readme.yaml:6:18: expected a value after ==",
		"README.md:11: cannot tell which file the keys [receivers]",
		"README.md:25: the ```yaml block has no closing",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
	if len(problems) != 3 || loaded != 1 {
		t.Errorf("%d problems, %d loaded; want 3 and 1:\n%s", len(problems), loaded, got)
	}
}

// readmeProblems loads every block of readme; it returns what did not
// load, at its README line, and how many did.
func readmeProblems(t *testing.T, readme string) (problems []string, loaded int) {
	keys := schemaKeys(t)
	ca := kindtest.NewCA(t)
	cert, key := kindtest.PEM(t, ca.Leaf(t, "prober", time.Now().Add(time.Hour)))
	pems := map[string][]byte{"ca_file": ca.PEM, "client_cert": cert, "client_key": key}
	blocks := readmeBlocks(readme)
	named := map[string]string{}
	for _, b := range blocks {
		if first, _, _ := strings.Cut(b.text, "\n"); strings.HasPrefix(first, "# ") && !b.foreign {
			if f := strings.TrimSuffix(strings.Fields(first)[1], ":"); strings.HasSuffix(f, ".yaml") {
				named[f] = b.text
			}
		}
	}
	// probes.yaml as the README builds it up, section by section, from the
	// shipped one; and the shipped flows and steps files it lists.
	probesText, err := os.ReadFile("../../probes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(probesText)
	shipped := map[string]string{}
	for _, glob := range []string{"../../flows/*.yaml", "../../steps/*.yaml"} {
		m, _ := filepath.Glob(glob)
		for _, p := range m {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			shipped[strings.TrimPrefix(filepath.ToSlash(p), "../../")] = string(b)
		}
	}
	for _, b := range blocks {
		if b.unclosed {
			problems = append(problems, fmt.Sprintf("README.md:%d: the ```yaml block has no closing ``` line of its own", b.line))
			continue
		}
		if b.foreign {
			t.Logf("README.md:%d: another program's file, not loaded", b.line)
			continue
		}
		ex := &readmeExample{files: map[string]string{}, abs: map[string][]byte{}}
		if err := ex.build(b, keys, named, pems, &base, shipped); err != nil {
			problems = append(problems, fmt.Sprintf("README.md:%d: %v", b.line, err))
			continue
		}
		if err := loadReadmeExample(t, ex); err != nil {
			var files bytes.Buffer
			for _, name := range slices.Sorted(func(yield func(string) bool) {
				for k := range ex.files {
					if !yield(k) {
						return
					}
				}
			}) {
				fmt.Fprintf(&files, "--- %s\n%s", name, ex.files[name])
			}
			problems = append(problems, fmt.Sprintf("README.md:%d: the example does not load:\n%v\nas loaded:\n%s", b.line, err, files.String()))
			continue
		}
		if ex.probes != "" {
			base = ex.probes
		}
		loaded++
	}
	return problems, loaded
}

// flowStyleExpects returns the lines (1-based, in text) of expect: lists
// written on one line ([a, b]) with an element not quoted: the YAML comma
// trap a reader copies. A one-line list of quoted expectations is the
// documented alternative to a block list, and passes.
func flowStyleExpects(text string) ([]int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	var lines []int
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "expect" && v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle != 0 &&
					slices.ContainsFunc(v.Content, func(e *yaml.Node) bool { return e.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 }) {
					lines = append(lines, v.Line)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return lines, nil
}

// TestExpectBlockLists: the README's examples, the shipped flows, the
// examples and the starter flow of `prober init` write expect: as a block
// list (one expectation per line), as the README teaches.
func TestExpectBlockLists(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{"cmd/prober/init.go starterFlow": starterFlow}
	for _, b := range readmeBlocks(string(readme)) {
		if !b.foreign {
			texts[fmt.Sprintf("README.md:%d", b.line)] = b.text
		}
	}
	for _, glob := range []string{"../../flows/*.yaml", "../../steps/*.yaml", "../../examples/*.yaml", "../../examples/*/*.yaml"} {
		m, _ := filepath.Glob(glob)
		for _, p := range m {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			texts[strings.TrimPrefix(p, "../../")] = string(b)
		}
	}
	if len(texts) < 40 {
		t.Fatalf("%d texts checked, want the README's blocks, the shipped flows and the examples", len(texts))
	}
	for name, text := range texts {
		lines, err := flowStyleExpects(text)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, l := range lines {
			t.Errorf("%s (line %d of it): expect: [...] with an unquoted expectation; write a block list, one per line", name, l)
		}
	}
	// The check itself: what it must refuse and pass.
	if l, _ := flowStyleExpects("steps:\n  - expect: [status == 200, 'a, b']\n"); len(l) != 1 {
		t.Errorf("a one-line list with an unquoted expectation passes")
	}
	if l, _ := flowStyleExpects("expect: ['status in [200, 201]', 'body contains \"a, b\"']\n"); len(l) != 0 {
		t.Errorf("a one-line list of quoted expectations is refused")
	}
}
