package deploycheck

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Dockerfile is a parsed Dockerfile: enough of the format to replay a Go
// build and lay out the final image without a container engine.
type Dockerfile struct {
	// Args holds the global ARG defaults (before the first FROM).
	Args   map[string]string
	Stages []*Stage
}

// Stage is one FROM and its instructions.
type Stage struct {
	Name         string // AS name, or ""
	From         string // the image, with global ARGs expanded
	Platform     string // --platform, unexpanded
	Line         int
	Instructions []Instruction

	global map[string]string // the Dockerfile's global ARG defaults
}

// Instruction is one instruction, continuation lines joined.
type Instruction struct {
	Cmd   string   // upper case: RUN, COPY, ...
	Flags []string // leading --name=value options (RUN --mount, COPY --from)
	Args  string   // the rest, as written
	JSON  []string // the exec form's words, when Args is a JSON array
	Line  int      // where it starts
}

// Flag returns the value of --name=value, and whether it is set.
func (in Instruction) Flag(name string) (string, bool) {
	for _, f := range in.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// ParseDockerfile parses src: comments, line continuations (backslash),
// stages, global ARGs and each instruction's flags and exec form.
func ParseDockerfile(src string) (*Dockerfile, error) {
	df := &Dockerfile{Args: map[string]string{}}
	lines := strings.Split(src, "\n")
	var cur *Stage
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Join continuations; comment and empty lines inside are dropped.
		for strings.HasSuffix(line, `\`) {
			line = strings.TrimSuffix(line, `\`)
			i++
			for i < len(lines) {
				next := strings.TrimSpace(lines[i])
				if next == "" || strings.HasPrefix(next, "#") {
					i++
					continue
				}
				line += " " + next
				break
			}
			if i >= len(lines) {
				return nil, fmt.Errorf("line %d: continuation at the end of the file", start)
			}
		}
		cmd, rest, _ := strings.Cut(line, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Line: start}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			f, r, _ := strings.Cut(rest, " ")
			in.Flags = append(in.Flags, f)
			rest = strings.TrimSpace(r)
		}
		in.Args = rest
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &in.JSON); err != nil {
				return nil, fmt.Errorf("line %d: %s: bad exec form: %v", start, in.Cmd, err)
			}
		}
		switch {
		case in.Cmd == "FROM":
			words := strings.Fields(rest)
			if len(words) != 1 && !(len(words) == 3 && strings.EqualFold(words[1], "AS")) {
				return nil, fmt.Errorf("line %d: FROM image [AS name], got %q", start, rest)
			}
			img, err := expandArgs(words[0], df.Args)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", start, err)
			}
			cur = &Stage{From: img, Line: start, global: df.Args}
			cur.Platform, _ = in.Flag("platform")
			if len(words) == 3 {
				cur.Name = words[2]
			}
			df.Stages = append(df.Stages, cur)
		case cur == nil && in.Cmd == "ARG":
			// A default may name an ARG declared before it.
			name, val, _ := strings.Cut(rest, "=")
			v, err := expandArgs(val, df.Args)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", start, err)
			}
			df.Args[name] = v
		case cur == nil:
			return nil, fmt.Errorf("line %d: %s before the first FROM", start, in.Cmd)
		default:
			cur.Instructions = append(cur.Instructions, in)
		}
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return df, nil
}

// Stage returns the stage named name (or by index, as COPY --from=0 does).
func (df *Dockerfile) Stage(name string) *Stage {
	for i, s := range df.Stages {
		if s.Name == name || fmt.Sprint(i) == name {
			return s
		}
	}
	return nil
}

// Final is the stage the image is.
func (df *Dockerfile) Final() *Stage { return df.Stages[len(df.Stages)-1] }

// Find returns the stage's instructions of one kind.
func (s *Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// Vars is what a RUN of the stage sees: its ARGs (defaults, overridden by
// buildArgs, as --build-arg does; only declared ARGs are visible, and one
// declared without a default takes the global ARG's) and ENVs, in order up
// to instruction index upTo.
func (s *Stage) Vars(buildArgs map[string]string, upTo int) (map[string]string, error) {
	vars := map[string]string{}
	for i, in := range s.Instructions {
		if i >= upTo {
			break
		}
		switch in.Cmd {
		case "ARG":
			name, def, hasDef := strings.Cut(in.Args, "=")
			if v, ok := buildArgs[name]; ok {
				vars[name] = v
			} else if hasDef {
				v, err := expandArgs(def, vars)
				if err != nil {
					return nil, fmt.Errorf("line %d: %v", in.Line, err)
				}
				vars[name] = v
			} else {
				vars[name] = s.global[name]
			}
		case "ENV":
			name, val, ok := strings.Cut(in.Args, "=")
			if !ok {
				name, val, _ = strings.Cut(in.Args, " ")
			}
			words, err := ShellWords(val, vars)
			if err != nil || len(words) > 1 {
				return nil, fmt.Errorf("line %d: ENV: one NAME=value per instruction, please", in.Line)
			}
			vars[strings.TrimSpace(name)] = strings.Join(words, "")
		}
	}
	return vars, nil
}

// WorkDir is the stage's WORKDIR before instruction upTo ("/" if none).
func (s *Stage) WorkDir(upTo int) string {
	wd := "/"
	for i, in := range s.Instructions {
		if i >= upTo {
			break
		}
		if in.Cmd == "WORKDIR" {
			wd = path.Join(wd, in.Args)
		}
	}
	return wd
}

var (
	argRef  = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// expandArgs expands $NAME and ${NAME} (as FROM and ARG defaults do).
func expandArgs(s string, vars map[string]string) (string, error) {
	if strings.Contains(s, "${") && strings.Contains(s, ":-") {
		return "", fmt.Errorf("%q: ${NAME:-default} is not supported here", s)
	}
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		return vars[argRef.FindStringSubmatch(m)[1]]
	}), nil
}

// ShellWords splits a shell-form command line into words as /bin/sh would
// for a simple command: quotes, backslash escapes, $NAME and ${NAME} from
// vars (an unset name is empty). Anything beyond a simple command (;, &&,
// |, redirections, $(...), backquotes) is an error: the build line must stay
// one command that a test can replay.
func ShellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord := false // a word has started (even an empty quoted one)
	flush := func() {
		if inWord {
			words = append(words, b.String())
		}
		b.Reset()
		inWord = false
	}
	expand := func(i int) (int, error) { // s[i] == '$'
		rest := s[i+1:]
		if strings.HasPrefix(rest, "(") {
			return 0, fmt.Errorf("command substitution $(...) is not supported")
		}
		name, n := "", 0
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				return 0, fmt.Errorf("unclosed ${")
			}
			name, n = rest[1:end], end+1
			if !varName.MatchString(name) {
				return 0, fmt.Errorf("${%s}: only plain ${NAME} is supported", name)
			}
		} else {
			for n < len(rest) && (rest[n] == '_' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= 'a' && rest[n] <= 'z' || n > 0 && rest[n] >= '0' && rest[n] <= '9') {
				n++
			}
			if n == 0 {
				b.WriteByte('$')
				return i + 1, nil
			}
			name = rest[:n]
		}
		b.WriteString(vars[name])
		return i + 1 + n, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unclosed single quote")
			}
			b.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unclosed double quote")
				}
				if s[i] == '"' {
					i++
					break
				}
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
					b.WriteByte(s[i+1])
					i += 2
				case s[i] == '$':
					var err error
					if i, err = expand(i); err != nil {
						return nil, err
					}
				case s[i] == '`':
					return nil, fmt.Errorf("command substitution `...` is not supported")
				default:
					b.WriteByte(s[i])
					i++
				}
			}
		case c == '\\':
			if i+1 < len(s) {
				b.WriteByte(s[i+1])
				inWord = true
			}
			i += 2
		case c == '$':
			start := b.Len()
			var err error
			if i, err = expand(i); err != nil {
				return nil, err
			}
			if b.Len() > start {
				inWord = true
			}
		case strings.IndexByte(";&|<>`(){}", c) >= 0:
			return nil, fmt.Errorf("%q: only a simple command is supported (no ;, &&, |, redirections or subshells)", string(c))
		default:
			b.WriteByte(c)
			inWord = true
			i++
		}
	}
	flush()
	return words, nil
}

