package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
	"github.com/prober-dev/prober/internal/kinds/browserkind"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/shop"
)

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("demo", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cf configFlags
	cf.register(fl)
	listen := fl.String("listen", "127.0.0.1:8315", "prober HTTP listen address")
	shopAddr := fl.String("shop-listen", "127.0.0.1:0", "sandbox shop listen address")
	shopTLSAddr := fl.String("shop-tls-listen", "127.0.0.1:0", "sandbox shop HTTPS listen address")
	freshState := fl.Bool("fresh-state", false, "if the alert state file is corrupt, rename it aside and start with empty state")
	every := fl.Duration("every", 0, "run every flow at this interval instead of its own schedule (e.g. 10s)")
	dir := fl.String("dir", "", "directory for the demo's log files (default a new temporary directory)")
	browser := fl.Bool("browser", true, "run the storefront's checkout in Chromium ("+browserFlow+") when Chromium is on PATH")
	memRatio := memoryLimitFlag(fl)
	if err := parse(fl, args); err != nil {
		return err
	}
	if *every != 0 && *every < time.Second {
		return usageError{fmt.Errorf("--every %s: the minimum is 1s", *every)}
	}
	fsys, path, err := cf.source(true, io.Discard)
	if err != nil {
		return err
	}
	chromium, findErr := browserkind.Find()
	withBrowser := false
	if !*browser {
		findErr = errBrowserOff
	} else if findErr == nil {
		fsys, withBrowser = withBrowserFlow(fsys, path) // demobrowser.go
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "prober-demo-"); err != nil {
			return fmt.Errorf("creating the demo directory: %w", err)
		}
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("creating the demo directory: %w", err)
	}
	shopLog, err := os.Create(filepath.Join(*dir, "shop.log"))
	if err != nil {
		return err
	}
	defer shopLog.Close()
	proberLog, err := os.Create(filepath.Join(*dir, "prober.log"))
	if err != nil {
		return err
	}
	defer proberLog.Close()
	log := slog.New(slog.NewJSONHandler(proberLog, nil))
	applyMemoryLimit(log, memRatio)

	// The sandbox user's password is a secret like any other: from the
	// environment if given, else random; it must appear in no output.
	password, ok := os.LookupEnv("SHOP_PASSWORD")
	ownPassword := ok && password != ""
	if !ownPassword {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		password = hex.EncodeToString(b)
	}
	ctx, stop := signalContext(nil)
	defer stop()
	sb, err := shop.StartSandbox(ctx, shop.SandboxOptions{ShopAddr: *shopAddr, TLSAddr: *shopTLSAddr, Password: password, Log: shopLog})
	if err != nil {
		return fmt.Errorf("starting the sandbox shop: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sb.Close(cctx)
	}()
	// The CA of the shop's HTTPS certificate, for the certificate check
	// (flows/certificate.yaml reads $SHOP_CA_FILE) and for curl --cacert.
	caFile := filepath.Join(*dir, "shop-ca.pem")
	if err := os.WriteFile(caFile, sb.CAPEM, 0o644); err != nil {
		return fmt.Errorf("writing the sandbox shop's CA: %w", err)
	}

	env := func(name string) (string, bool) {
		switch name {
		case "SHOP_URL":
			return sb.ShopURL, true
		case "SHOP_TLS_ADDR":
			return sb.TLSAddr, true
		case "SHOP_CA_FILE":
			return caFile, true
		case "SHOP_PASSWORD":
			return password, true
		}
		return os.LookupEnv(name)
	}
	lo := cf.loadOptions()
	lo.Env = env
	lo.RunOnStart = true // a demo shows runs at once, not after each flow's phase
	if *every > 0 {
		lo.Every = *every
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return usageError{fmt.Errorf("listening on %s: %w (is another prober running? use --listen)", *listen, err)}
	}
	printer := &runPrinter{w: stdout}
	d, err := daemon.New(daemon.Options{
		ConfigFS: fsys, ConfigPath: path, Load: lo, Version: version, Revision: commit,
		Logger:        log,
		Observers:     []result.Observer{printer},
		StateDir:      filepath.Join(*dir, "state"),
		FreshState:    *freshState,
		ConsoleWriter: printer,
		StatusURL:     "http://" + ln.Addr().String(),
	})
	if err != nil {
		ln.Close()
		return err
	}
	// With tracing on, the demo's shop and gateway send their spans to the
	// same backend, so a probe's trace holds the backend's side too.
	if tc := d.Config().Tracing; tc != nil {
		exp, err := sandboxExporter(ctx, tc)
		if err != nil {
			ln.Close()
			return fmt.Errorf("demo: the sandbox shop's spans: %w", err)
		}
		sb.Trace(exp)
	}
	base := "http://" + ln.Addr().String()
	printBanner(stdout, d.Config(), base, sb, *dir, caFile, ownPassword)
	printBrowserNote(stdout, sb.ShopURL, chromium, findErr, withBrowser)
	defer routeStdLog(d.Logger())()
	return d.Serve(ctx, ln)
}

