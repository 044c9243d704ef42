// Command prober is a synthetic monitoring daemon: it runs multi-step HTTP
// flows on a schedule, stamps every request with W3C trace context, and
// exports what it sees as Prometheus metrics, logs and a status page.
//
//	prober [run]     the daemon (default)
//	prober validate  check the configuration
//	prober once      run flows once and print their story
//	prober demo      the daemon against the built-in sandbox shop
//	prober shop      serve the sandbox shop and its fake bank gateway
//	prober rules     print the rules as a Prometheus rule file
//	prober init      write a starter configuration
//	prober version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/prober-dev/prober/internal/daemon"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	_ "time/tzdata" // cron timezones work in minimal containers

	"github.com/KimMachineGun/automemlimit/memlimit"

	prober "github.com/prober-dev/prober"
	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// Set by the build: -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a probe failed (once)
	exitUsage  = 2 // bad usage or bad configuration
	exitState  = 3 // the alert state file is corrupt
)

// usageError marks errors that exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	// The standard library's own messages (net/http's "Unsolicited
	// response ...", which quotes what a server sent) are JSON on stderr
	// from the start; the commands that load secrets route them through
	// the redactor (routeStdLog).
	routeStdLog(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// routeStdLog sends the standard library's logger through l (a redacting
// logger, once secrets are loaded) until the returned func restores the
// previous route.
func routeStdLog(l *slog.Logger) (restore func()) {
	w, flags := log.Writer(), log.Flags()
	log.SetFlags(0)
	log.SetOutput(secret.StdLog(l, "go_log").Writer())
	return func() { log.SetOutput(w); log.SetFlags(flags) }
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		// Help for prober itself, not for run, the default command.
		cmd, args = "help", args[1:]
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = cmdRun(args, stdout, stderr)
	case "validate":
		err = cmdValidate(args, stdout, stderr)
	case "once":
		err = cmdOnce(args, stdout, stderr)
	case "demo":
		err = cmdDemo(args, stdout, stderr)
	case "shop":
		err = cmdShop(args, stdout, stderr)
	case "rules":
		err = cmdRules(args, stdout, stderr)
	case "init":
		err = cmdInit(args, stdout, stderr)
	case "schema":
		err = cmdSchema(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "prober: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	var ue usageError
	var ce config.Errors
	var pf probeFailed
	var se *alert.CorruptError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &pf):
		return exitFailed
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, ce.Error())
		fmt.Fprintf(stderr, "prober: %d configuration error(s)\n", len(ce))
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "prober: %v\n", err)
		return exitUsage
	case errors.As(err, &se):
		// One line: what is wrong and the two ways forward.
		fmt.Fprintf(stderr, "prober: %v; to start with empty alert state (firing alerts, silences and undelivered pages in it are lost), "+
			"move it aside (mv %s %s.corrupt) or restart with --fresh-state, which renames it with a timestamp and starts fresh\n", se, se.Path, se.Path)
		return exitState
	default:
		fmt.Fprintf(stderr, "prober: %v\n", err)
		return exitFailed
	}
}

const usage = `prober: synthetic monitoring for multi-step HTTP flows

Usage:
  prober [run]       [--config probes.yaml] [--region R] [--listen ADDR] [--role all|probe|evaluate]
                     [--web.config.file web-config.yml]
  prober validate    [--config probes.yaml] [--scrape-interval 15s]
  prober once        [--config probes.yaml] [--flow NAME]... [--junit FILE] [--json]
  prober demo        [--listen ADDR] [--every 10s]
  prober shop        [--listen ADDR] [--gateway-listen ADDR]
  prober rules       [--config probes.yaml] [--out FILE]
  prober init        [--dir DIR] [URL]   write a starter probes.yaml and flow
  prober schema      probes|flow|steps   print the JSON Schema of probes.yaml, flow or steps files
  prober version

Exit codes: 0 ok, 1 a probe failed (once), 2 bad usage or bad configuration,
3 the alert state file is corrupt (see --fresh-state).
Run 'prober <command> -h' for a command's flags.
`

func versionString() string {
	v, c, d := version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			}
		}
	}
	out := "prober " + v
	if c != "" {
		out += " commit " + c
	}
	if d != "" {
		out += " built " + d
	}
	return out
}

