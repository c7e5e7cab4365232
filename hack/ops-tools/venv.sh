#!/usr/bin/env bash
# Prints the path of a Python venv holding hack/ops-tools/requirements.txt, pinned, installed once
# per machine under the user cache (the way hack/peers/service/run.sh installs its peers) and
# reinstalled when the requirements change. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${MAILAGENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mailagent}"
venv="$cache/ops-venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "ops-tools: installing $(grep -v '^#' "$here/requirements.txt" | xargs) into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" >"$stamp"
fi
echo "$venv"
