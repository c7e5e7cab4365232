#!/usr/bin/env bash
# The AuthPolicy walk-through of docs/authpolicy.md, run against `make run` in its node mode
# (a real node: the rotation CronJob's Jobs run as pods). Prints each command and its output, as a
# new user would see them. Usage: authpolicy-transcript.sh RUN_DIR PORT
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run_dir="$1" port="$2"
export KUBECONFIG="$run_dir/cluster/kubeconfig"
token_cli="${CARGO_TARGET_DIR:-$root/target}/debug/mailagent-token"
base="http://127.0.0.1:$port"
show() { echo "\$ $*"; "$@" 2>&1 | grep -v 'version difference' || true; echo; }
call() { # door, curl arguments...
  local door="$1"; shift
  echo "\$ curl ... $door"; curl -s -o /dev/null -w "%{http_code}\n" "$@" || true; echo
}
# A changed jwt.maxTokenLifetime restarts the agent's pod (it is not a live setting), and make run's
# port-forward follows the Service to the new pod after a moment.
wait_for_agent() {
  kubectl -n mail wait mailagent/inbox --for=condition=Ready --timeout=180s >/dev/null 2>&1 || true
  for _ in $(seq 60); do curl -sf "$base/healthz" >/dev/null && return; sleep 1; done
}
cd "$root"
show kubectl apply -f docs/examples/authpolicy-fast-rotation.yaml
echo "\$ kubectl -n mail get ap -w   # six minutes"
timeout 360 kubectl -n mail get ap -w 2>&1 | grep -v 'version difference' || true
echo
show kubectl -n mail get jobs -l mailagent.dev/policy=team-auth
kid=$(kubectl -n mail get secret team-auth-client-mail-admin -o jsonpath='{.data.kid}' | base64 -d)
show kubectl -n mail patch ap team-auth --type merge -p "{\"spec\":{\"revocation\":{\"kids\":[\"$kid\"],\"reason\":\"key pasted in a ticket\"}}}"
show kubectl -n mail get ap team-auth
show kubectl -n mail get ap team-auth -o jsonpath='{range .status.keys[*]}{.kid}{"\t"}{.purpose}{"\t"}{.state}{"\t"}{.fingerprint}{"\n"}{end}'
wait_for_agent
echo "\$ TOKEN=\$(mailagent-token --policy mail/team-auth --sub you@example.com --aud mailagent --ttl 1m --scope mail:scan)"
TOKEN=$("$token_cli" --policy mail/team-auth --sub you@example.com --aud mailagent --ttl 1m --scope mail:scan)
echo
json='content-type: application/json'
call "REST /v1/mail/scan" -X POST -H "$json" -H "Authorization: Bearer $TOKEN" -d '{}' "$base/v1/mail/scan"
call "A2A SendMessage mail_scan" -X POST -H "$json" -H "Authorization: Bearer $TOKEN" -H 'A2A-Version: 1.0' \
  -d '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"mail_scan"}]}}}' "$base/a2a"
call "MCP initialize" -X POST -H "$json" -H "Authorization: Bearer $TOKEN" -H 'accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' "$base/mcp"
echo "\$ mailagent-token ... --ttl 2h   # longer than the policy allows"
"$token_cli" --policy mail/team-auth --sub you@example.com --aud mailagent --ttl 2h --scope mail:scan 2>&1 || true
