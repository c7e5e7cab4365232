#!/usr/bin/env bash
# Interop tests of the mailagent workload against peers nobody here wrote: the official MCP
# Python SDK and the A2A Python SDK. Installs pinned versions into the user cache (reused),
# builds the binary, starts it on free loopback ports per auth mode, runs pytest, and exits
# non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
python="$("$here/venv.sh")"

cargo build --quiet -p mailagent-service --manifest-path "$repo/Cargo.toml"
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

export MAILAGENT_BIN="$target_dir/debug/mailagent"
exec "$python" -m pytest -q -p no:cacheprovider "$here/tests" "$@"
