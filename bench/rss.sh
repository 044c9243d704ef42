#!/usr/bin/env bash
# The real `prober run` binary's memory running N generated flows, as an
# operator would see it (ps, top, a container's RSS): no harness in the
# process, nothing given back to the OS by hand. The load harness
# (bench/load) measures the same flows in-process; this is its check.
#
#   bash bench/rss.sh                        # 10,000 flows x 4 steps every 1m, 4 minutes
#   FLOWS=5000 SECS=120 bash bench/rss.sh
#
# Prints one line every SAMPLE seconds (RSS, anonymous, file pages; with
# SCRAPE=1 /metrics is read each time, as a Prometheus would, and the Go
# heap in use shown from it) and the peak and the last minute's mean.
set -euo pipefail
SCRAPE=${SCRAPE:-0} FLOWS=${FLOWS:-10000} STEPS=${STEPS:-4} EVERY=${EVERY:-60s} SECS=${SECS:-240} SAMPLE=${SAMPLE:-5}
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/prober-rss.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/prober" ./cmd/prober
go build -o "$work/load" ./bench/load

# The target: the harness's minimal server, in its own process; it stops
# when its stdin closes.
mkfifo "$work/hold"
"$work/load" -serve 127.0.0.1:0 <"$work/hold" >"$work/target.out" &
pids+=($!)
exec 3>"$work/hold"
for _ in $(seq 50); do grep -q listening "$work/target.out" 2>/dev/null && break; sleep 0.1; done
target=$(awk '/listening/{print $2}' "$work/target.out")
[ -n "$target" ] || { echo "rss: the target did not start" >&2; exit 1; }

"$work/load" -write-config "$work/cfg" -target "http://$target" -flows "$FLOWS" -steps "$STEPS" -every "$EVERY"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work/cfg" && exec "$work/prober" run --config probes.yaml --listen "127.0.0.1:$port" --state-dir "$work/state" >"$work/prober.log" 2>&1) &
ppid=$!
pids+=("$ppid")
for _ in $(seq 600); do curl -fs "127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

kb() { awk -v k="$1:" '$1==k{print $2}' "/proc/$ppid/status"; }
heap() {
	[ "$SCRAPE" = 1 ] || { echo -; return; }
	curl -fs "127.0.0.1:$port/metrics" 2>/dev/null | awk '$1=="go_memstats_heap_inuse_bytes"{printf "%.1f", $2/1048576}'
}
echo "# prober run: $FLOWS flows x $STEPS steps every $EVERY, $SECS s; $(nproc) cores; GOGC ${GOGC:-default}, GOMEMLIMIT ${GOMEMLIMIT:-default}; scrapes: $([ "$SCRAPE" = 1 ] && echo "every ${SAMPLE}s" || echo none)"
echo "| s | RSS MB | anonymous | file pages | Go heap in use |"
echo "|---|---|---|---|---|"
start=$(date +%s)
sum=0
n=0
while :; do
	sleep "$SAMPLE"
	kill -0 "$ppid" 2>/dev/null || { echo "rss: prober exited:" >&2; tail -5 "$work/prober.log" >&2; exit 1; }
	t=$(($(date +%s) - start))
	rss=$(kb VmRSS) anon=$(kb RssAnon) file=$(kb RssFile)
	awk -v t="$t" -v r="$rss" -v a="$anon" -v f="$file" -v h="$(heap)" 'BEGIN{printf "| %d | %.1f | %.1f | %.1f | %s |\n", t, r/1024, a/1024, f/1024, h}'
	if [ "$t" -ge $((SECS - 60)) ]; then sum=$((sum + rss)) n=$((n + 1)); fi
	[ "$t" -ge "$SECS" ] && break
done
awk -v p="$(kb VmHWM)" -v s="$sum" -v n="$n" 'BEGIN{printf "peak RSS %.1f MB (VmHWM, start-up included); mean RSS over the last minute %.1f MB\n", p/1024, s/n/1024}'
