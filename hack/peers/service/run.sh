#!/usr/bin/env bash
# Interop tests of the mailagent workload against peers nobody here wrote: the official MCP
# Python SDK and the A2A Python SDK. Installs pinned versions into the user cache (reused),
# builds the binary, starts it on free loopback ports per auth mode, runs pytest, and exits
# non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mailagent"
venv="$cache/peers-venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "installing peers into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

cargo build --quiet -p mailagent-service --manifest-path "$repo/Cargo.toml"
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

export MAILAGENT_BIN="$target_dir/debug/mailagent"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/tests" "$@"
