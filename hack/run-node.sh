#!/usr/bin/env bash
# `make run` on a real local node (hack/run.sh calls this when the machine can run one):
#   1. the node's parts (hack/node-build.sh) and the images (hack/image-build.sh), once per machine;
#   2. kube-apiserver, etcd, kube-controller-manager, kube-scheduler, containerd and the kubelet
#      (`mailagent-control-plane up --node`), the images imported into containerd;
#   3. the operator installed from charts/mailagent-operator with helm, running as a pod;
#   4. hack/samples/ applied; the sample MailAgent's pod serves the sample Maildir from its volume;
#   5. a port-forward to the agent's Service on 127.0.0.1, and the commands to try.
# Ctrl-C stops everything and removes what the node left on the host. Logs: $RUN_DIR/*.log.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${RUN_DIR:-$root/.cache/run}"
port="${MAILAGENT_PORT:-8080}"
cluster="$run_dir/cluster"
keys="$run_dir/keys"
mkdir -p "$run_dir"
cd "$root"

pids=()
cleanup() {
  echo; echo "stopping (the node removes its pods, mounts, namespaces and iptables rules)..."
  # The port-forward loop first, then the kubectl it runs (by their ids), then the plane and node.
  for pid in "${pids[@]}"; do
    kids="$(pgrep -P "$pid" || true)"
    kill "$pid" 2>/dev/null || true
    [[ -z "$kids" ]] || kill $kids 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
step() { echo "==> $* ($((SECONDS))s)"; }

step "building the node's parts (first run on a machine: about 15 minutes)"
eval "$(hack/node-build.sh)"
cargo build -q -p mailagent-tests --bin mailagent-control-plane -p mailagent-operator --bin mailagent-token
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

step "building the images (cargo release builds, the workload profile-guided: hack/pgo-build.sh; crane)"
hack/image-build.sh mailagent mailagent-operator >"$run_dir/images.txt"

step "starting the control plane and the node"
rm -rf --one-file-system "$cluster"
mkdir -p "$cluster"
"$bin/mailagent-control-plane" up --dir "$cluster" --node >"$run_dir/control-plane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
  [[ -s "$cluster/node.env" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -30 "$run_dir/control-plane.log"; echo "the node did not start"; exit 1; }
  sleep 0.5
done
[[ -s "$cluster/node.env" ]] || { tail -30 "$run_dir/control-plane.log"; echo "the node did not start"; exit 1; }
# shellcheck disable=SC1091
source "$cluster/node.env"
export KUBECONFIG="$cluster/kubeconfig"
kubectl() { command kubectl --warnings-as-errors=false "$@"; }

step "importing the images into the node's containerd"
while read -r _ _ tarball; do
  "$CTR" --address "$CONTAINERD_ADDRESS" -n k8s.io images import "$tarball" >/dev/null
done < <(tr '=' ' ' <"$run_dir/images.txt")

step "seeding the node's volumes with the sample Maildir"
for pv in "$NODE_VOLUMES"/pv-*; do
  mkdir -p "$pv/Maildir" && cp -a mail/testdata/maildir/. "$pv/Maildir/" && chown -R 65532:65532 "$pv"
done

step "installing the operator with helm"
kubectl create namespace mailagent-system >/dev/null
kubectl label namespace mailagent-system pod-security.kubernetes.io/enforce=restricted >/dev/null
"$HELM" install mailagent-operator charts/mailagent-operator -n mailagent-system --wait --timeout 180s >/dev/null

step "applying hack/samples/"
kubectl apply -f hack/samples/00-namespace.yaml -f hack/samples/10-authpolicy.yaml >/dev/null
# The operator mints the policy's keys; the sample clients' API keys go to $keys, never printed.
rm -rf "$keys"
hack/client-keys.sh mail team-auth "$keys"
kubectl apply -f hack/samples/20-mailagent.yaml >/dev/null
kubectl -n mail wait mailagent/inbox --for=condition=Ready --timeout=300s >/dev/null

step "forwarding 127.0.0.1:$port to the agent's Service"
# kubectl port-forward follows one pod and exits when it goes (a rollout after a setting that is not
# live); the loop starts it again on the Service's new pod. `|| true`: under `set -e` the exit
# would end the loop itself.
(while true; do command kubectl -n mail port-forward svc/inbox-rest "$port:8080" >>"$run_dir/port-forward.log" 2>&1 || true; sleep 1; done) &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

hack/run-commands.sh "$run_dir" "$port" "$bin" | tee "$run_dir/commands.txt"
echo "Logs: $run_dir/*.log, $cluster/*.log, $cluster/node/*.log. Ctrl-C stops everything."
wait
