#!/usr/bin/env bash
# The release workload binary, built with profile-guided optimisation (PGO). Used by every release
# build of `mailagent`: hack/image-build.sh (`make images`, `make run` on a node), `make bench`, and
# hack/docker/Dockerfile. Prints the binary's path on stdout; progress goes to stderr.
#
# Why: measured with `make bench`'s head-to-head, the same code served about 25 % more MCP
# `tools/call` requests a second once LLVM knew which branches and functions are hot (inlining and
# block layout follow the profile; cold code moves out of the hot pages). The cost is a second
# release build: one instrumented, one optimised.
#
#   1. build `mailagent` instrumented (-Cprofile-generate), in target/pgo/instrumented;
#   2. run it on a copy of the sample Maildir and drive it with hack/pgo/train.py (REST, A2A, MCP on
#      both protocol revisions, API-key and JWT callers) for PGO_TRAIN_SECONDS, then stop it with
#      SIGTERM so that it writes its profile;
#   3. merge the raw profile with llvm-profdata (Debian's llvm-19, installed with apt-get when
#      missing, as hack/node-build.sh installs the node's packages);
#   4. build `mailagent` again with -Cprofile-use, in target/pgo/optimised.
# The profile is cached in target/pgo under a hash of everything that builds or trains the workload,
# so an unchanged tree skips steps 1-3 and step 4 is cargo's usual no-op.
#
# --target is explicit so the profile flags reach the workload and its dependencies but not build
# scripts or proc macros (which would otherwise write profiles of their own while cargo runs them).
# The profile flags are passed with --config target.<triple>.rustflags, which cargo joins with
# .cargo/config.toml's (packed relocations), where RUSTFLAGS would replace them.
#
# PGO=0 skips all this and builds the plain release binary (target/release/mailagent).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
pgo_dir="$target_dir/pgo"
seconds="${PGO_TRAIN_SECONDS:-20}"
log() { echo "pgo-build: $*" >&2; }
cd "$root"

plain_build() {
  cargo build -q --release --locked -p mailagent-service --bin mailagent >&2
  echo "$target_dir/release/mailagent"
}
if [[ "${PGO:-1}" == 0 ]]; then
  log "PGO=0: plain release build"
  plain_build
  exit 0
fi

host="$(rustc -vV | sed -n 's/^host: //p')"

# llvm-profdata reads the raw profiles rustc's LLVM writes: the toolchain's own (rustup component
# llvm-tools) when installed, else the newest Debian one. Debian 12's llvm-19 reads rustc 1.95's
# (LLVM 22) raw profiles, and rustc reads the indexed profile it writes; checked in step 3 anyway.
profdata_tool() {
  local own; own="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
  if [[ -x "$own" ]]; then echo "$own"; return; fi
  local v
  for v in 22 21 20 19; do
    if command -v "llvm-profdata-$v" >/dev/null; then command -v "llvm-profdata-$v"; return; fi
  done
  if command -v llvm-profdata >/dev/null; then command -v llvm-profdata; return; fi
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "apt-get install llvm-19 (for llvm-profdata)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-19 >&2 && command -v llvm-profdata-19 && return
  fi
  return 1
}

# Everything that changes the workload's code or its training: its crates, the lock file, the
# toolchain, the build settings and this script and the trainer.
profile_key() {
  {
    rustc -vV
    sha256sum Cargo.toml Cargo.lock .cargo/config.toml hack/pgo-build.sh hack/pgo/train.py
    # testing.rs is the test harness, compiled only with the `testing` feature, never into the binary.
    find service/src mail/src crds/src schedule/src mail/testdata/maildir -type f ! -path service/src/testing.rs -print0 |
      sort -z | xargs -0 sha256sum
    sha256sum service/Cargo.toml mail/Cargo.toml crds/Cargo.toml schedule/Cargo.toml
  } | sha256sum | cut -c1-16
}

