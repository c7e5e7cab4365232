#!/usr/bin/env bash
# Gmail scan cost on a 10,000-message mailbox in the Google API emulator: calls and quota units per
# message (full scan), units of an incremental scan after 100 new messages, wall time against the
# quota-bound minimum. Run by `make bench`; BENCH_MESSAGES=N changes the mailbox size.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

work=$(mktemp -d)
cleanup() {
  emulator_stop
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

bin=$(emulator_install "$here")
(cd "$root" && cargo test --release -p mailagent-mail --test emulator_bench --no-run --quiet)
emulator_start "$bin" "$work"
if ! (cd "$root" && MAILAGENT_EMULATOR_URL="$EMULATOR_URL" timeout 1500 cargo test --release -p mailagent-mail --test emulator_bench -- --ignored --nocapture); then
  emulator_log "bench FAILED; the emulator's log:"
  tail -n 50 "$work/emulator.log" | sed 's/^/    /' >&2
  exit 1
fi
