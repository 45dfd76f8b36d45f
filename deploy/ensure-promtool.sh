#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit tester, for the tests of
# deploy/prometheus/) from the Prometheus Go module at the pinned version, once: the binary
# stays in .cache/deploy-tools/promtool-<version>/. Service discovery is left out
# (-tags remove_all_sd: promtool checks rules, not scrape configs), which halves the build.
#   deploy/ensure-promtool.sh VENV_BIN_DIR          build now (idempotent)
#   deploy/ensure-promtool.sh VENV_BIN_DIR --background
#                                                    start the build and return at once;
#                                                    the tests wait for it (.building)
set -euo pipefail
venv_bin=${1:?usage: ensure-promtool.sh VENV_BIN_DIR [--background]}
VERSION=v0.316.0
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.cache/deploy-tools/promtool-$VERSION"
binary="$target/promtool"
[ -x "$binary" ] && exit 0
go=$(command -v go || true)
[ -n "$go" ] || go="$venv_bin/go"
if [ ! -x "$go" ]; then
  # In the background, early: the Go of the machine only (the tests build it later with
  # the one make go installs).
  [ "${2:-}" = "--background" ] && exit 0
  echo "ensure-promtool.sh: no Go (make go installs one)" >&2; exit 1
fi
mkdir -p "$target"
build() {
  cd "$target"
  GOBIN="$target" CGO_ENABLED=0 nice -n 10 "$go" install -tags remove_all_sd \
    "github.com/prometheus/prometheus/cmd/promtool@$VERSION" >"$target/build.log" 2>&1
  # Warms Go's caches for the deployment tests' own checker too (they build it themselves,
  # then in a moment).
  (cd "$root/deploy/tools/deploycheck" && nice -n 10 "$go" build -o /dev/null .) \
    >>"$target/build.log" 2>&1 || true
}
if [ "${2:-}" = "--background" ]; then
  [ -e "$target/.building" ] && kill -0 "$(cat "$target/.building")" 2>/dev/null && exit 0
  ( build; rm -f "$target/.building" ) </dev/null >/dev/null 2>&1 &
  echo $! >"$target/.building"
else
  build
fi
