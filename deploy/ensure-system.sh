#!/usr/bin/env bash
# Makes sure the system tools the embedded set-up needs are present: a Java 17+ runtime
# (runs the Kafka broker) and Maven (fetches its jars once); with `--browser`, also
# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own). Installs what is missing with apt-get when allowed
# (root); otherwise says what to install. Idempotent.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium fonts-dejavu-core)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "authtrail needs: ${missing[*]} (Java 17+ and Maven run the local Kafka broker;" >&2
  echo "Chromium runs the browser tests). Install them as root, or set" >&2
  echo "AUTHTRAIL_KAFKA_BOOTSTRAP to use an existing Kafka cluster." >&2
  exit 1
fi