// printBanner says where everything is. It never prints the shop's
// password: with SHOP_PASSWORD set, the 'once' command it shows reads the
// same variable; without, the password is random and the banner says how to
// choose one.
func printBanner(w io.Writer, cfg *config.Config, base string, sb *shop.Sandbox, dir, caFile string, ownPassword bool) {
	onceCmd := "  SHOP_URL=" + sb.ShopURL + " SHOP_TLS_ADDR=" + sb.TLSAddr + " SHOP_CA_FILE=" + caFile + " prober once"
	once := "Run the flows once against this shop, from another shell with the same SHOP_PASSWORD exported:\n" + onceCmd
	if !ownPassword {
		once = "Its shop password is random and shown nowhere; to run 'prober once' against the demo's shop,\n" +
			"start the demo with SHOP_PASSWORD exported, and run from another shell with it exported too:\n" + onceCmd
	}
	days := time.Until(sb.CertNotAfter).Hours() / 24
	fmt.Fprintf(w, `prober demo: probing the sandbox shop with the shipped configuration (%d flows)

  status page   %[2]s/
  metrics       %[2]s/metrics
  results API   %[2]s/api/v1/results
  sandbox shop  %[3]s   (its own metrics: %[3]s/metrics)
  over HTTPS    %[7]s   (CA: %[8]s; the certificate expires in %.0[9]f days:
                the shop_certificate flow checks it, the dashboard's "Certificate expiry" panel warns)
  shop logs     %[4]s
  prober logs   %[5]s

Break the bank gateway the way the shop hides it (200 "processing"):
  curl -X PUT %[3]s/admin/faults -d '{"gateway_status":504,"swallow_errors":true}'
Heal it:
  curl -X DELETE %[3]s/admin/faults
Find a probe's requests in the shop's logs by its trace id:
  grep <trace_id> %[4]s

Pages print here (the console notifier) once the rules confirm users are hurt;
with PAGERDUTY_ROUTING_KEY, or SLACK_TOKEN and SLACK_CHANNEL, set they also go
to PagerDuty and Slack. Alerts and silences: %[2]s/alerts

%[6]s

Ctrl-C stops the demo.

`, len(cfg.Flows), base, sb.ShopURL, filepath.Join(dir, "shop.log"), filepath.Join(dir, "prober.log"), once,
		sb.ShopHTTPSURL, caFile, days)
}

// runPrinter prints one line per run, for people watching the demo, and is
// where the console notifier's pages go (one writer, so lines don't mix).
type runPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *runPrinter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w.Write(b)
}

func (p *runPrinter) Observe(r *result.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	verdict := "PASSED"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(p.w, "%s  %-16s %s  %8s  trace_id=%s\n", r.Start.Format("15:04:05"), r.Flow, verdict,
		result.Round(r.Duration), r.TraceID)
	if !r.OK() {
		fmt.Fprintf(p.w, "          %s\n", r.Summary())
	}
}
