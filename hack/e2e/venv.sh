#!/usr/bin/env bash
# Prints the Python of the peers venv (the MCP and A2A SDKs pinned in hack/peers/service), making it
# once per machine the way hack/peers/service/run.sh does.
set -euo pipefail
req="$(cd "$(dirname "${BASH_SOURCE[0]}")/../peers/service" && pwd)/requirements.txt"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/mailagent/peers-venv"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
  echo "installing peers into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" >"$venv/.requirements.sha256"
fi
echo "$venv/bin/python"
