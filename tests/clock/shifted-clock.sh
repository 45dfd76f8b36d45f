#!/usr/bin/env bash
# Runs a command with the wall clock of every process it starts (children, the Kafka
# broker's JVM, chDB inside Python) moved by an offset, while monotonic clocks stay real:
#   tests/clock/shifted-clock.sh +365d .venv/bin/pytest tests/unit
# libfaketime does the shifting (ensure-system.sh --tests installs it); timed_waits.c,
# built here once with cc, mends the timed waits it gets wrong (see there).
set -euo pipefail
offset=${1:?usage: shifted-clock.sh OFFSET COMMAND...}
shift
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../../.cache/clock"
libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$libfaketime" ] || { echo "shifted-clock.sh: libfaketime is not installed" >&2; exit 1; }
mkdir -p "$cache"
shim="$cache/timed_waits.so"
if [ ! -e "$shim" ] || [ "$here/timed_waits.c" -nt "$shim" ]; then
  cc -shared -fPIC -O2 -o "$shim.tmp" "$here/timed_waits.c" -ldl
  mv "$shim.tmp" "$shim"
fi
export LD_PRELOAD="$shim:$libfaketime${LD_PRELOAD:+:$LD_PRELOAD}"
export FAKETIME="$offset" FAKETIME_DONT_FAKE_MONOTONIC=1
exec "$@"