// GoBuild is a RUN's `go build` command: the environment assignments before
// it, go's arguments, and the -o path.
type GoBuild struct {
	Env    []string // NAME=value, as the RUN line sets them
	Args   []string // after "go": build -trimpath ...
	Output string   // -o value, a path in the build stage
	Line   int
}

// ParseGoBuild reads a RUN instruction of shell form that runs
// `[NAME=value...] go build ...`, expanding variables from vars.
func ParseGoBuild(in Instruction, vars map[string]string) (*GoBuild, error) {
	if in.Cmd != "RUN" || in.JSON != nil {
		return nil, fmt.Errorf("line %d: want a shell-form RUN", in.Line)
	}
	words, err := ShellWords(in.Args, vars)
	if err != nil {
		return nil, fmt.Errorf("line %d: %v", in.Line, err)
	}
	gb := &GoBuild{Line: in.Line}
	i := 0
	for ; i < len(words); i++ {
		name, _, ok := strings.Cut(words[i], "=")
		if !ok || !varName.MatchString(name) {
			break
		}
		gb.Env = append(gb.Env, words[i])
	}
	if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
		return nil, fmt.Errorf("line %d: not a go build command: %q", in.Line, in.Args)
	}
	gb.Args = words[i+1:]
	for j, a := range gb.Args {
		if a == "-o" && j+1 < len(gb.Args) {
			gb.Output = gb.Args[j+1]
		} else if v, ok := strings.CutPrefix(a, "-o="); ok {
			gb.Output = v
		}
	}
	if gb.Output == "" {
		return nil, fmt.Errorf("line %d: go build without -o", in.Line)
	}
	return gb, nil
}
