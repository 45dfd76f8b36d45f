#!/usr/bin/env bash
# Makes sure the system tools the embedded set-up needs are present: a Java 17+ runtime
# (runs the Kafka broker) and Maven (fetches its jars once). Installs them with apt-get
# when missing and allowed (root); otherwise says what to install. Idempotent.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ -n "${AUTHTRAIL_KAFKA_BOOTSTRAP:-}" ] && [[ " ${missing[*]} " != *" maven "* ]]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (for the local Kafka broker) ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "authtrail needs: ${missing[*]} (Java 17+ and Maven run the local Kafka broker)." >&2
  echo "Install them, or set AUTHTRAIL_KAFKA_BOOTSTRAP to use an existing Kafka cluster." >&2
  exit 1
fi
