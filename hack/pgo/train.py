#!/usr/bin/env python3
"""PGO training driver for hack/pgo-build.sh.

The PGO build starts an instrumented `mailagent`, runs this script against it, then stops the
process so it writes its profile. The compiler optimises for whatever the profile saw, so this
drives the mix a production agent serves rather than one benchmark request:

- REST: POST every read-only capability route under /v1 (never the mutations:
  /v1/unsubscribe/execute and /v1/unsubscribe/digest contact senders or send mail);
- MCP 2025-06-18: initialize, notifications/initialized, tools/list, tools/call on a session
  of each worker's own and on one session all workers share (calls in flight concurrently),
  sessions opened and closed (DELETE) along the way;
- MCP 2026-07-28: sessionless tools/call and tools/list, each request carrying its `_meta` and
  `Mcp-Method`/`Mcp-Name` headers (as service/benches/doors.rs sends them);
- A2A 1.0: SendMessage naming a skill (by text, or a data part with arguments), GetTask, and
  GET /.well-known/agent-card.json;
- GET /health and /metrics now and then;
- about 1 % of requests with a wrong API key or a badly signed token, answered 401, so the reject
  path is in the profile without dominating it.

Callers authenticate with the API key (`X-API-Key`) or an HS256 JWT bearer minted here, half and
half; the workload must run with AUTH_MODE=hybrid (or api_key/jwt would refuse one of them).
Every answer is checked (status, JSON-RPC `result`, no tool error, A2A task completed): the first
unexpected one stops the run with exit 1, since a profile trained on errors is a bad profile.

Secrets come from the environment, never argv, and are never printed:
  MAILAGENT_TRAIN_API_KEY      the workload's AGENT_API_KEY (all scopes)
  MAILAGENT_TRAIN_JWT_SECRET   the workload's AUTH_JWT_SECRET (HS256)

Usage:
  python3 hack/pgo/train.py --base-url http://127.0.0.1:PORT --issuer ISS --audience AUD \\
      [--seconds 20] [--threads 8]

Python 3 standard library only.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import sys
import threading
import time
import typing
import urllib.parse

MCP_SESSION_REVISION = "2025-06-18"
MCP_STATELESS_REVISION = "2026-07-28"

# The scopes of the read-only capabilities (crds/src/scope.rs), and only those: the trainer
# never calls a mutation, so its token does not hold one.
READ_SCOPES = "mail:scan unsubscribe:read availability:read available_meeting_intervals:read"

# A worker mints a new token every this many requests, so the profile sees both a token's first
# verification and the verified-token cache hits that follow; and at half the token's lifetime
# at the latest, so a slow run never sends an expired one.
REQUESTS_PER_TOKEN = 400
TOKEN_LIFETIME_SECONDS = 300

# A window over the sample calendar (mail/testdata/maildir/calendar.ics): a week of daily
# stand-ups plus one review, so availability has busy blocks to subtract.
WINDOW = {"start": "2026-11-23T00:00:00+01:00", "end": "2026-11-28T00:00:00+01:00"}
WORKDAYS = {"start": "09:00", "end": "17:00", "days": ["mon", "tue", "wed", "thu", "fri"]}

# The read-only capabilities (crds/src/capability.rs): tool name / skill id, REST path, and
# argument sets an agent would send. unsubscribe_execute and unsubscribe_digest are mutations
# and deliberately absent.
CAPABILITIES = [
    ("mail_scan", "/v1/mail/scan", [
        {},
        {"max_messages": 100, "explain_limit": 10},
        {"full": True, "explain_limit": 5},
    ]),
    ("unsubscribe_candidates", "/v1/unsubscribe/candidates", [
        {},
        {"limit": 20, "min_messages": 1},
        {"limit": 5, "include_done": True},
    ]),
    ("availability", "/v1/availability", [
        dict(WINDOW),
        dict(WINDOW, time_zone="Europe/Berlin", working_hours=WORKDAYS),
    ]),
    ("available_meeting_intervals", "/v1/available-meeting-intervals", [
        dict(WINDOW, duration_minutes=30),
        dict(WINDOW, time_zone="Europe/Berlin", duration_minutes=45,
             buffer_before_minutes=10, buffer_after_minutes=5, limit=5),
    ]),
]
# Agents call the mailbox tools far more often than the calendar ones.
CAPABILITY_WEIGHTS = [4, 4, 1, 1]


class Reply(typing.NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Unexpected(Exception):
    """An answer the trainer did not expect; ends the run. The message holds the status, the
    workload's `X-Auth-Failure` reason if any and the start of the body (answers hold no secrets)."""

    def __init__(self, door, what, reply):
        reason = reply.headers.get("x-auth-failure")
        status = f"HTTP {reply.status}" + (f" ({reason})" if reason else "")
        super().__init__(f"{door} {what}: {status}: {reply.body.decode('utf-8', 'replace')[:200]}")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hs256(claims, secret):
    """A compact HS256 JWT (no `kid`: the workload's AUTH_JWT_SECRET answers to none)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


class Credentials:
    """The secrets and token claims; mints bearer tokens and the deliberately bad credentials."""

    def __init__(self, api_key, jwt_secret, issuer, audience):
        self.api_key = api_key
        self.jwt_secret = jwt_secret.encode()
        self.issuer = issuer
        self.audience = audience

    def token(self, secret=None, audience=None):
        """A bearer token with the read scopes; `secret` and `audience` override the right ones."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience or self.audience,
            "sub": "pgo-trainer",
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "scope": READ_SCOPES,
            # Each token differs, so each is verified once before the cache serves it.
            "jti": secrets.token_hex(8),
        }
        return hs256(claims, secret or self.jwt_secret)

    def bad(self, rng):
        """A credential the workload must refuse: a wrong key, a wrong signature, or a wrong audience."""
        choice = rng.randrange(3)
        if choice == 0:
            return {"X-API-Key": secrets.token_hex(len(self.api_key) // 2 + 1)}
        if choice == 1:
            return {"Authorization": f"Bearer {self.token(secret=secrets.token_bytes(32))}"}
        return {"Authorization": f"Bearer {self.token(audience=self.audience + '-elsewhere')}"}


def exchange(conn, method, path, body=None, headers=None):
    """One request on a keep-alive connection, its answer read whole.

    A connection the server closed between requests is reopened once and the request resent;
    every request here is read-only, so sending it twice is harmless.
    """
    data = None if body is None else json.dumps(body).encode()

    def send():
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())

    try:
        return send()
    # http.client.RemoteDisconnected is a ConnectionResetError.
    except (ConnectionResetError, BrokenPipeError):
        conn.close()
        return send()


def jsonrpc_message(body, request_id):
    """The JSON-RPC answer in a plain JSON body or an SSE stream (the answer's `data:` line;
    rmcp may send an empty priming event first)."""
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        return json.loads(text)
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data.startswith("{"):
            message = json.loads(data)
            if message.get("id") == request_id:
                return message
    return None


def expect_result(door, what, reply, request_id):
    """The `result` of a successful JSON-RPC answer; raises on anything else."""
    if reply.status != 200:
        raise Unexpected(door, what, reply)
    try:
        message = jsonrpc_message(reply.body, request_id)
    except ValueError:
        message = None
    if not isinstance(message, dict) or "result" not in message or "error" in message:
        raise Unexpected(door, what, reply)
    return message["result"]


class Worker(threading.Thread):
    """One client: its own keep-alive connection, looping over the weighted mix until the deadline."""

    def __init__(self, index, run):
        super().__init__(name=f"train-{index}", daemon=True)
        self.index = index
        self.run_state = run
        # Seeded: each worker makes the same choices on every run, so the mix a profile is trained
        # on changes only when this script does.
        self.rng = random.Random(index)
        self.counts = collections.Counter()
        self.conn = run.connect()
        self.sequence = 0
        self.requests_on_token = 0
        self.bearer = None
        self.bearer_minted = 0.0
        self.session = None
        # (weight, action): agents mostly call tools (MCP, both revisions) and REST; discovery
        # (lists, the card), A2A and operations traffic are rarer. ~1 % is rejected auth.
        self.mix = [
            (30, self.rest),
            (14, self.mcp_session_call),
            (10, self.mcp_shared_call),
            (3, self.mcp_session_list),
            (1, self.mcp_session_cycle),
            (24, self.mcp_stateless_call),
            (3, self.mcp_stateless_list),
            (7, self.a2a_send),
            (1, self.a2a_get_task),
            (2, self.card),
            (1, self.health),
            (1, self.metrics),
            (1, self.rejected),
        ]
        self.weights = [weight for weight, _ in self.mix]
        self.actions = [action for _, action in self.mix]
        self.last_task = None

    # -- plumbing -------------------------------------------------------------------------------

    def next_id(self):
        # Unique across workers: ids of one shared session's calls in flight must differ.
        self.sequence += 1
        return self.index * 1_000_000_000 + self.sequence

    def auth(self):
        """The API key or a bearer token, half and half."""
        self.requests_on_token += 1
        stale = time.monotonic() - self.bearer_minted > TOKEN_LIFETIME_SECONDS / 2
        if self.bearer is None or stale or self.requests_on_token >= REQUESTS_PER_TOKEN:
            self.bearer = f"Bearer {self.run_state.credentials.token()}"
            self.bearer_minted = time.monotonic()
            self.requests_on_token = 0
        if self.rng.random() < 0.5:
            return {"X-API-Key": self.run_state.credentials.api_key}
        return {"Authorization": self.bearer}

    def capability(self):
        name, path, argument_sets = self.rng.choices(CAPABILITIES, CAPABILITY_WEIGHTS)[0]
        return name, path, self.rng.choice(argument_sets)

    def post(self, path, body, headers):
        return exchange(self.conn, "POST", path, body, headers)

    # -- REST -----------------------------------------------------------------------------------

    def rest(self):
        _, path, arguments = self.capability()
        headers = {"Content-Type": "application/json", **self.auth()}
        reply = self.post(path, arguments, headers)
        if reply.status != 200:
            raise Unexpected("rest", f"POST {path}", reply)
        self.counts["rest"] += 1

    # -- MCP 2025-06-18 (sessions) --------------------------------------------------------------

    def mcp_session_call(self):
        if self.session is None:
            self.session = self.run_state.open_session(self.conn, self.auth())
            self.counts["mcp-2025-06-18"] += 2
        self.session_call(self.session)

    def mcp_shared_call(self):
        self.session_call(self.run_state.shared_session)

    def session_call(self, session):
        name, _, arguments = self.capability()
        request_id = self.next_id()
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": name, "arguments": arguments}}
        reply = self.post("/mcp", body, session_headers(session, self.auth()))
        result = expect_result("mcp-2025-06-18", f"tools/call {name}", reply, request_id)
        if result.get("isError"):
            raise Unexpected("mcp-2025-06-18", f"tools/call {name} isError", reply)
        self.counts["mcp-2025-06-18"] += 1

    def mcp_session_list(self):
        session = self.session or self.run_state.shared_session
        request_id = self.next_id()
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/list"}
        reply = self.post("/mcp", body, session_headers(session, self.auth()))
        result = expect_result("mcp-2025-06-18", "tools/list", reply, request_id)
        if not result.get("tools"):
            raise Unexpected("mcp-2025-06-18", "tools/list (no tools)", reply)
        self.counts["mcp-2025-06-18"] += 1

    def mcp_session_cycle(self):
        """Ends this worker's session and opens the next, as a client reconnecting would."""
        if self.session is not None:
            self.run_state.close_session(self.conn, self.session, self.auth())
            self.counts["mcp-2025-06-18"] += 1
        self.session = self.run_state.open_session(self.conn, self.auth())
        self.counts["mcp-2025-06-18"] += 2

    # -- MCP 2026-07-28 (sessionless) -----------------------------------------------------------

    def mcp_stateless_call(self):
        name, _, arguments = self.capability()
        request_id = self.next_id()
        body = stateless_body(request_id, "tools/call", {"name": name, "arguments": arguments})
        reply = self.post("/mcp", body, stateless_headers("tools/call", name, self.auth()))
        result = expect_result("mcp-2026-07-28", f"tools/call {name}", reply, request_id)
        if result.get("isError"):
            raise Unexpected("mcp-2026-07-28", f"tools/call {name} isError", reply)
        self.counts["mcp-2026-07-28"] += 1

    def mcp_stateless_list(self):
        request_id = self.next_id()
        body = stateless_body(request_id, "tools/list", {})
        reply = self.post("/mcp", body, stateless_headers("tools/list", None, self.auth()))
        result = expect_result("mcp-2026-07-28", "tools/list", reply, request_id)
        if not result.get("tools"):
            raise Unexpected("mcp-2026-07-28", "tools/list (no tools)", reply)
        self.counts["mcp-2026-07-28"] += 1

    # -- A2A ------------------------------------------------------------------------------------

    def a2a_send(self):
        name, _, arguments = self.capability()
        request_id = f"train-{self.next_id()}"
        # Both ways a client names a skill: the bare skill id as text (only for a call without
        # arguments: text carries none), or a data part with the skill and its arguments.
        if not arguments and self.rng.random() < 0.5:
            part = {"text": name}
        else:
            part = {"data": {"skill": name, "arguments": arguments}}
        body = {"jsonrpc": "2.0", "id": request_id, "method": "SendMessage",
                "params": {"message": {"messageId": request_id, "role": "ROLE_USER", "parts": [part]}}}
        auth = self.auth()
        reply = self.post("/a2a", body, a2a_headers(auth))
        result = expect_result("a2a", f"SendMessage {name}", reply, request_id)
        task = result.get("task") or {}
        # A failed skill is still a JSON-RPC result; its task state says so.
        if task.get("status", {}).get("state") != "TASK_STATE_COMPLETED":
            raise Unexpected("a2a", f"SendMessage {name} (task not completed)", reply)
        self.last_task = (task["id"], auth)
        self.counts["a2a"] += 1

    def a2a_get_task(self):
        if self.last_task is None:
            return self.a2a_send()
        task_id, auth = self.last_task
        request_id = f"train-{self.next_id()}"
        body = {"jsonrpc": "2.0", "id": request_id, "method": "GetTask", "params": {"id": task_id}}
        # A task belongs to the caller that created it (the key's client or the token's subject),
        # so GetTask asks with the credential SendMessage used.
        reply = self.post("/a2a", body, a2a_headers(auth))
        expect_result("a2a", "GetTask", reply, request_id)
        self.counts["a2a"] += 1

    def card(self):
        reply = exchange(self.conn, "GET", "/.well-known/agent-card.json")
        if reply.status != 200 or b'"skills"' not in reply.body:
            raise Unexpected("card", "GET /.well-known/agent-card.json", reply)
        self.counts["card"] += 1

    # -- operations and rejects -----------------------------------------------------------------

    def health(self):
        reply = exchange(self.conn, "GET", "/health")
        if reply.status != 200:
            raise Unexpected("ops", "GET /health", reply)
        self.counts["ops"] += 1

    def metrics(self):
        reply = exchange(self.conn, "GET", "/metrics")
        if reply.status != 200:
            raise Unexpected("ops", "GET /metrics", reply)
        self.counts["ops"] += 1

    def rejected(self):
        """A wrong credential on a random door: must be 401, whatever the door."""
        bad = self.run_state.credentials.bad(self.rng)
        door = self.rng.randrange(3)
        if door == 0:
            path, body, headers = "/v1/mail/scan", {}, {"Content-Type": "application/json", **bad}
        elif door == 1:
            request_id = self.next_id()
            body = stateless_body(request_id, "tools/call", {"name": "mail_scan", "arguments": {}})
            path, headers = "/mcp", stateless_headers("tools/call", "mail_scan", bad)
        else:
            body = {"jsonrpc": "2.0", "id": "bad", "method": "SendMessage",
                    "params": {"message": {"messageId": "bad", "role": "ROLE_USER", "parts": [{"text": "mail_scan"}]}}}
            path, headers = "/a2a", a2a_headers(bad)
        reply = self.post(path, body, headers)
        if reply.status != 401:
            raise Unexpected("rejected", f"POST {path} with a bad credential", reply)
        self.counts["rejected"] += 1

    # -- the loop -------------------------------------------------------------------------------

    def run(self):
        try:
            while not self.run_state.stop.is_set() and time.monotonic() < self.run_state.deadline:
                self.rng.choices(self.actions, self.weights)[0]()
            if self.session is not None:
                self.run_state.close_session(self.conn, self.session, self.auth())
                self.counts["mcp-2025-06-18"] += 1
        except Unexpected as failure:
            self.run_state.fail(str(failure))
        except Exception as error:  # noqa: BLE001 (any crash must stop the run, with its reason)
            self.run_state.fail(f"{self.name}: {type(error).__name__}: {error}")
        finally:
            self.conn.close()


def session_headers(session, auth):
    return {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Mcp-Session-Id": session,
        "MCP-Protocol-Version": MCP_SESSION_REVISION,
        **auth,
    }


def stateless_headers(method, name, auth):
    # The 2026-07-28 revision routes on headers that mirror the body.
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MCP_STATELESS_REVISION,
        "Mcp-Method": method,
        **auth,
    }
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def stateless_body(request_id, method, params):
    # Without a handshake each request names its revision, capabilities and client itself.
    params = dict(params, _meta={
        "io.modelcontextprotocol/protocolVersion": MCP_STATELESS_REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "mailagent-pgo-train", "version": "1"},
    })
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def a2a_headers(auth):
    return {"Content-Type": "application/json", "A2A-Version": "1.0", **auth}


