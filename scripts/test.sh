#!/usr/bin/env bash
# Every test prober has, e2e included: formatting, vet, staticcheck, unit and e2e tests
# under the race detector, a bounded fuzzing pass over each parser, and one
# pass of every benchmark (so they keep compiling and running).
# Installs what it needs on a fresh Debian machine.
#   FUZZTIME=30s bash scripts/test.sh    fuzz each target for a time instead
#                                        of its count of inputs (below)
#   PROBER_TOFU=1 bash scripts/test.sh   also build OpenTofu and run its fmt
#                                        -check (the default check is hclwrite's)
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
command -v go >/dev/null || { echo "test.sh: Go 1.26 is required" >&2; exit 2; }

# e2e runs the real Prometheus, promtool and Alertmanager from Debian, and
# drives the pages in Debian's headless chromium; tools/deploycheck runs
# Debian's systemd-analyze verify on the unit.
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v chromium >/dev/null || need+=(chromium) # browser steps and the e2e page tests
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (Debian packages, for e2e)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PROBER_REQUIRE_PROMETHEUS=1 PROBER_REQUIRE_SYSTEMD=1

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt needed on: $bad" >&2; exit 1; fi

echo "== go vet"
go vet ./...

# staticcheck, built from the Go module proxy and kept in ~/.cache/prober-tools
# (seconds to build warm; nothing but the module proxy is downloaded).
STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
echo "== staticcheck ${STATICCHECK_VERSION}"
staticcheck="${XDG_CACHE_HOME:-$HOME/.cache}/prober-tools/staticcheck-${STATICCHECK_VERSION}"
if [ ! -x "$staticcheck" ]; then
  (cd "$(mktemp -d)" && GOFLAGS= go mod download "honnef.co/go/tools@${STATICCHECK_VERSION}")
  mkdir -p "$(dirname "$staticcheck")"
  (cd "$(go env GOMODCACHE)/honnef.co/go/tools@${STATICCHECK_VERSION}" &&
    GOFLAGS=-buildvcs=false GOWORK=off go build -trimpath -o "$staticcheck.tmp" ./cmd/staticcheck)
  mv "$staticcheck.tmp" "$staticcheck"
fi
"$staticcheck" ./...

# deploy/terraform's formatting: tofu fmt -check in process, through
# hashicorp/hcl's hclwrite (tools/deploycheck's CheckFormat), in seconds.
echo "== terraform fmt check (hclwrite; PROBER_TOFU=1 adds OpenTofu's own)"
go test -count=1 -run '^TestTerraformFormat' ./tools/deploycheck/

# PROBER_TOFU=1: OpenTofu itself, built from its Go module (the module proxy
# is the only download it needs), runs fmt -check and, through
# PROBER_TOFU_BIN, the test that compares its verdicts with CheckFormat's.
# Not `go install ...@version`: OpenTofu's go.mod has a replace directive,
# which go install refuses; building inside the downloaded module honours
# it. About 10 minutes cold on 2 cores, seconds warm; the binary is kept in
# ~/.cache/prober-tools.
if [ "${PROBER_TOFU:-}" = 1 ]; then
  TOFU_VERSION="${TOFU_VERSION:-v1.12.6}"
  echo "== tofu fmt -check (OpenTofu ${TOFU_VERSION}, built from the Go module proxy)"
  tofu="${XDG_CACHE_HOME:-$HOME/.cache}/prober-tools/tofu-${TOFU_VERSION}"
  if [ ! -x "$tofu" ]; then
    (cd "$(mktemp -d)" && GOFLAGS= go mod download "github.com/opentofu/opentofu@${TOFU_VERSION}")
    mkdir -p "$(dirname "$tofu")"
    (cd "$(go env GOMODCACHE)/github.com/opentofu/opentofu@${TOFU_VERSION}" &&
      GOFLAGS=-buildvcs=false GOWORK=off go build -trimpath -o "$tofu.tmp" ./cmd/tofu)
    mv "$tofu.tmp" "$tofu"
  fi
  TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$tofu" fmt -check -recursive -diff deploy/terraform
  export PROBER_TOFU_BIN="$tofu"
fi

# Jaeger all-in-one (v2) for e2e/tracing_test.go, built from the Go module
# proxy like OpenTofu above (its go.mod has replace directives too) and
# kept in ~/.cache/prober-tools. Cold, about 11 CPU-minutes (an hour of
# wall time on 2 cores shared with other builds); nothing warm.
JAEGER_VERSION="${JAEGER_VERSION:-v1.75.0}"
jaeger="${XDG_CACHE_HOME:-$HOME/.cache}/prober-tools/jaeger-${JAEGER_VERSION}"
if [ ! -x "$jaeger" ]; then
  echo "== building Jaeger ${JAEGER_VERSION} (from the Go module proxy, for the tracing e2e test)"
  (cd "$(mktemp -d)" && GOFLAGS= go mod download "github.com/jaegertracing/jaeger@${JAEGER_VERSION}")
  mkdir -p "$(dirname "$jaeger")"
  (cd "$(go env GOMODCACHE)/github.com/jaegertracing/jaeger@${JAEGER_VERSION}" &&
    GOFLAGS=-buildvcs=false GOWORK=off go build -trimpath -o "$jaeger.tmp" ./cmd/jaeger)
  mv "$jaeger.tmp" "$jaeger"
fi
export PROBER_JAEGER_BIN="$jaeger" PROBER_REQUIRE_JAEGER=1

echo "== go test -race (unit and e2e)"
go test -race -count=1 -timeout 20m ./...

# Budgets are counts of inputs (about 5-10 s each here), not durations: a
# duration races Go 1.26's fuzzing coordinator at its deadline and fails
# with a bare "context deadline exceeded" and no crasher under CPU
# contention (golang/go#75804, fixed in Go 1.27); a count has no deadline.
# FuzzRedactSinks runs a real flow over loopback and renders every sink per
# input (about 100 inputs/s on 2 busy cores), hence its smaller count.
echo "== fuzz (${FUZZTIME:-a count of inputs} per target)"
for target in \
  ./internal/config:FuzzLoad:20000x \
  ./internal/alert:FuzzOpenDB:2000x \
  ./internal/assert:FuzzCompile:150000x \
  ./internal/store:FuzzRunCodec:150000x \
  ./internal/store:FuzzHistorySnapshot:50000x \
  ./internal/assert:FuzzCheck:150000x \
  ./internal/assert:FuzzValue:150000x \
  ./internal/template:FuzzParse:150000x \
  ./internal/secret:FuzzRedactSinks:10000x; do
  IFS=: read -r pkg name count <<<"$target"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="${FUZZTIME:-$count}" "$pkg"
done

echo "== load harness (bounded: 300 flows of 4 steps every 5s, 20s measured, scraped and viewed every 5s)"
go run ./bench/load -q -flows 300 -steps 4 -every 5s -warmup 8s -duration 20s -segments 2 -scrape 5s -view 5s

echo "== benchmarks (one short pass)"
go test -run='^$' -bench=. -benchtime=1x ./... >/dev/null

echo "== all tests passed"
