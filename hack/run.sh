#!/usr/bin/env bash
# `make run`: the whole product on one machine, on embedded defaults.
# On a machine that can run a Kubernetes node (root, cgroups, overlayfs) this is hack/run-node.sh:
# the operator and the workload as pods on a local node (docs/local-node.md). Elsewhere, or with
# MAILAGENT_RUN_MODE=host, it runs the host-process mode below (saying why, when it had to):
#   1. a local control plane (kube-apiserver built from the Go module proxy, etcd from a crate);
#   2. the CRDs and the operator (in the foreground of this script's process group);
#   3. the sample AuthPolicy and MailAgent from hack/samples/;
#   4. the workload on the sample Maildir, configured from the ConfigMap the operator rendered, with
#      the keyring the operator minted (copied from its Secret every 2 s, as a kubelet would sync it).
# Ctrl-C stops everything. Logs go to .cache/run/*.log.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${RUN_DIR:-$root/.cache/run}"
listen="${MAILAGENT_LISTEN:-127.0.0.1:8080}"
mkdir -p "$run_dir"
cd "$root"

if [[ "${MAILAGENT_RUN_MODE:-node}" == node ]]; then
  cargo build -q -p mailagent-tests --bin mailagent-control-plane
  if reason="$("${CARGO_TARGET_DIR:-$root/target}/debug/mailagent-control-plane" can-run-node)"; then
    exec hack/run-node.sh
  fi
  echo "This machine cannot run a local Kubernetes node: $reason."
  echo "Falling back to host-process mode: the workload runs as a process from a copy of its ConfigMap,"
  echo "so changes to the MailAgent (the incident switch) do not reach it. See docs/local-node.md."
elif [[ "$MAILAGENT_RUN_MODE" != host ]]; then
  echo "MAILAGENT_RUN_MODE is node (the default) or host, not $MAILAGENT_RUN_MODE" >&2
  exit 2
fi

pids=()
cleanup() {
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "==> building (first run: a few minutes)"
hack/control-plane-build.sh >/dev/null
cargo build -q -p mailagent-operator -p mailagent-service -p mailagent-tests --bins
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

echo "==> starting the local control plane"
rm -f "$run_dir/kubeconfig"
"$bin/mailagent-control-plane" up --dir "$run_dir" >"$run_dir/control-plane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [[ -s "$run_dir/kubeconfig" ]] && break; sleep 0.5; done
[[ -s "$run_dir/kubeconfig" ]] || { tail -20 "$run_dir/control-plane.log"; echo "control plane did not start"; exit 1; }
export KUBECONFIG="$run_dir/kubeconfig"
kubectl() { command kubectl --warnings-as-errors=false "$@" 2>&1 | grep -v 'version difference' || true; }

echo "==> installing CRDs"
kubectl apply --server-side -f crds/yaml/ >/dev/null
command kubectl wait --for=condition=Established crd/mailagents.mailagent.dev crd/authpolicies.mailagent.dev --timeout=60s >/dev/null 2>&1

echo "==> starting the operator (metrics on 127.0.0.1:8081)"
"$bin/mailagent-operator" --leader-election=false --metrics-addr 127.0.0.1:8081 >"$run_dir/operator.log" 2>&1 &
pids+=($!)

echo "==> applying hack/samples/"
kubectl apply --server-side -f hack/samples/ >/dev/null
# The operator minted the sample policy's keys: the clients' API keys go to files readable only by
# you (never printed), and the keyring follows its Secret, so rotation and revoke reach the process.
keys="$run_dir/keys" keyring="$run_dir/keyring"
rm -rf "$keys" "$keyring"; mkdir -p "$keyring"; chmod 700 "$keyring"
hack/client-keys.sh mail team-auth "$keys"
sync_keyring() {
  local tmp="$keyring/.keyring.json.tmp"
  (umask 077; command kubectl -n mail get secret team-auth-keyring -o jsonpath='{.data.keyring\.json}' | base64 -d >"$tmp") \
    && [[ -s "$tmp" ]] && mv -f "$tmp" "$keyring/keyring.json"
}
sync_keyring
(while sleep 2; do sync_keyring 2>/dev/null || true; done) &
pids+=($!)
# The settings rendered once the policy is known (its scope ceiling is in them).
for _ in $(seq 1 120); do
  [[ -n "$(command kubectl -n mail get configmap inbox-config -o jsonpath='{.data.AUTH_SCOPES_CEILING}' 2>/dev/null)" ]] && break
  sleep 0.5
done

echo "==> starting the workload on the sample mailbox ($listen)"
config_dir="$run_dir/config"; rm -rf "$config_dir"; mkdir -p "$config_dir" "$run_dir/state"
# The settings the operator rendered, as files named after the runbooks' env vars.
command kubectl -n mail get configmap inbox-config -o json | python3 -c '
import json, os, sys
data = json.load(sys.stdin)["data"]
for k, v in data.items():
    open(os.path.join(sys.argv[1], k), "w").write(v)
' "$config_dir"
# Paths and host names in the ConfigMap are the pod's; on this machine they come from below.
rm -f "$config_dir/MAILDIR_PATH" "$config_dir/MCP_ALLOWED_HOSTS"
MAILAGENT_CONFIG_DIR="$config_dir" \
MAILAGENT_STATE_DIR="$run_dir/state" \
MAILDIR_PATH="$root/mail/testdata/maildir" \
MAILDIR_AUTHSERV_ID="${MAILDIR_AUTHSERV_ID:-mx.google.com}" \
MAILAGENT_LISTEN="$listen" \
MCP_ALLOWED_HOSTS="${listen%:*}" \
MAILAGENT_KEYRING_DIR="$keyring" \
"$bin/mailagent" >"$run_dir/mailagent.log" 2>&1 &
pids+=($!)
sleep 2

cat <<MSG

mailagent is running.

  export KUBECONFIG=$run_dir/kubeconfig
  kubectl get mailagents,authpolicies -A          # the resources
  kubectl -n mail get deploy,svc,cm,pvc,networkpolicy,sa -l mailagent.dev/agent=inbox
  kubectl -n mail get mailagent inbox -o jsonpath='{.status.conditions}'
  curl -s 127.0.0.1:8081/metrics | grep mailagent_operator   # operator metrics

  curl -s http://$listen/health
  curl -s http://$listen/.well-known/agent-card.json
  curl -s -X POST -H 'content-type: application/json' -H "X-API-Key: \$(cat $keys/mail-admin)" -d '{}' http://$listen/v1/mail/scan
  TOKEN=\$($bin/mailagent-token --policy mail/team-auth --sub you@example.com --aud mailagent --ttl 15m --scope mail:scan)
  curl -s -X POST -H 'content-type: application/json' -H "Authorization: Bearer \$TOKEN" -d '{}' http://$listen/v1/mail/scan
  kubectl -n mail get authpolicy team-auth       # keys, current kid, next rotation
  curl -s http://$listen/openapi.json | head -c 300
  Flip the incident switch:  kubectl -n mail patch mailagent inbox --type merge -p '{"spec":{"mcp":{"enableMutationTools":true}}}'

Logs: $run_dir/*.log. Ctrl-C stops everything.
MSG
wait