class Run:
    """What the workers share: the target, credentials, deadline, the shared session, the first failure."""

    def __init__(self, host, port, credentials):
        self.host = host
        self.port = port
        self.credentials = credentials
        self.deadline = None
        self.stop = threading.Event()
        self.failure = None
        self.failure_lock = threading.Lock()
        self.shared_session = None
        self.shared_auth = None

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def fail(self, message):
        with self.failure_lock:
            if self.failure is None:
                self.failure = message
        self.stop.set()

    def open_session(self, conn, auth):
        """initialize + notifications/initialized; the session id."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": MCP_SESSION_REVISION, "capabilities": {},
            "clientInfo": {"name": "mailagent-pgo-train", "version": "1"}}}
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **auth}
        reply = exchange(conn, "POST", "/mcp", body, headers)
        result = expect_result("mcp-2025-06-18", "initialize", reply, 1)
        session = reply.headers.get("mcp-session-id")
        if not session or result.get("protocolVersion") != MCP_SESSION_REVISION:
            raise Unexpected("mcp-2025-06-18", "initialize (no session or another revision)", reply)
        body = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        reply = exchange(conn, "POST", "/mcp", body, session_headers(session, auth))
        if reply.status not in (200, 202):
            raise Unexpected("mcp-2025-06-18", "notifications/initialized", reply)
        return session

    def close_session(self, conn, session, auth):
        reply = exchange(conn, "DELETE", "/mcp", None, session_headers(session, auth))
        # 405 is the spec's answer of a server that does not let clients end sessions.
        if reply.status not in (200, 202, 204, 405):
            raise Unexpected("mcp-2025-06-18", "DELETE session", reply)


def wait_for_health(run, timeout):
    """Until GET /health answers 200 (the instrumented binary may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = run.connect()
        try:
            if exchange(conn, "GET", "/health").status == 200:
                return True
        except OSError:
            pass
        finally:
            conn.close()
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="PGO training traffic for the mailagent workload.")
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--issuer", required=True, help="the workload's AUTH_JWT_ISSUER")
    parser.add_argument("--audience", required=True, help="the workload's AUTH_JWT_AUDIENCE")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.threads < 1:
        parser.error("--seconds must be positive and --threads at least 1")
    return args


