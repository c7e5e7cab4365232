#!/usr/bin/env bash
# Runs `make run` on the node (hack/run-node.sh) in a temporary RUN_DIR on a free port, waits for
# the commands it prints, runs every one of them as printed, in order, in one shell (the first
# failure fails the test), then stops `make run` and checks that the node left nothing on the host.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run_dir="$(mktemp -d /tmp/mailagent-run-test-XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
start=$SECONDS
RUN_DIR="$run_dir" MAILAGENT_PORT="$port" "$root/hack/run-node.sh" >"$run_dir/make-run.out" 2>&1 &
run_pid=$!
stop() {
  kill -TERM "$run_pid" 2>/dev/null || true
  wait "$run_pid" 2>/dev/null || true
}
trap stop EXIT

until grep -q '^Logs:' "$run_dir/make-run.out" 2>/dev/null; do
  if ! kill -0 "$run_pid" 2>/dev/null; then cat "$run_dir/make-run.out"; echo "FAIL: make run exited"; exit 1; fi
  (( SECONDS - start < 2400 )) || { cat "$run_dir/make-run.out"; echo "FAIL: make run did not get ready"; exit 1; }
  sleep 1
done
echo "make run ready after $((SECONDS - start))s"
# The commands: the lines after "Try, in order:" up to the next blank line.
awk '/^Try, in order:/{on=1; next} on && /^$/{if (seen) exit; next} on {seen=1; print}' "$run_dir/commands.txt" >"$run_dir/commands.sh"
echo "running $(wc -l <"$run_dir/commands.sh") printed commands"
if ! (cd /tmp && bash -euo pipefail -x "$run_dir/commands.sh") >"$run_dir/commands.out" 2>&1; then
  cat "$run_dir/commands.out"; echo "FAIL: a printed command failed"; exit 1
fi
grep -q '^mutation tools enabled in the running pod after' "$run_dir/commands.out" || { cat "$run_dir/commands.out"; echo "FAIL: switch"; exit 1; }
grep 'mutation tools enabled' "$run_dir/commands.out"
stop
trap - EXIT
left="$run_dir/cluster/host-leftovers"
[[ -f "$left" && ! -s "$left" ]] || { cat "$left" 2>/dev/null; echo "FAIL: the node left something on the host"; exit 1; }
echo "PASS: every printed command worked; make run stopped cleanly ($((SECONDS - start))s)"
rm -rf --one-file-system "$run_dir"
