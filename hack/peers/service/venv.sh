#!/usr/bin/env bash
# Installs the pinned Python peers (requirements.txt beside this file: the MCP and A2A Python SDKs,
# pytest, schemathesis) into a venv in the user cache, reused while requirements.txt is unchanged,
# and prints the venv's python. Used by run.sh (interop tests) and `make bench` (the MCP Python SDK
# server the bench compares against).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mailagent"
venv="$cache/peers-venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "installing peers into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
