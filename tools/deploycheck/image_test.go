package deploycheck

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// What the test passes as --build-arg, and expects back from `prober version`.
var testBuildArgs = map[string]string{
	"VERSION":    "v9.8.7-deploycheck",
	"COMMIT":     "0123456789abcdef0123456789abcdef01234567",
	"DATE":       "2026-11-23T10:00:00Z",
	"TARGETOS":   "linux",
	"TARGETARCH": runtime.GOARCH,
}

const nonroot = 65532

// TestDockerfile: the image's promises, read from the Dockerfile.
func TestDockerfile(t *testing.T) {
	df := parseRepoDockerfile(t)
	final := df.Final()
	if !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(final.From) && final.From != "scratch" {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static-debian12:nonroot (or scratch)", final.From)
	}
	if users := final.Find("USER"); len(users) == 0 || !slices.Contains([]string{"65532", "65532:65532", "nonroot", "nonroot:nonroot"}, users[len(users)-1].Args) {
		t.Errorf("final stage USER %v: want 65532:65532", users)
	}
	wantJSON := map[string][]string{
		"ENTRYPOINT": {"/prober"},
		"CMD":        {"run", "--config", "/etc/prober/probes.yaml", "--listen", "0.0.0.0:8315", "--state-dir", "/var/lib/prober"},
		"VOLUME":     {"/var/lib/prober"},
	}
	for cmd, want := range wantJSON {
		ins := final.Find(cmd)
		if len(ins) != 1 || !slices.Equal(ins[0].JSON, want) {
			t.Errorf("final stage %s: got %v, want exactly one, exec form %q", cmd, ins, want)
		}
	}
	if ex := final.Find("EXPOSE"); len(ex) != 1 || ex[0].Args != "8315" {
		t.Errorf("final stage EXPOSE %v: want 8315", ex)
	}
	if hc := final.Find("HEALTHCHECK"); len(hc) != 0 {
		t.Errorf("HEALTHCHECK on line %d: distroless has no shell or client to run one", hc[0].Line)
	}
	for _, in := range final.Find("RUN") {
		t.Errorf("RUN on line %d in the final stage: distroless has no shell", in.Line)
	}
	// The OCI labels, with the build args the binary is stamped from.
	labels := map[string]string{}
	vars, err := final.Vars(testBuildArgs, len(final.Instructions))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range final.Find("LABEL") {
		words, err := ShellWords(in.Args, vars)
		if err != nil {
			t.Fatalf("LABEL on line %d: %v", in.Line, err)
		}
		for _, w := range words {
			k, v, _ := strings.Cut(w, "=")
			labels[k] = v
		}
	}
	const oci = "org.opencontainers.image."
	for k, want := range map[string]string{
		"title": "prober", "source": "https://github.com/prober-dev/prober",
		"version": testBuildArgs["VERSION"], "revision": testBuildArgs["COMMIT"], "created": testBuildArgs["DATE"],
		"base.name": final.From,
	} {
		if got, ok := labels[oci+k]; !ok || got != want {
			t.Errorf("final stage LABEL %s%s=%q, want %q", oci, k, got, want)
		}
	}
	if labels[oci+"description"] == "" {
		t.Errorf("final stage: no %sdescription label", oci)
	}
	// The bases are build args pinned by digest (see the Dockerfile's
	// comment): a tag alone can change under a rebuild.
	pinned := regexp.MustCompile(`^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$`)
	for _, arg := range []string{"GO_IMAGE", "BASE_IMAGE"} {
		if !pinned.MatchString(df.Args[arg]) {
			t.Errorf("ARG %s=%q: want a tag pinned by digest (image:tag@sha256:<64 hex>)", arg, df.Args[arg])
		}
	}
	if df.Args["BASE_IMAGE"] != final.From || !strings.HasPrefix(df.Args["GO_IMAGE"], "golang:1.") || df.Stage("build").From != df.Args["GO_IMAGE"] {
		t.Errorf("bases: GO_IMAGE=%q (build FROM %q), BASE_IMAGE=%q (final FROM %q)", df.Args["GO_IMAGE"], df.Stage("build").From, df.Args["BASE_IMAGE"], final.From)
	}

	gb := goBuildOf(t, df)
	for _, want := range []string{"CGO_ENABLED=0"} {
		if !slices.Contains(gb.Env, want) {
			t.Errorf("line %d: go build runs without %s", gb.Line, want)
		}
	}
	if !slices.Contains(gb.Args, "-trimpath") {
		t.Errorf("line %d: go build without -trimpath", gb.Line)
	}
	ld := ldflags(gb.Args)
	for _, want := range []string{"-s", "-w", "-X main.version=" + testBuildArgs["VERSION"], "-X main.commit=" + testBuildArgs["COMMIT"], "-X main.date=" + testBuildArgs["DATE"]} {
		if !strings.Contains(" "+ld+" ", " "+want+" ") {
			t.Errorf("line %d: -ldflags %q lacks %q (set from the VERSION, COMMIT and DATE build args)", gb.Line, ld, want)
		}
	}
}

