#!/usr/bin/env bash
# Policy scans, offline: trivy's Kubernetes PSS-restricted compliance report (17 controls) and
# checkov's Kubernetes checks, on
#   - the chart as installed (default values) and with every optional object on, and
#   - every object the operator renders for hack/samples/ and hack/policy-scan/fixtures.yaml
#     (operator/examples/render.rs: the controllers' own pure builders).
# trivy must pass 17/17; checkov findings must each be waived with a reason in
# hack/policy-scan/waivers.yaml and listed in docs/policy-scans.md (hack/policy-scan/check.py).
# Tools are pinned in hack/ops-tools/requirements.txt. Writes reports under .cache/policy-scan/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
here="$root/hack/policy-scan"
out="${POLICY_SCAN_OUT:-$root/.cache/policy-scan}"
venv="$("$root/hack/ops-tools/venv.sh")"
eval "$("$root/hack/node-build.sh" helm)"
rm -rf "$out" && mkdir -p "$out/chart" "$out/operator"
start=$SECONDS

"$HELM" template mailagent-operator "$root/charts/mailagent-operator" --namespace mailagent-system \
  >"$out/chart/default.yaml"
"$HELM" template mailagent-operator "$root/charts/mailagent-operator" --namespace mailagent-system \
  --set monitoring.serviceMonitor.enabled=true,monitoring.workloadPodMonitor.enabled=true \
  --set monitoring.prometheusRule.enabled=true,monitoring.grafanaDashboard.enabled=true \
  --set-json 'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]' \
  >"$out/chart/all-on.yaml"
(cd "$root" && cargo run -q -p mailagent-operator --example render -- \
  hack/samples/*.yaml hack/samples/oauth/*.yaml hack/policy-scan/fixtures.yaml) >"$out/operator/rendered.yaml"
echo "policy-scan: $(grep -c '^kind:' "$out/chart/all-on.yaml") chart objects, $(grep -c '^kind:' "$out/operator/rendered.yaml") operator objects"

mkdir -p "$out/canary" && cp "$here/canary.yaml" "$out/canary/"
trivy() { # target
  "$venv/bin/trivy" config --quiet --skip-check-update --compliance k8s-pss-restricted-0.1 \
    --format json --output "$out/trivy-$1.json" "$out/$1"
}
checkov() { # target (checkov exits 1 on any failed check; check.py decides what counts)
  local files=("$out/$1"/*.yaml)
  "$venv/bin/checkov" --skip-download --quiet --framework kubernetes --output json \
    "${files[@]/#/--file=}" >"$out/checkov-$1.json" || true
}

# The canary must fail both, or the scanners are not looking.
trivy canary
checkov canary
if "$venv/bin/python" "$here/check.py" trivy "$out/trivy-canary.json" canary >/dev/null ||
  ! grep -q '"check_id"' "$out/checkov-canary.json"; then
  echo "policy-scan: the canary passed a scanner; the scan is not working"; exit 1
fi

status=0
for target in chart operator; do
  trivy "$target"
  "$venv/bin/python" "$here/check.py" trivy "$out/trivy-$target.json" "$target" || status=1
  checkov "$target"
  "$venv/bin/python" "$here/check.py" checkov "$out/checkov-$target.json" "$target" \
    "$here/waivers.yaml" "$root/docs/policy-scans.md" || status=1
done
echo "policy-scan: $((SECONDS - start))s"
exit $status
