#!/usr/bin/env bash
# What a local node leaves on the host outside its run directory, recorded before it starts and
# removed after it stops, so nothing outlives a run (even a failed or killed one):
#   - processes: containerd shims (found by their -address under RUN_DIR) and every process left in
#     the node's `kubepods` cgroups;
#   - network namespaces (/run/netns/cni-*), links (the bridge, veths), iptables/ip6tables rules and
#     chains (kubelet's KUBE-FIREWALL, the CNI bridge/portmap CNI-* chains, our Service DNAT);
#   - mounts under RUN_DIR (kubelet bind-mounts its --root-dir onto itself; Secret tmpfs; shm) and
#     any new mount elsewhere;
#   - kubepods cgroups in every v1 hierarchy; files the components write to fixed paths
#     (/var/log/containers, /var/log/pods, /var/lib/cni, /var/lib/kubelet, /run/containerd).
#
# Usage: hack/node-host.sh snapshot RUN_DIR   (before the node starts; writes RUN_DIR/host-before/)
#        hack/node-host.sh cleanup RUN_DIR    (after it stops; idempotent; writes RUN_DIR/host-cleaned)
# Removes only what appeared after the snapshot, so a host's own rules, links and mounts stay.
set -uo pipefail

cmd="${1:?snapshot|cleanup}"
run_dir="$(realpath -m "${2:?RUN_DIR}")"
before="$run_dir/host-before"
# Fixed paths some component writes outside any configurable directory.
fixed_dirs=(/var/log/containers /var/log/pods /var/lib/cni /var/lib/kubelet /run/containerd /run/netns)

links() { ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort; }
mounts() { awk '{print $5}' /proc/self/mountinfo | sort -u; }
netns() { ls -1 /run/netns 2>/dev/null | sort; }
kubepods() { find /sys/fs/cgroup -maxdepth 2 -name kubepods -type d 2>/dev/null | sort; }
rules() { "$1" -t "$2" -S 2>/dev/null | sort; }
tables=(filter nat mangle raw)
iptools=(iptables ip6tables)

if [[ "$cmd" == snapshot ]]; then
  mkdir -p "$before"
  links >"$before/links"
  mounts >"$before/mounts"
  netns >"$before/netns"
  kubepods >"$before/kubepods"
  for t in "${iptools[@]}"; do for tab in "${tables[@]}"; do rules "$t" "$tab" >"$before/$t-$tab"; done; done
  for d in "${fixed_dirs[@]}"; do
    [[ -e "$d" ]] && echo "$d" || true
    [[ -d "$d" ]] && find "$d" -mindepth 1 -maxdepth 3 2>/dev/null || true
  done | sort >"$before/files"
  rm -f "$run_dir/host-cleaned"
  exit 0
fi
[[ "$cmd" == cleanup ]] || { echo "usage: $0 snapshot|cleanup RUN_DIR" >&2; exit 2; }
[[ -d "$before" ]] || { echo "no snapshot in $before: nothing to clean" >&2; exit 0; }
new() { comm -13 "$1" <("${@:2}"); } # lines of the command's output not in file $1

# 1. Processes: the node's shims (they outlive containerd by design) and containers.
for p in /proc/[0-9]*; do
  if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "-address $run_dir/"; then kill -KILL "${p#/proc/}" 2>/dev/null; fi
done
for cg in $(new "$before/kubepods" kubepods); do
  find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
done
sleep 0.3

# 2. Network namespaces (unmounts /run/netns/NAME; the pods' veths go with them).
for ns in $(new "$before/netns" netns); do ip netns delete "$ns" 2>/dev/null || umount -l "/run/netns/$ns" 2>/dev/null; rm -f "/run/netns/$ns"; done

# 3. Mounts: new ones, deepest first (lazily: a busy mount still leaves the namespace).
new "$before/mounts" mounts | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- | while read -r m; do
  umount -l "$m" 2>/dev/null
done

# 4. iptables: delete new rules (jumps first, they pin chains), then flush and delete new chains.
for t in "${iptools[@]}"; do
  for tab in "${tables[@]}"; do
    added="$(new "$before/$t-$tab" rules "$t" "$tab")"
    grep '^-A ' <<<"$added" | while read -r _ rule; do eval "$t -w -t $tab -D $rule" 2>/dev/null; done
    for chain in $(grep '^-N ' <<<"$added" | cut -d' ' -f2); do $t -w -t "$tab" -F "$chain" 2>/dev/null; done
    for chain in $(grep '^-N ' <<<"$added" | cut -d' ' -f2); do $t -w -t "$tab" -X "$chain" 2>/dev/null; done
  done
done

# 5. Links (the bridge; veths left by a namespace that is gone).
for l in $(new "$before/links" links); do ip link delete "$l" 2>/dev/null; done

# 6. cgroups: rmdir depth first (a cgroup directory is removed with rmdir, never rm -r).
for cg in $(new "$before/kubepods" kubepods); do
  find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# 7. Files at fixed paths that were not there before.
for d in "${fixed_dirs[@]}"; do
  [[ -e "$d" ]] && echo "$d" || true
  [[ -d "$d" ]] && find "$d" -mindepth 1 -maxdepth 3 2>/dev/null || true
done | sort | comm -13 "$before/files" - | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- | while read -r f; do
  rm -rf --one-file-system "$f" 2>/dev/null
done

# Report what could not be removed (a test asserts this file is empty).
{
  new "$before/netns" netns | sed 's/^/netns /'
  new "$before/links" links | sed 's/^/link /'
  new "$before/kubepods" kubepods | sed 's/^/cgroup /'
  new "$before/mounts" mounts | sed 's/^/mount /'
  for t in "${iptools[@]}"; do for tab in "${tables[@]}"; do new "$before/$t-$tab" rules "$t" "$tab" | sed "s/^/$t $tab /"; done; done
} >"$run_dir/host-leftovers"
date -u +%FT%TZ >"$run_dir/host-cleaned"
if [[ -s "$run_dir/host-leftovers" ]]; then
  echo "node-host: could not remove:" >&2; cat "$run_dir/host-leftovers" >&2; exit 1
fi
