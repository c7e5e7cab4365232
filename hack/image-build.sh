#!/usr/bin/env bash
# Container images without Docker: from the cargo release binaries (the workload's built with
# profile-guided optimisation by hack/pgo-build.sh) and the Go pause binary of hack/pause, into an
# OCI layout and an importable tarball, with crane (hack/node-build.sh).
#
# Each image holds one binary, the exact shared libraries `ldd` reports for it (glibc's loader,
# libc, libm, libgcc_s: the Rust binaries link glibc dynamically because the musl target cannot be
# installed here; copying the four files ldd names is the smallest correct set, and a glibc
# mismatch cannot happen since they come from the machine that linked the binary), and nothing
# else: no shell, no package manager, no /etc/passwd. It runs as the numeric user 65532.
#
# The version of every tag, the chart's appVersion and the operator's image default is the cargo
# workspace version (Cargo.toml [workspace.package] version): the one version source.
#
# Usage: hack/image-build.sh [pause] [mailagent] [mailagent-operator]   (default: all three)
# Writes OUT_DIR (default .cache/images)/<name>.tar (for `ctr images import`) and <name>.oci/
# (an OCI image layout); prints `<name>=<ref> <tarball>` per image on stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${IMAGE_OUT_DIR:-$root/.cache/images}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# release (default) or debug: a debug image is only for trying the flow while a release build runs.
profile="${IMAGE_PROFILE:-release}"
registry="${IMAGE_REGISTRY:-localhost}"
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")"
user=65532
eval "$("$root/hack/node-build.sh" crane)"
mkdir -p "$out_dir"
log() { echo "image-build: $*" >&2; }

# The pause binary: static Go, cached by the hash of its source.
pause_binary() {
  local cache="${MAILAGENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mailagent}"
  local key; key="$(cat "$root"/hack/pause/{main.go,go.mod} | sha256sum | cut -c1-12)"
  local bin="$cache/pause-$(go env GOVERSION)-$key/pause"
  if [[ ! -x "$bin" ]]; then
    mkdir -p "$(dirname "$bin")"
    (cd "$root/hack/pause" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.partial" .)
    mv "$bin.partial" "$bin"
  fi
  echo "$bin"
}

# layer.tar: the binary at /usr/local/bin/<name>, its shared libraries at their paths, /tmp, all
# owned by root and read-only to the user, with fixed timestamps (same input, same digest).
make_layer() { # tar binary name
  python3 - "$@" <<'EOF'
import os, subprocess, sys, tarfile
out, binary, name = sys.argv[1:4]
libs = []
ldd = subprocess.run(["ldd", binary], capture_output=True, text=True)
if "not a dynamic executable" not in ldd.stdout + ldd.stderr:
    for line in ldd.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            libs.append(path)
def add_dir(t, path, mode=0o755):
    info = tarfile.TarInfo(path.lstrip("/")); info.type = tarfile.DIRTYPE; info.mode = mode; t.addfile(info)
def add_file(t, src, dest, mode):
    info = tarfile.TarInfo(dest.lstrip("/")); info.size = os.path.getsize(src); info.mode = mode
    with open(os.path.realpath(src), "rb") as f: t.addfile(info, f)
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    dirs = {"/usr", "/usr/local", "/usr/local/bin"} | {os.path.dirname(l) for l in libs}
    for d in sorted(dirs | {p for d in dirs for p in [os.path.dirname(d)] if p != "/"}):
        add_dir(t, d)
    add_dir(t, "/tmp", 0o1777)
    add_file(t, binary, f"/usr/local/bin/{name}", 0o555)
    for lib in libs:
        add_file(t, lib, lib, 0o555)
print(" ".join(libs) or "static", file=sys.stderr)
EOF
}

build_image() { # name binary description
  local name="$1" binary="$2" description="$3"
  local ref="$registry/$name:$version" work; work="$(mktemp -d)"
  # Symbols are no use in the image (and a debug binary is ten times the size without them).
  strip -o "$work/$name" "$binary" 2>/dev/null || cp "$binary" "$work/$name"
  binary="$work/$name"
  log "$name: $(du -h "$binary" | cut -f1) binary, libraries: $(make_layer "$work/layer.tar" "$binary" "$name" 2>&1)"
  local port; port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  # crane writes an image config only through a registry: a throwaway one on loopback.
  "$CRANE" registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
  local reg_pid=$!
  trap "kill $reg_pid 2>/dev/null; rm -rf '$work'" RETURN
  for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local tmp_ref="127.0.0.1:$port/$name:$version"
  "$CRANE" append --oci-empty-base -f "$work/layer.tar" -t "$tmp_ref" >/dev/null 2>&1
  local labels=(
    "org.opencontainers.image.title=$name"
    "org.opencontainers.image.description=$description"
    "org.opencontainers.image.version=$version"
    "org.opencontainers.image.licenses=Apache-2.0"
    "org.opencontainers.image.source=https://example.invalid/mailagent"
    "org.opencontainers.image.revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
  )
  local mutate=(mutate "$tmp_ref" --set-platform linux/amd64 --user "$user:$user"
    --entrypoint "/usr/local/bin/$name" --workdir /)
  for l in "${labels[@]}"; do mutate+=(--label "$l" --annotation "$l"); done
  "$CRANE" "${mutate[@]}" -t "$ref" -o "$out_dir/$name.tar" >/dev/null 2>&1
  "$CRANE" push "$out_dir/$name.tar" "$tmp_ref" >/dev/null 2>&1
  rm -rf "$out_dir/$name.oci"
  "$CRANE" pull --format oci "$tmp_ref" "$out_dir/$name.oci" >/dev/null 2>&1
  echo "$name=$ref $out_dir/$name.tar"
}

images=("$@")
((${#images[@]})) || images=(pause mailagent mailagent-operator)
for image in "${images[@]}"; do
  case "$image" in
    mailagent | mailagent-operator) need_cargo=1 ;;
  esac
done
workload_binary="$target_dir/$profile/mailagent"
if [[ -n "${need_cargo:-}" && "$profile" == debug ]]; then
  log "cargo build (debug: operator and workload)"
  (cd "$root" && cargo build -q -p mailagent-operator -p mailagent-service --bin mailagent-operator --bin mailagent)
elif [[ -n "${need_cargo:-}" ]]; then
  # The release workload is built with profile-guided optimisation (hack/pgo-build.sh says why).
  for image in "${images[@]}"; do
    case "$image" in
      mailagent) log "hack/pgo-build.sh (the release workload)"; workload_binary="$("$root/hack/pgo-build.sh")" ;;
      mailagent-operator) log "cargo build --release (operator)"; (cd "$root" && cargo build -q --release -p mailagent-operator --bin mailagent-operator) ;;
    esac
  done
fi
for image in "${images[@]}"; do
  case "$image" in
    pause) build_image pause "$(pause_binary)" "Sandbox process of the local node's pods" ;;
    mailagent) build_image mailagent "$workload_binary" "Mail assistant workload: REST, A2A and MCP" ;;
    mailagent-operator) build_image mailagent-operator "$target_dir/$profile/mailagent-operator" "Operator for MailAgent and AuthPolicy" ;;
    *) log "unknown image $image"; exit 2 ;;
  esac
done
