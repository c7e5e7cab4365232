"""schemathesis (not written here) fuzzes every operation of the served OpenAPI document with valid
credentials, with all of its checks: no response may be a server error, every response must match
what the document declares (status codes, content types, headers, body schemas), requests the
schema forbids must be refused and ones it allows accepted, a request without credentials or with
an unsupported method must be refused. schemathesis.toml lists the one check turned off, where,
and why.

One workload in hybrid mode with mutations on, over a copy of the sample Maildir so the responses
carry real data; one run authenticates with the API key header, one with a Bearer JWT. The example
count and seed are fixed so a run is bounded (about a minute) and reproducible; set
SCHEMATHESIS_MAX_EXAMPLES / SCHEMATHESIS_SEED to explore further.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import jwt
import pytest

from conftest import API_KEY, JWT_SECRET, start

REPO = pathlib.Path(__file__).resolve().parents[4]
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261123")


@pytest.fixture(scope="module")
def maildir():
    path = pathlib.Path(tempfile.mkdtemp(prefix="mailagent-schemathesis-")) / "maildir"
    shutil.copytree(REPO / "mail" / "testdata" / "maildir", path)
    yield str(path)
    shutil.rmtree(path.parent, ignore_errors=True)


def bearer() -> str:
    now = int(time.time())
    scopes = "mail:scan unsubscribe:read unsubscribe:execute unsubscribe:digest availability:read available_meeting_intervals:read"
    claims = {"sub": "schemathesis", "iat": now, "exp": now + 600, "scope": scopes}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def schemathesis(base: str, header: str, workdir: str) -> subprocess.CompletedProcess:
    cli = pathlib.Path(sys.executable).parent / "schemathesis"
    command = [
        str(cli),
        "--no-color",
        "--config-file",
        str(pathlib.Path(__file__).resolve().parents[1] / "schemathesis.toml"),
        "run",
        f"{base}/openapi.json",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--generation-with-security-parameters",
        "false",
        "--generation-database",
        "none",
        "--continue-on-failure",
        "--output-sanitize",
        "true",
        "--header",
        header,
    ]
    # The header carries a credential: keep it out of anything printed on failure.
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("credential", ["api_key", "bearer"])
def test_no_server_errors_and_responses_match_the_document(credential, maildir, tmp_path):
    env = {
        "AUTH_MODE": "hybrid",
        "MCP_ENABLE_MUTATION_TOOLS": "true",
        "MAILDIR_PATH": maildir,
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_BURST": "100000",
    }
    secret = API_KEY if credential == "api_key" else bearer()
    header = f"X-API-Key: {secret}" if credential == "api_key" else f"Authorization: Bearer {secret}"
    proc, base = start(env)
    try:
        result = schemathesis(base, header, str(tmp_path))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    output = (result.stdout + result.stderr).replace(secret, "<redacted>")
    assert result.returncode == 0, output
    print(output[-1500:])
