# Shared by run.sh and bench.sh: install (cached) and start the Google API emulator
# @inbox-zero/emulate, pinned by package.json / package-lock.json beside this file.
#
# Seed convention (tests/emulator.rs relies on it): one mailbox per test, user NAME@mail.example
# with bearer token tok-NAME (the quota-group test has twenty, fleet-00 .. fleet-19); the bench mailbox has tokens tok-bench-0..15 (the emulator caps
# every token at 5,000 requests an hour, a GitHub-style limit Gmail does not have, so the bench
# spreads its calls over several tokens of the same user). The OAuth client
# mailagent-test.apps.example / test-client-secret serves the token refresh test.

EMULATOR_USERS="suite scan unsub spoof digest calendar oauth retry bench"
# The quota-group test's twenty mailboxes (fleet-00 .. fleet-19).
EMULATOR_USERS="$EMULATOR_USERS $(printf 'fleet-%02d ' $(seq 0 19))"

emulator_log() { printf '[peers/mail] %s\n' "$*" >&2; }

# Installs the emulator (once per lock hash) and prints its bin directory.
emulator_install() {
  local here="$1"
  command -v node >/dev/null || { emulator_log "node is not installed (Node >= 20 is needed)"; return 1; }
  command -v npm >/dev/null || { emulator_log "npm is not installed"; return 1; }
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then emulator_log "Node $major is too old: the emulator needs Node >= 20"; return 1; fi
  local key cache dir
  key=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/mailagent/npm-emulate"
  dir="$cache/$key"
  if [ ! -x "$dir/node_modules/.bin/emulate" ]; then
    emulator_log "installing @inbox-zero/emulate into $dir"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    cp "$here/package.json" "$here/package-lock.json" "$dir.partial/"
    if ! (cd "$dir.partial" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
      emulator_log "npm ci failed (is the npm registry reachable?)"
      rm -rf "$dir.partial"
      return 1
    fi
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
  else
    emulator_log "reusing $dir"
  fi
  printf '%s\n' "$dir/node_modules/.bin"
}

# Writes the seed file.
emulator_seed() {
  local file="$1" name i
  {
    echo "tokens:"
    for name in $EMULATOR_USERS; do
      printf '  tok-%s:\n    login: %s@mail.example\n    scopes: [https://www.googleapis.com/auth/gmail.modify, https://www.googleapis.com/auth/calendar.freebusy]\n' "$name" "$name"
    done
    for i in $(seq 0 15); do
      printf '  tok-bench-%s:\n    login: bench@mail.example\n    scopes: [https://www.googleapis.com/auth/gmail.modify]\n' "$i"
    done
    echo "google:"
    echo "  users:"
    for name in $EMULATOR_USERS; do
      printf '    - email: %s@mail.example\n      name: %s\n      email_verified: true\n' "$name" "$name"
    done
    cat <<'YAML'
  oauth_clients:
    - client_id: mailagent-test.apps.example
      client_secret: test-client-secret
      name: mailagent peer tests
      redirect_uris:
        - http://127.0.0.1/callback
  calendars:
    - id: primary
      user_email: calendar@mail.example
      summary: calendar@mail.example
      primary: true
      selected: true
      time_zone: UTC
  calendar_events:
    - id: evt_standup
      user_email: calendar@mail.example
      calendar_id: primary
      summary: Stand-up
      start_date_time: 2026-11-24T08:30:00.000Z
      end_date_time: 2026-11-24T08:45:00.000Z
    - id: evt_review
      user_email: calendar@mail.example
      calendar_id: primary
      summary: Review
      start_date_time: 2026-11-24T13:00:00.000Z
      end_date_time: 2026-11-24T14:30:00.000Z
YAML
  } >"$file"
}

# A free loopback port.
emulator_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts the emulator; sets EMULATOR_PID and EMULATOR_URL. The caller traps emulator_stop.
emulator_start() {
  local bin="$1" work="$2" port tries
  emulator_seed "$work/seed.yaml"
  for tries in 1 2 3; do
    port=$(emulator_port)
    "$bin/emulate" start -s google --seed "$work/seed.yaml" -p "$port" >"$work/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    EMULATOR_URL="http://127.0.0.1:$port"
    local waited=0
    while [ "$waited" -lt 60 ]; do
      if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then break; fi
      if curl -fsS -m 2 -H 'Authorization: Bearer tok-suite' "$EMULATOR_URL/gmail/v1/users/me/labels" >/dev/null 2>&1; then
        emulator_log "emulator up at $EMULATOR_URL (pid $EMULATOR_PID) after $((waited / 2)) s"
        return 0
      fi
      sleep 0.5
      waited=$((waited + 1))
    done
    emulator_log "emulator did not come up on port $port (attempt $tries); its log:"
    sed 's/^/    /' "$work/emulator.log" >&2 || true
    emulator_stop
  done
  return 1
}

emulator_stop() {
  if [ -n "${EMULATOR_PID:-}" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
  fi
  EMULATOR_PID=
}

# The workload binary end to end: MAILBOX_PROVIDER=gmail and CALENDAR_PROVIDER=google against the
# emulator, with a token.json obtained through the emulator's consent and code exchange (its
# refresh token is never printed). Checks a REST scan, availability and the Gmail counters in /metrics.
workload_smoke() {
  local root="$1" work="$2" url="$EMULATOR_URL" user=calendar@mail.example
  local redirect=http://127.0.0.1/callback client=mailagent-test.apps.example secret=test-client-secret
  (cd "$root" && cargo build -q -p mailagent-service --bin mailagent)
  local location code
  location=$(curl -fsS -o /dev/null -w '%{redirect_url}' -X POST "$url/o/oauth2/v2/auth/callback" \
    --data-urlencode "email=$user" --data-urlencode "redirect_uri=$redirect" --data-urlencode "client_id=$client" \
    --data-urlencode "scope=https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/calendar.freebusy")
  code=$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)["code"][0])' "$location")
  mkdir -p "$work/credentials" && chmod 700 "$work/credentials"
  curl -fsS -X POST "$url/oauth2/token" -d grant_type=authorization_code -d "code=$code" \
    --data-urlencode "redirect_uri=$redirect" -d "client_id=$client" -d "client_secret=$secret" |
    python3 -c '
import json, sys
answer = json.load(sys.stdin)
token = {"token": answer["access_token"], "refresh_token": answer["refresh_token"], "token_uri": sys.argv[1] + "/oauth2/token",
         "client_id": sys.argv[2], "client_secret": sys.argv[3], "expiry": "2020-01-01T00:00:00Z"}
json.dump(token, open(sys.argv[4], "w"))' "$url" "$client" "$secret" "$work/credentials/token.json"
  chmod 600 "$work/credentials/token.json"
  local raw
  raw=$(printf 'From: Weekly <news@news.example.com>\r\nTo: %s\r\nSubject: smoke\r\nList-Id: <weekly.news.example.com>\r\nList-Unsubscribe: <mailto:leave@news.example.com>\r\n\r\nhi\r\n' "$user" |
    base64 -w0 | tr '+/' '-_' | tr -d '=')
  curl -fsS -o /dev/null -X POST -H 'Authorization: Bearer tok-calendar' -H 'content-type: application/json' \
    "$url/gmail/v1/users/me/messages/import" -d "{\"raw\":\"$raw\",\"labelIds\":[\"INBOX\"]}"
  local port key=smoke-api-key-0123456789abcdef0123456789
  port=$(emulator_port)
  env -i PATH="$PATH" HOME="$HOME" LOG_FORMAT=text AUTH_MODE=api_key MAILAGENT_LISTEN="127.0.0.1:$port" AGENT_API_KEY="$key" \
    MAILAGENT_STATE_DIR="$work/state" MAILBOX_PROVIDER=gmail MAILAGENT_CREDENTIALS_DIR="$work/credentials" \
    GMAIL_API_BASE_URL="$url/" GMAIL_FETCH_FORMAT=raw DIGEST_RECIPIENT="$user" \
    CALENDAR_PROVIDER=google GOOGLE_CALENDAR_BASE_URL="$url/calendar/v3/" \
    "$root/target/debug/mailagent" >"$work/workload.log" 2>&1 &
  WORKLOAD_PID=$!
  local waited=0
  until curl -fsS -m 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    waited=$((waited + 1))
    if [ "$waited" -gt 60 ] || ! kill -0 "$WORKLOAD_PID" 2>/dev/null; then
      emulator_log "the workload did not start; its log:"; sed 's/^/    /' "$work/workload.log" >&2; return 1
    fi
    sleep 0.5
  done
  local scan availability metrics
  scan=$(curl -fsS -X POST -H "x-api-key: $key" -H 'content-type: application/json' "http://127.0.0.1:$port/v1/mail/scan" -d '{}')
  availability=$(curl -fsS -X POST -H "x-api-key: $key" -H 'content-type: application/json' "http://127.0.0.1:$port/v1/availability" \
    -d '{"start":"2026-11-24T00:00:00Z","end":"2026-11-25T00:00:00Z"}')
  metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
  kill "$WORKLOAD_PID" 2>/dev/null || true
  wait "$WORKLOAD_PID" 2>/dev/null || true
  WORKLOAD_PID=
  python3 - "$scan" "$availability" "$metrics" <<'PY'
import json, re, sys
scan, availability, metrics = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
assert scan["total_messages"] == 1 and scan["quota_units"] > 0, scan
assert scan["counts"] == [{"class": "newsletter", "count": 1}], scan["counts"]
assert availability["sources"] == ["google:primary"] and len(availability["busy"]) == 2, availability
units = int(re.search(r"^mailagent_mail_quota_units_total (\d+)", metrics, re.M).group(1))
assert units == scan["quota_units"], (units, scan["quota_units"])
print(f"[peers/mail] workload: gmail scan {scan['quota_units']} units, free/busy {len(availability['busy'])} busy blocks, /metrics agrees", file=sys.stderr)
PY
  if grep -q "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["refresh_token"])' "$work/credentials/token.json")" "$work/workload.log"; then
    emulator_log "the refresh token appears in the workload log"; return 1
  fi
}
