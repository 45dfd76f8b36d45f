#!/usr/bin/env bash
# Makes sure the system tools the embedded set-up needs are present: a Java 17+ runtime
# (Kafka 4 runs on nothing older) and Maven (fetches the broker's jars once).
#   --browser  also Debian's Chromium for the browser tests (Playwright drives
#              /usr/bin/chromium; it never downloads a browser of its own)
#   --tests    also what the suite needs beyond that: libfaketime (the suite runs once
#              more under a clock moved a year ahead and a year back), and Rust 1.85+ (the
#              suite checks the PII rules' native path was built)
# Installs what is missing with apt-get when allowed (root); otherwise says what to
# install. Idempotent: with everything present it installs and prints nothing.
set -euo pipefail

# The major version of the Java runtime $1 (0 when it does not run).
java_major() {
  local version
  version=$("$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}') || true
  case "$version" in
    "") echo 0 ;;
    1.*) version=${version#1.}; echo "${version%%.*}" ;;  # 1.8.0_402 is Java 8
    *) echo "${version%%[.+-]*}" ;;
  esac
}

if [ -n "${JAVA_HOME:-}" ]; then
  major=$(java_major "$JAVA_HOME/bin/java")
  if [ "$major" -lt 17 ]; then
    echo "JAVA_HOME=$JAVA_HOME is Java $major; the Kafka broker needs Java 17+:" >&2
    echo "point JAVA_HOME at a Java 17+ runtime, or unset it." >&2
    exit 1
  fi
fi

# Rust 1.85+ builds the PII rules' native path (connectors/pii_native) when the package is
# installed; without it the rules run in Python at several times the cost. Debian's rustc is
# older: rustup (https://rustup.rs) installs a current one, in ~/.cargo/bin.
rust_ok() {
  local version
  version=$(PATH="$HOME/.cargo/bin:$PATH" cargo --version 2>/dev/null | awk '{print $2}')
  [ -n "$version" ] && printf '%s\n' 1.85.0 "$version" | sort -V -C
}
rust_needed=0

missing=()
java_on_path=0
if [ -z "${JAVA_HOME:-}" ]; then
  command -v java >/dev/null 2>&1 && java_on_path=$(java_major "$(command -v java)")
  [ "$java_on_path" -ge 17 ] || missing+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
for option in "$@"; do
  case "$option" in
    --browser) [ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core) ;;
    --tests)
      rust_needed=1
      command -v faketime >/dev/null 2>&1 || missing+=(faketime)
      command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev) ;;
    *) echo "ensure-system.sh: unknown option $option" >&2; exit 2 ;;
  esac
done
if ! rust_ok; then
  if [ "$rust_needed" = 1 ]; then
    echo "the test suite needs Rust 1.85+ (cargo) to build the PII rules' native path:" >&2
    echo "install it with rustup (https://rustup.rs), then rm .venv/.installed and rerun." >&2
    exit 1
  fi
  echo "note: no Rust 1.85+ (cargo): the PII rules will run without their native path" >&2
  echo "(several times the cost); rustup (https://rustup.rs) installs it." >&2
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "authtrail needs: ${missing[*]} (Java 17+ and Maven run the local Kafka broker;" >&2
  echo "Chromium runs the browser tests, faketime the shifted-clock run). Install them as" >&2
  echo "root, or set AUTHTRAIL_KAFKA_BOOTSTRAP to use an existing Kafka cluster." >&2
  exit 1
fi

# An older Java that stays first on PATH (alternatives set by hand) would still be used.
if [ -z "${JAVA_HOME:-}" ] && [ "$(java_major "$(command -v java)")" -lt 17 ]; then
  echo "java on PATH is still Java $(java_major "$(command -v java)") after installing Java 17;" >&2
  echo "set JAVA_HOME to it (e.g. /usr/lib/jvm/java-17-openjdk-amd64) or run" >&2
  echo "update-alternatives --config java." >&2
  exit 1
fi
