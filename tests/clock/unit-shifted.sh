#!/usr/bin/env bash
# The unit tests under a wall clock a year ahead and a year back (shifted-clock.sh), as two
# runs side by side with their own temporary directories: `start` launches them in the
# background and returns; `wait` waits for both, prints their summaries, and fails (with
# their output) when either failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root="$here/../.."
dir="$root/.cache/clock"
pytest="$root/.venv/bin/pytest"
case "${1:?usage: unit-shifted.sh start|wait}" in
  start)
    mkdir -p "$dir"
    "$here/shifted-clock.sh" +0d true  # builds the clock shim once, before both use it
    for run in ahead:+365d behind:-365d; do
      name=${run%%:*} offset=${run#*:}
      rm -f "$dir/$name.rc"
      ( cd "$root" && set +e
        nice -n 10 "$here/shifted-clock.sh" "$offset" "$pytest" tests/unit -p no:cacheprovider -q \
          --basetemp="$dir/$name" >"$dir/$name.log" 2>&1
        echo $? >"$dir/$name.rc" ) </dev/null >/dev/null 2>&1 &
    done
    ;;
  wait)
    while [ ! -e "$dir/ahead.rc" ] || [ ! -e "$dir/behind.rc" ]; do sleep 1; done
    a=$(cat "$dir/ahead.rc") b=$(cat "$dir/behind.rc")
    echo "unit tests a year ahead (exit $a):"; tail -3 "$dir/ahead.log"
    echo "unit tests a year back (exit $b):"; tail -3 "$dir/behind.log"
    if [ "$a" -ne 0 ] || [ "$b" -ne 0 ]; then
      tail -150 "$dir/ahead.log" "$dir/behind.log"
      exit 1
    fi
    ;;
esac