# cargo build FLAVOUR EXTRA_RUSTFLAG: the workload for this host, in target/pgo/FLAVOUR.
build() {
  local flavour="$1" flag="$2"
  CARGO_TARGET_DIR="$pgo_dir/$flavour" cargo build -q --release --locked --target "$host" \
    --config "target.$host.rustflags=[\"$flag\"]" -p mailagent-service --bin mailagent >&2
  echo "$pgo_dir/$flavour/$host/release/mailagent"
}

# Runs the instrumented binary under the trainer; leaves the merged profile at $1.
train() {
  local profile="$1" binary="$2" tool="$3"
  local work; work="$(mktemp -d)"
  local pid=""
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "[[ -n \"\$pid\" ]] && kill -KILL \"\$pid\" 2>/dev/null; rm -rf '$work'" RETURN
  cp -r mail/testdata/maildir "$work/maildir"
  mkdir -p "$work/state" "$work/raw"
  # Throwaway credentials for this one process: never printed, gone with $work.
  local api_key jwt_secret address=""
  api_key="train-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  jwt_secret="train-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  # The environment of the benches' and the trainer test's load (LOAD_ENV in
  # service/src/testing.rs): hybrid auth, and a rate limit too high to refuse anything. Port 0: the
  # workload binds a free port itself and names it in its `serving` log line.
  env -i PATH="$PATH" LLVM_PROFILE_FILE="$work/raw/mailagent-%p.profraw" \
    AUTH_MODE=hybrid AGENT_API_KEY="$api_key" AUTH_JWT_SECRET="$jwt_secret" \
    AUTH_JWT_ISSUER=https://pgo-train.invalid AUTH_JWT_AUDIENCE=mailagent \
    RATE_LIMIT_PER_MINUTE=1000000000 RATE_LIMIT_BURST=1000000000 \
    MAILAGENT_LISTEN=127.0.0.1:0 MAILAGENT_STATE_DIR="$work/state" MAILDIR_PATH="$work/maildir" \
    "$binary" >"$work/workload.log" 2>&1 &
  pid=$!
  local waited
  for ((waited = 0; waited < 600; waited++)); do
    address="$(sed -n 's/.*"message":"serving".*"listen":"\([^"]*\)".*/\1/p' "$work/workload.log" | head -1)"
    [[ -n "$address" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$address" ]]; then
    log "the instrumented workload did not start; its last log lines:"
    tail -5 "$work/workload.log" >&2
    return 1
  fi
  log "training for ${seconds}s (hack/pgo/train.py)"
  if ! MAILAGENT_TRAIN_API_KEY="$api_key" MAILAGENT_TRAIN_JWT_SECRET="$jwt_secret" python3 hack/pgo/train.py \
    --base-url "http://$address" --issuer https://pgo-train.invalid --audience mailagent \
    --seconds "$seconds" >&2; then
    log "the trainer failed; the workload's last log lines:"
    tail -5 "$work/workload.log" >&2
    return 1
  fi
  # SIGTERM: the workload drains and exits, and the profiling runtime writes its profile at exit.
  kill -TERM "$pid"
  wait "$pid" || { log "the instrumented workload exited with status $? on SIGTERM"; return 1; }
  pid=""
  "$tool" merge -o "$profile.partial" "$work"/raw/*.profraw
  mv "$profile.partial" "$profile"
}

tool="$(profdata_tool)" || {
  log "no llvm-profdata (install Debian's llvm-19 or rustup's llvm-tools): plain release build, no PGO"
  plain_build
  exit 0
}
mkdir -p "$pgo_dir"
profile="$pgo_dir/mailagent-$(profile_key).profdata"
if [[ -s "$profile" ]]; then
  log "profile cached: $profile"
else
  log "instrumented build (first time for this tree: several minutes)"
  instrumented="$(build instrumented "-Cprofile-generate=$pgo_dir/unused")"
  train "$profile" "$instrumented" "$tool"
  # Keep only this tree's profile.
  find "$pgo_dir" -maxdepth 1 -name 'mailagent-*.profdata' ! -path "$profile" -delete
  log "profile: $profile ($(du -h "$profile" | cut -f1))"
fi
log "optimised build with the profile"
build optimised "-Cprofile-use=$profile"