// configFlags are shared by run, validate and once.
type configFlags struct {
	path   string
	region string
	set    bool // --config given explicitly
}

func (c *configFlags) register(fl *flag.FlagSet) {
	fl.Func("config", "path of probes.yaml (default probes.yaml, else the built-in configuration)", func(s string) error {
		c.path, c.set = s, true
		return nil
	})
	fl.StringVar(&c.region, "region", "", "region name for labels and logs (default $PROBER_REGION or the config's)")
}

// source returns the file system and path to load: the given file, else
// ./probes.yaml, else (when allowEmbedded) the configuration built into the binary.
func (c *configFlags) source(allowEmbedded bool, stderr io.Writer) (fs.FS, string, error) {
	path := c.path
	if !c.set {
		path = "probes.yaml"
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if !allowEmbedded {
				return nil, "", usageError{fmt.Errorf("probes.yaml not found in the current directory: use --config, or 'prober demo' for the built-in sandbox")}
			}
			fmt.Fprintln(stderr, "prober: no ./probes.yaml; using the built-in configuration")
			return prober.DefaultConfig, "probes.yaml", nil
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", usageError{err}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("config: %w", err)}
	}
	if !st.Mode().IsRegular() {
		// /dev/zero or a FIFO would read forever (the loader refuses them too).
		return nil, "", usageError{fmt.Errorf("config %s: %s, not a regular file", path, fileKind(st.Mode()))}
	}
	// Paths in errors are relative to the config's directory, as written in it.
	return os.DirFS(filepath.Dir(abs)), filepath.Base(abs), nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "special"
}

func (c *configFlags) loadOptions() config.Options {
	return config.Options{Region: c.region, Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds()}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// ratioFlag is --memory-limit-ratio: a fraction from 0 to 1, checked as it
// is parsed so that a bad one is a usage error.
type ratioFlag float64

func (r *ratioFlag) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) }

func (r *ratioFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0 && v <= 1) {
		return errors.New("want a number from 0 to 1")
	}
	*r = ratioFlag(v)
	return nil
}

// memoryLimitFlag registers --memory-limit-ratio for the long-running commands.
func memoryLimitFlag(fl *flag.FlagSet) *ratioFlag {
	r := ratioFlag(0.9) // Prometheus 3's auto-gomemlimit ratio
	fl.Var(&r, "memory-limit-ratio", "set Go's soft memory limit to this `fraction` of the container's (cgroup) memory limit, "+
		"so the GC works harder before the kernel kills the process; 0 disables; GOMEMLIMIT, if set, wins")
	return &r
}

// applyMemoryLimit sets the soft memory limit of this process from its cgroup.
func applyMemoryLimit(log *slog.Logger, ratio *ratioFlag) {
	setMemoryLimit(log, float64(*ratio), memlimit.FromCgroup)
}

// signalContext is cancelled by SIGINT or SIGTERM; SIGHUP calls reload.
func signalContext(reload func()) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if s == syscall.SIGHUP {
					if reload != nil {
						reload()
					}
					continue
				}
				cancel()
				signal.Stop(ch) // a second Ctrl-C kills
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, func() { close(done); signal.Stop(ch); cancel() }
}

// parse parses a command's flags. The flag package would print a bad
// flag's error and the whole usage, and run prints the error again: so it
// prints nothing itself here, -h prints the command's flags, and a bad flag
// is one line (from run) that says where the flags are listed.
func parse(fl *flag.FlagSet, args []string) error {
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected arguments: %s", fl.Name(), strings.Join(fl.Args(), " "))}
	}
	return nil
}

// parseFlags is parse for commands that take arguments after their flags.
func parseFlags(fl *flag.FlagSet, args []string) error {
	out := fl.Output()
	fl.SetOutput(io.Discard)
	err := fl.Parse(args)
	fl.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(out, "Usage: prober %s [flags]\n\nFlags:\n", fl.Name())
			fl.PrintDefaults()
			return err
		}
		return usageError{fmt.Errorf("%s: %w (see 'prober %s -h')", fl.Name(), err, fl.Name())}
	}
	return nil
}
