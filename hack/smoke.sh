#!/usr/bin/env bash
# The runbooks' canary checks against one running agent (`make smoke`):
#   1. GET /health;
#   2. GET /.well-known/agent-card.json: an A2A card with skills and an interface URL;
#   3. A2A SendMessage (mail_scan) answered with a task or a message, not an error;
#   4. MCP: initialize, then tools/list; prints the tools and says whether the mutation tools are
#      listed (they must not be while spec.mcp.enableMutationTools is false).
# The API key is read from a file (a client Secret's `api-key`, as `make run` copies them), never
# from the command line, and never printed. Exits non-zero at the first failed check, saying which.
#
# Usage: hack/smoke.sh BASE_URL API_KEY_FILE [--mutations on|off]
set -euo pipefail

base="${1:?usage: hack/smoke.sh BASE_URL API_KEY_FILE [--mutations on|off]}"
key_file="${2:?usage: hack/smoke.sh BASE_URL API_KEY_FILE [--mutations on|off]}"
mutations=""
if [[ "${3:-}" == --mutations ]]; then
  mutations="${4:?--mutations takes on or off}"
  [[ "$mutations" == on || "$mutations" == off ]] || { echo "smoke: --mutations takes on or off" >&2; exit 2; }
fi
base="${base%/}"
[[ -r "$key_file" ]] || { echo "smoke: cannot read the API key file $key_file" >&2; exit 2; }
command -v jq >/dev/null || { echo "smoke: needs jq" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# curl reads the key header from a file, so the key is in no process's arguments.
printf 'X-API-Key: %s\n' "$(tr -d '\r\n' <"$key_file")" >"$work/key-header"
chmod 600 "$work/key-header"

fail() { echo "FAIL $1: $2" >&2; exit 1; }
# call NAME METHOD PATH [BODY] [extra curl args...]: the body goes to $work/NAME, the status to stdout.
call() {
  local name="$1" method="$2" path="$3" body="${4:-}"
  shift 4 || shift $#
  local args=(-s -o "$work/$name" -D "$work/$name.headers" -w '%{http_code}' -X "$method" --max-time 10)
  [[ -z "$body" ]] || args+=(-H 'content-type: application/json' -H "@$work/key-header" -d "$body")
  curl "${args[@]}" "$@" "$base$path" || echo 000
}

status="$(call health GET /health)"
[[ "$status" == 200 ]] || fail health "GET /health answered $status"
echo "ok   health: GET /health 200"

status="$(call card GET /.well-known/agent-card.json)"
[[ "$status" == 200 ]] || fail card "GET /.well-known/agent-card.json answered $status"
skills="$(jq -r '[.skills[].id] | join(",")' "$work/card" 2>/dev/null)" || fail card "not an agent card (no skills)"
url="$(jq -r '.supportedInterfaces[0].url // .url // empty' "$work/card")"
[[ -n "$skills" && -n "$url" ]] || fail card "the card names no skills or no interface URL"
echo "ok   card: skills $skills; interface $url"

send='{"jsonrpc":"2.0","id":"smoke-1","method":"SendMessage","params":{"message":{"messageId":"smoke-1","role":"ROLE_USER","parts":[{"text":"mail_scan"}]}}}'
status="$(call a2a POST /a2a "$send" -H 'A2A-Version: 1.0')"
[[ "$status" == 200 ]] || fail a2a "SendMessage answered HTTP $status ($(jq -c '.error // .' "$work/a2a" 2>/dev/null | head -c 200))"
jq -e '.result and (.error | not)' "$work/a2a" >/dev/null || fail a2a "SendMessage answered an error: $(jq -c '.error' "$work/a2a" | head -c 200)"
echo "ok   a2a: SendMessage mail_scan answered $(jq -r '.result | keys | join(",")' "$work/a2a")"

accept=(-H 'accept: application/json, text/event-stream')
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mailagent-smoke","version":"1"}}}'
status="$(call mcp-init POST /mcp "$init" "${accept[@]}")"
[[ "$status" == 200 ]] || fail mcp "initialize answered HTTP $status"
# A streamable HTTP answer may come as SSE events (the first may be an empty priming event):
# keep the first data line that is a JSON object.
json_of() { if grep -q '^data:' "$1"; then sed -n 's/^data: *//p' "$1" | grep -m1 '^{'; else cat "$1"; fi; }
version="$(json_of "$work/mcp-init" | jq -r '.result.protocolVersion // empty')"
[[ -n "$version" ]] || fail mcp "initialize gave no protocolVersion"
session=()
sid="$(tr -d '\r' <"$work/mcp-init.headers" | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: *//p')"
[[ -z "$sid" ]] || session=(-H "Mcp-Session-Id: $sid")
protocol=(-H "MCP-Protocol-Version: $version")
call mcp-initialized POST /mcp '{"jsonrpc":"2.0","method":"notifications/initialized"}' "${accept[@]}" "${session[@]}" "${protocol[@]}" >/dev/null
status="$(call mcp-tools POST /mcp '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "${accept[@]}" "${session[@]}" "${protocol[@]}")"
[[ "$status" == 200 ]] || fail mcp "tools/list answered HTTP $status"
tools="$(json_of "$work/mcp-tools" | jq -r '[.result.tools[].name] | join(",")' 2>/dev/null)" || fail mcp "tools/list gave no tools"
mutating="$(json_of "$work/mcp-tools" | jq -r '[.result.tools[] | select(.annotations.destructiveHint == true or .annotations.readOnlyHint == false) | .name] | join(",")')"
echo "ok   mcp: protocol $version; tools $tools"
case "$mutations" in
  off) [[ -z "$mutating" ]] || fail mcp "mutation tools are listed while they should be off: $mutating" ;;
  on) [[ -n "$mutating" ]] || fail mcp "no mutation tool is listed while they should be on" ;;
esac
echo "ok   mcp: mutation tools listed: ${mutating:-none}"
echo "PASS smoke: $base"