// TestDockerfileParser: the parts of the format the image test relies on,
// including the refusals that keep the build line replayable.
func TestDockerfileParser(t *testing.T) {
	src := "ARG GV=1.26\nARG BASE=golang:${GV}\n# c\nFROM --platform=$BUILDPLATFORM ${BASE} AS b\nARG V=dev\nARG BASE\nENV X=1\nWORKDIR /src\n" +
		"RUN --mount=type=cache,target=/x \\\n  # inside\n  CGO_ENABLED=0 GOOS=${T} \\\n  go build -ldflags \"-X main.version=${V} -X 'a=b c'\" -o /out/p ./cmd/p\n" +
		"FROM scratch\nCOPY --from=b /out/p /p\nENTRYPOINT [\"/p\"]\n"
	df, err := ParseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(df.Stages) != 2 || df.Stages[0].From != "golang:1.26" || df.Stages[0].Name != "b" || df.Final().From != "scratch" {
		t.Fatalf("stages: %+v", df.Stages)
	}
	b := df.Stages[0]
	vars, err := b.Vars(map[string]string{"V": "v1"}, len(b.Instructions))
	if err != nil {
		t.Fatal(err)
	}
	run := b.Find("RUN")[0]
	if run.Line != 9 {
		t.Errorf("RUN line %d, want 9", run.Line)
	}
	if vars["BASE"] != "golang:1.26" {
		t.Errorf("ARG BASE without a default: %q, want the global default", vars["BASE"])
	}
	if v, _ := run.Flag("mount"); v != "type=cache,target=/x" {
		t.Errorf("mount flag %q", v)
	}
	gb, err := ParseGoBuild(run, vars)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gb.Env, []string{"CGO_ENABLED=0", "GOOS="}) || gb.Output != "/out/p" ||
		!slices.Equal(gb.Args, []string{"build", "-ldflags", "-X main.version=v1 -X 'a=b c'", "-o", "/out/p", "./cmd/p"}) {
		t.Errorf("go build: %+v", gb)
	}
	if b.WorkDir(len(b.Instructions)) != "/src" || vars["X"] != "1" {
		t.Errorf("workdir %s, X=%q", b.WorkDir(len(b.Instructions)), vars["X"])
	}
	for _, bad := range []string{"go build ./x && echo", "go build ./x; true", "go build $(pwd)", "go build ./x > log", "go build `pwd`"} {
		if _, err := ShellWords(bad, nil); err == nil {
			t.Errorf("ShellWords(%q): no error", bad)
		}
	}
}

