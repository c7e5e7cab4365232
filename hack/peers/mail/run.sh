#!/usr/bin/env bash
# Interop tests of the Gmail and Calendar providers against the Google API emulator
# (@inbox-zero/emulate, pinned here): scan, triage, incremental scan, expired history, unsubscribe
# discovery and mailto send, digest send, free/busy, token refresh, and the shared provider suite.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

work=$(mktemp -d)
cleanup() {
  local status=$?
  if [ -n "${WORKLOAD_PID:-}" ]; then kill "$WORKLOAD_PID" 2>/dev/null || true; fi
  if [ "$status" -ne 0 ] && [ -s "$work/workload.log" ]; then
    emulator_log "FAILED; the workload's log:"
    tail -n 30 "$work/workload.log" | sed 's/^/    /' >&2 || true
  fi
  emulator_stop
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

started=$(date +%s)
bin=$(emulator_install "$here")
emulator_start "$bin" "$work"
emulator_log "running the Rust emulator tests"
if ! (cd "$root" && MAILAGENT_EMULATOR_URL="$EMULATOR_URL" timeout 900 cargo test -p mailagent-mail --test emulator -- --ignored --test-threads=4); then
  emulator_log "FAILED; the emulator's log:"
  tail -n 50 "$work/emulator.log" | sed 's/^/    /' >&2
  exit 1
fi
emulator_log "the workload binary against the emulator"
# Called plainly (not in an `if`) so `set -e` stops at the first failing step inside it.
workload_smoke "$root" "$work"
emulator_log "passed in $(($(date +%s) - started)) s"