def usage_error(message):
    # Exit status 2, as argparse's own usage errors.
    print(f"train: {message}", file=sys.stderr)
    sys.exit(2)


def target(base_url):
    url = urllib.parse.urlsplit(base_url)
    if url.scheme != "http" or not url.hostname or url.path not in ("", "/"):
        usage_error(f"--base-url must be http://HOST:PORT, not {base_url!r}")
    return url.hostname, url.port or 80


def credentials_from_env(issuer, audience):
    missing = [name for name in ("MAILAGENT_TRAIN_API_KEY", "MAILAGENT_TRAIN_JWT_SECRET") if not os.environ.get(name)]
    if missing:
        usage_error(f"set {' and '.join(missing)} in the environment")
    return Credentials(os.environ["MAILAGENT_TRAIN_API_KEY"], os.environ["MAILAGENT_TRAIN_JWT_SECRET"], issuer, audience)


DOORS = ["rest", "mcp-2025-06-18", "mcp-2026-07-28", "a2a", "card", "ops", "rejected"]


def main(argv=None):
    args = parse_args(argv)
    host, port = target(args.base_url)
    run = Run(host, port, credentials_from_env(args.issuer, args.audience))
    if not wait_for_health(run, 30):
        print(f"train: GET {args.base_url}/health did not answer 200 within 30 s", file=sys.stderr)
        return 1
    setup = run.connect()
    try:
        # One session every worker calls on at once: one agent fanning out calls.
        # Opened and closed with the key, which unlike a token cannot expire during a long run.
        run.shared_auth = {"X-API-Key": run.credentials.api_key}
        run.shared_session = run.open_session(setup, run.shared_auth)
    except (Unexpected, OSError) as failure:
        print(f"train: FAIL {failure}", file=sys.stderr)
        return 1
    workers = [Worker(index, run) for index in range(args.threads)]
    started = time.monotonic()
    run.deadline = started + args.seconds
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    if run.failure is None:
        try:
            run.close_session(setup, run.shared_session, run.shared_auth)
        except (Unexpected, OSError) as failure:
            run.fail(str(failure))
    setup.close()
    if run.failure is not None:
        print(f"train: FAIL {run.failure}", file=sys.stderr)
        return 1
    counts = collections.Counter()
    for worker in workers:
        counts.update(worker.counts)
    counts["mcp-2025-06-18"] += 3  # the shared session's initialize, initialized and DELETE
    total = sum(counts.values())
    doors = ", ".join(f"{door} {counts[door]}" for door in DOORS)
    print(f"train: {doors} in {elapsed:.1f} s ({total / elapsed:.0f} req/s, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
