#!/usr/bin/env bash
# Prints the commands `make run` hands out, one per line, each runnable as printed in order (an
# end-to-end test runs every line: hack/e2e/run-commands-test.sh). Usage: run-commands.sh RUN_DIR PORT BIN_DIR
set -euo pipefail
run_dir="$1" port="$2" bin="$3"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keys="$run_dir/keys" base="http://127.0.0.1:$port"
key="-H \"X-API-Key: \$(cat $keys/mail-admin)\""
json="-H 'content-type: application/json'"
mcp_init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
a2a_scan='{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"mail_scan"}]}}}'
execute="curl -s -o /dev/null -w '%{http_code}\\n' -X POST $json $key -d '{\"candidate\":\"none\"}' $base/v1/unsubscribe/execute"
cat <<MSG

mailagent runs on a local Kubernetes node. The operator minted the sample AuthPolicy's keys; its
clients' API keys are copied from their Secrets into $keys/ (mail-admin, digest-bot,
calendar-agent), and mailagent-token signs JWTs with the policy's Active key.
Try, in order:

export KUBECONFIG=$run_dir/cluster/kubeconfig
kubectl get nodes -o wide
kubectl get pods -A -o wide
kubectl -n mail wait mailagent/inbox --for=condition=Ready --timeout=60s
kubectl -n mail get deploy,svc,cm,pvc,networkpolicy,sa -l mailagent.dev/agent=inbox
curl -sf $base/healthz
curl -sf $base/.well-known/agent-card.json
curl -sf -X POST $json $key -d '{}' $base/v1/mail/scan
curl -sf -X POST $json $key -H 'A2A-Version: 1.0' -d '$a2a_scan' $base/a2a
curl -sf -X POST $json $key -H 'accept: application/json, text/event-stream' -d '$mcp_init' $base/mcp
$root/hack/smoke.sh $base $keys/mail-admin --mutations off
kubectl -n mail get authpolicy team-auth
TOKEN=\$($bin/mailagent-token --policy mail/team-auth --sub you@example.com --aud mailagent --ttl 15m --scope mail:scan)
curl -sf -X POST $json -H "Authorization: Bearer \$TOKEN" -d '{}' $base/v1/mail/scan
curl -sf -X POST $json -H "Authorization: Bearer \$TOKEN" -H 'A2A-Version: 1.0' -d '$a2a_scan' $base/a2a
curl -sf -X POST $json -H "Authorization: Bearer \$TOKEN" -H 'accept: application/json, text/event-stream' -d '$mcp_init' $base/mcp
$execute
kubectl -n mail patch mailagent/inbox --type merge -p '{"spec":{"mcp":{"enableMutationTools":true}}}'
for i in \$(seq 60); do [ "\$($execute)" != 403 ] && break; sleep 1; done; echo "mutation tools enabled in the running pod after \$i s"
kubectl -n mail patch mailagent/inbox --type merge -p '{"spec":{"mcp":{"enableMutationTools":false}}}'

hack/smoke.sh is the runbook's canary check (make smoke): health, the agent card, A2A SendMessage and
MCP tools/list through the port-forward, the mutation tools not listed while the switch is off.
The unsubscribe call answers 403 (mutations_disabled) until the switch is on; the pod is not restarted
(the kubelet refreshes the mounted ConfigMap within about 10 s here; see docs/local-node.md).
MSG