// TestImage builds the binary with the Dockerfile's own go build line, from
// the build context .dockerignore leaves, checks that it is static and
// stamped, lays out the final image's files in a directory the way its COPY
// lines do, and runs the binary there as uid/gid 65532 (chroot): validate,
// then the daemon against the sandbox shop, with HOME unset and a read-only
// /etc/prober. It must serve /healthz, pass the checkout flow, and write
// nothing outside /var/lib/prober.
func TestImage(t *testing.T) {
	b := dockerfileBuild(t)
	df, bs, ctxDir, binary := b.df, b.stage, b.ctxDir, b.binary
	inBuild := b.inBuild
	tmp := t.TempDir()

	checkStatic(t, binary)
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("prober version: %v\n%s", err, out)
	}
	wantVersion := fmt.Sprintf("prober %s commit %s built %s", testBuildArgs["VERSION"], testBuildArgs["COMMIT"], testBuildArgs["DATE"])
	if got := strings.TrimSpace(string(out)); got != wantVersion {
		t.Errorf("prober version = %q, want %q", got, wantVersion)
	}

	// The image's file system: the base's few files, then the COPY lines.
	img := filepath.Join(tmp, "image")
	layoutDistrolessBase(t, img)
	final := df.Final()
	for _, in := range final.Find("COPY") {
		words := strings.Fields(in.Args)
		srcs, dst := words[:len(words)-1], words[len(words)-1]
		for _, src := range srcs {
			var from string
			if stage, ok := in.Flag("from"); ok {
				if df.Stage(stage) != bs {
					t.Fatalf("line %d: COPY --from=%s: not the build stage", in.Line, stage)
				}
				from = inBuild(src, "/")
			} else {
				from = filepath.Join(ctxDir, filepath.FromSlash(src))
			}
			to := filepath.Join(img, filepath.FromSlash(dst))
			if strings.HasSuffix(dst, "/") && !isDir(from) {
				to = filepath.Join(to, filepath.Base(from))
			}
			if err := copyTree(from, to); err != nil {
				t.Fatalf("line %d: COPY %s %s: %v", in.Line, src, dst, err)
			}
			if own, ok := in.Flag("chown"); ok {
				var uid, gid int
				if _, err := fmt.Sscanf(strings.Replace(own, ":", " ", 1), "%d %d", &uid, &gid); err != nil {
					t.Fatalf("line %d: --chown=%s: use numeric uid:gid", in.Line, own)
				}
				if err := chownTree(to, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	cmdline := append(slices.Clone(final.Find("ENTRYPOINT")[0].JSON), final.Find("CMD")[0].JSON...)
	stateDir := flagValue(cmdline, "--state-dir")
	configPath := flagValue(cmdline, "--config")
	for _, p := range []string{cmdline[0], configPath, path.Join(path.Dir(configPath), "flows/checkout.yaml"), stateDir} {
		if _, err := os.Stat(filepath.Join(img, p)); err != nil {
			t.Fatalf("the image lacks %s: %v", p, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(img, stateDir)); fi.Sys().(*syscall.Stat_t).Uid != nonroot {
		t.Errorf("%s is not owned by %d in the image: a volume mounted there would not be writable", stateDir, nonroot)
	}
	// The configuration is read-only, as a read-only mount would make it.
	if err := readOnlyTree(filepath.Join(img, path.Dir(configPath))); err != nil {
		t.Fatal(err)
	}

	if os.Geteuid() != 0 {
		t.Skip("SKIP running the binary as uid 65532 inside the image's files: needs root (chroot, setuid); the build, static-binary and version checks above ran")
	}

	// validate, as the user, in the image's root.
	out, err = runInImage(img, nil, cmdline[0], "validate", "--config", configPath).CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("SKIP running in a chroot: %v (no CAP_SYS_CHROOT here)", err)
	}
	if err != nil || !strings.Contains(string(out), "ok: 3 flow(s)") {
		t.Fatalf("prober validate in the image as %d: %v\n%s", nonroot, err, out)
	}

	// The daemon, exactly as the image's CMD says but on a free loopback
	// port, against the sandbox shop served by the same binary.
	const password = "deploycheck-Secret-1"
	shopURL := startShop(t, binary, password)
	listen := freeAddr(t)
	args := slices.Clone(cmdline[1:])
	args[slices.Index(args, "--listen")+1] = listen

	before := snapshot(t, img)
	daemon := runInImage(img, []string{"SHOP_URL=" + shopURL, "SHOP_PASSWORD=" + password}, cmdline[0], args...)
	stdout, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	daemon.Stderr = &stderr
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lines := make(chan string, 1000)
	var logs syncBuffer
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		done <- daemon.Wait()
	}()
	stopped := false
	defer func() {
		if !stopped {
			_ = daemon.Process.Kill()
			<-done
		}
	}()

	waitFor(t, 20*time.Second, "GET /healthz 200", func() bool {
		resp, err := http.Get("http://" + listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// A flow's first run comes at its phase within its interval (60s for
	// the shipped checkout), not at start.
	deadline := time.After(75 * time.Second)
	passed := false
	for !passed {
		select {
		case l := <-lines:
			var ev struct{ Msg, Flow, Status string }
			if json.Unmarshal([]byte(l), &ev) != nil {
				t.Errorf("a log line that is not JSON: %s", l)
				continue
			}
			if ev.Msg == "run" && ev.Flow == "checkout" {
				if ev.Status != "passed" {
					t.Fatalf("checkout in the image: %s", l)
				}
				t.Logf("as %d in the image: %s", nonroot, l)
				passed = true
			}
		case err := <-done:
			t.Fatalf("the daemon exited: %v\nstdout:\n%s\nstderr:\n%s", err, logs.String(), stderr.String())
		case <-deadline:
			t.Fatalf("no checkout run within 75s\nstdout:\n%s\nstderr:\n%s", logs.String(), stderr.String())
		}
	}

	_ = daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("the daemon's exit on SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the daemon did not stop within 45s of SIGTERM")
	}
	if strings.Contains(logs.String()+stderr.String(), password) {
		t.Error("the shop password appears in the daemon's output")
	}

	// It wrote its state where --state-dir says, and nothing anywhere else.
	after := snapshot(t, img)
	var wrote []string
	for p, st := range after {
		if before[p] == st {
			continue
		}
		wrote = append(wrote, p)
		if p != stateDir && !strings.HasPrefix(p, stateDir+"/") {
			t.Errorf("the daemon wrote %s (only %s is its to write)", p, stateDir)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("the daemon removed %s", p)
		}
	}
	slices.Sort(wrote)
	t.Logf("the daemon wrote: %s", strings.Join(wrote, " "))
	db := path.Join(stateDir, "prober.db")
	if st, ok := after[db]; !ok || st.uid != nonroot {
		t.Errorf("no alert state %s owned by %d after the run: %+v", db, nonroot, st)
	}
}

// imageBuild is the Dockerfile's build stage replayed once per test run:
// the context .dockerignore leaves, and the binary its go build line makes.
type imageBuild struct {
	df      *Dockerfile
	stage   *Stage
	ctxDir  string
	buildFS string
	workDir string
	binary  string
}

// inBuild maps a build-stage path (relative to wd) to the disk: under the
// WORKDIR it is the context copy, elsewhere the stage's own files.
func (b *imageBuild) inBuild(p, wd string) string {
	if !path.IsAbs(p) {
		p = path.Join(wd, p)
	}
	if p == b.workDir || strings.HasPrefix(p, b.workDir+"/") {
		return filepath.Join(b.ctxDir, filepath.FromSlash(strings.TrimPrefix(p, b.workDir)))
	}
	return filepath.Join(b.buildFS, filepath.FromSlash(p))
}

var (
	buildOnce   sync.Once
	builtImage  *imageBuild
	buildTmpDir string // removed by TestMain
)

// dockerfileBuild replays the build stage (once; the first test to ask pays
// for it and reports its failures).
func dockerfileBuild(t *testing.T) *imageBuild {
	t.Helper()
	buildOnce.Do(func() { builtImage = replayBuild(t) })
	if builtImage == nil {
		t.Fatal("the Dockerfile's build stage failed (see the first test that ran it)")
	}
	return builtImage
}

func replayBuild(t *testing.T) *imageBuild {
	root := repoRoot(t)
	df := parseRepoDockerfile(t)
	tmp, err := os.MkdirTemp("", "deploycheck-build-")
	if err != nil {
		t.Fatal(err)
	}
	buildTmpDir = tmp

	// The build context, as docker would send it.
	ctxDir := filepath.Join(tmp, "context")
	ignore := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	if err := copyContext(root, ctxDir, ignore); err != nil {
		t.Fatal(err)
	}

	// Replay the build stage the final stage copies from.
	bs := buildStageOf(t, df)
	b := &imageBuild{df: df, stage: bs, ctxDir: ctxDir, buildFS: filepath.Join(tmp, "buildfs"), workDir: bs.WorkDir(len(bs.Instructions))}
	workDir, inBuild := b.workDir, b.inBuild
	var binary string
	for i, in := range bs.Instructions {
		vars, err := bs.Vars(testBuildArgs, i)
		if err != nil {
			t.Fatal(err)
		}
		wd := bs.WorkDir(i)
		switch in.Cmd {
		case "ARG", "ENV", "WORKDIR":
		case "COPY":
			// Only context files into the working directory, which the
			// context copy already is.
			if _, from := in.Flag("from"); from {
				t.Fatalf("line %d: COPY --from in the build stage is not mirrored by this test", in.Line)
			}
			words := strings.Fields(in.Args)
			if dst := path.Join(wd, words[len(words)-1]); dst != workDir {
				t.Fatalf("line %d: the build stage copies to %s, not its WORKDIR: teach this test", in.Line, dst)
			}
			for _, src := range words[:len(words)-1] {
				if _, err := os.Stat(filepath.Join(ctxDir, src)); err != nil {
					t.Errorf("line %d: COPY %s: not in the build context (.dockerignore?): %v", in.Line, src, err)
				}
			}
		case "RUN":
			words, err := ShellWords(in.Args, vars)
			if err != nil {
				t.Fatalf("line %d: %v", in.Line, err)
			}
			switch {
			case slices.Equal(words, []string{"go", "mod", "download"}):
				runGo(t, ctxDir, nil, "mod", "download")
			case len(words) > 2 && words[0] == "mkdir" && words[1] == "-p":
				for _, d := range words[2:] {
					if err := os.MkdirAll(inBuild(d, wd), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			default:
				gb, err := ParseGoBuild(in, vars)
				if err != nil {
					t.Fatalf("%v (the test replays go mod download, mkdir -p and go build only)", err)
				}
				binary = inBuild(gb.Output, wd)
				args := slices.Clone(gb.Args)
				for j := range args {
					if args[j] == gb.Output && j > 0 && args[j-1] == "-o" {
						args[j] = binary
					}
				}
				start := time.Now()
				runGo(t, ctxDir, gb.Env, args...)
				t.Logf("line %d: go %s (%s)", in.Line, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
			}
		default:
			t.Fatalf("line %d: %s in the build stage is not mirrored by this test", in.Line, in.Cmd)
		}
	}
	if binary == "" {
		t.Fatal("the build stage runs no go build")
	}

	b.binary = binary
	return b
}

func parseRepoDockerfile(t *testing.T) *Dockerfile {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := ParseDockerfile(string(src))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return df
}

// buildStageOf is the stage the final stage copies the binary from.
func buildStageOf(t *testing.T, df *Dockerfile) *Stage {
	t.Helper()
	for _, in := range df.Final().Find("COPY") {
		if name, ok := in.Flag("from"); ok {
			if s := df.Stage(name); s != nil {
				return s
			}
			t.Fatalf("line %d: COPY --from=%s: no such stage", in.Line, name)
		}
	}
	t.Fatal("the final stage copies nothing from a build stage")
	return nil
}

func goBuildOf(t *testing.T, df *Dockerfile) *GoBuild {
	t.Helper()
	bs := buildStageOf(t, df)
	for i, in := range bs.Instructions {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		vars, err := bs.Vars(testBuildArgs, i)
		if err != nil {
			t.Fatal(err)
		}
		gb, err := ParseGoBuild(in, vars)
		if err != nil {
			t.Fatal(err)
		}
		return gb
	}
	t.Fatal("no go build in the build stage")
	return nil
}

func ldflags(args []string) string {
	for i, a := range args {
		if a == "-ldflags" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			return v
		}
	}
	return ""
}

func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func runGo(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH, so go is found there.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("finding the go command: %v", err)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	// The image build's environment: no GOFLAGS of the developer's or CI's.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// checkStatic: no interpreter, no dynamic section, stripped, built with
// CGO_ENABLED=0 and -trimpath.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not a static binary", bin, p.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic", ".dynsym"} {
		if f.Section(name) != nil {
			t.Errorf("%s has a %s section: not a static binary", bin, name)
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: -ldflags -s did not apply", bin)
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Errorf("%s has DWARF: -ldflags -w did not apply", bin)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
}

// layoutDistrolessBase writes what gcr.io/distroless/static:nonroot holds
// that the prober could touch: passwd and group naming nonroot (65532), the
// CA bundle, a sticky /tmp and nonroot's home. (It also has tzdata; the
// binary embeds its own.)
func layoutDistrolessBase(t *testing.T, img string) {
	t.Helper()
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Join(img, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(img, "etc/ssl/certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := os.WriteFile(filepath.Join(img, "etc/ssl/certs/ca-certificates.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		p    string
		mode fs.FileMode
		uid  int
	}{{"tmp", 0o1777 | fs.ModeSticky, 0}, {"home/nonroot", 0o700, nonroot}, {"root", 0o700, 0}} {
		p := filepath.Join(img, d.p)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(p, d.uid, d.uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(img, 0o755); err != nil {
		t.Fatal(err)
	}
}

// runInImage runs name inside img (chroot) as 65532:65532 with only env.
func runInImage(img string, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.Env = append([]string{}, env...) // no HOME, no PATH, no USER
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     img,
		Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// startShop serves the sandbox shop from the same binary (as the test's
// user, outside the image) and returns its URL.
func startShop(t *testing.T, bin, password string) string {
	t.Helper()
	cmd := exec.Command(bin, "shop", "--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0", "--log", filepath.Join(t.TempDir(), "shop.log"))
	cmd.Env = append(os.Environ(), "SHOP_PASSWORD="+password)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`sandbox shop at (http://[^\s,]+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(15 * time.Second):
		t.Fatal("the sandbox shop did not start within 15s")
		return ""
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type fileState struct {
	mode    fs.FileMode
	size    int64
	modTime time.Time
	uid     uint32
}

// snapshot maps every path under img (as the image sees it) to its state.
func snapshot(t *testing.T, img string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(img, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(img, p)
		st := fileState{mode: fi.Mode(), size: fi.Size(), modTime: fi.ModTime(), uid: fi.Sys().(*syscall.Stat_t).Uid}
		if fi.IsDir() {
			st.size, st.modTime = 0, time.Time{} // an entry added shows as the entry itself
		}
		out["/"+filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(out, "/.")
	return out
}

// readDockerignore returns the patterns of a .dockerignore file.
func readDockerignore(t *testing.T, p string) []string {
	t.Helper()
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(src), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not mirrored by this test", l)
		}
		pats = append(pats, path.Clean(strings.TrimPrefix(l, "/")))
	}
	return pats
}

// ignored reports whether a context path (slash-separated, relative) or one
// of its parents matches a .dockerignore pattern (*, ?, ** as Docker does).
func ignored(rel string, pats []string) bool {
	for _, p := range pats {
		re := dockerignoreRegexp(p)
		for q := rel; q != "." && q != ""; q = path.Dir(q) {
			if re.MatchString(q) {
				return true
			}
			if !strings.Contains(q, "/") {
				break
			}
		}
	}
	return false
}

func dockerignoreRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestDockerignoreMatching(t *testing.T) {
	pats := []string{".git", "**/testdata", "*.md", "deploy/terraform", "**/*.test"}
	for rel, want := range map[string]bool{
		".git/config": true, "internal/config/testdata/x.yaml": true, "README.md": true, "docs/x.md": false,
		"deploy/terraform/a.tf": true, "deploy/grafana/x.json": false, "alert.test": true, "cmd/x/y.test": true,
		"cmd/prober/main.go": false, "probes.yaml": false, "flows/checkout.yaml": false,
	} {
		if got := ignored(rel, pats); got != want {
			t.Errorf("ignored(%s) = %v, want %v", rel, got, want)
		}
	}
}

func copyContext(src, dst string, pats []string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && ignored(rel, pats) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(p, target)
		}
		return nil // symlinks, sockets: not needed by the build
	})
}

// copyTree copies a file to a file path, or a directory's contents into a
// directory, as COPY does; created directories are 0755 root.
func copyTree(from, to string) error {
	if !isDir(from) {
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return copyFile(from, to)
	}
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
}

func copyFile(from, to string) error {
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, fi.Mode().Perm())
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func chownTree(root string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil // as a user, the run part of the test is skipped anyway
	}
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func readOnlyTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o555)
		}
		return os.Chmod(p, 0o444)
	})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
