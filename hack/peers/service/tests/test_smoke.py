"""`make smoke` (hack/smoke.sh): the runbooks' canary checks, against the real binary.

It must pass on a healthy agent, and fail, naming the check, when the key is wrong or when the
mutation tools are listed while they should be off. The key never appears in its output."""
import os
import pathlib
import subprocess

import pytest

from conftest import API_KEY

SMOKE = pathlib.Path(__file__).resolve().parents[4] / "hack" / "smoke.sh"


def smoke(base: str, key: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    key_file = tmp_path / "api-key"
    key_file.write_text(key + "\n")
    return subprocess.run([str(SMOKE), base, str(key_file), *extra], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("server", [{"AUTH_MODE": "api_key"}], indirect=True)
def test_a_healthy_agent_passes_every_check(server, tmp_path):
    out = smoke(server, API_KEY, tmp_path, "--mutations", "off")
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ["ok   health", "ok   card", "ok   a2a", "ok   mcp: protocol 2025-06-18", "mutation tools listed: none", "PASS smoke"]:
        assert check in out.stdout, out.stdout
    assert API_KEY not in out.stdout + out.stderr


@pytest.mark.parametrize("server", [{"AUTH_MODE": "api_key"}], indirect=True)
def test_a_wrong_key_fails_at_the_first_authenticated_check(server, tmp_path):
    out = smoke(server, "not-the-key-0123456789abcdef", tmp_path)
    assert out.returncode == 1
    assert "FAIL a2a: SendMessage answered HTTP 401" in out.stderr, out.stderr
    assert "PASS" not in out.stdout


@pytest.mark.parametrize("server", [{"AUTH_MODE": "api_key", "MCP_ENABLE_MUTATION_TOOLS": "true"}], indirect=True)
def test_mutation_tools_listed_while_they_should_be_off_fail(server, tmp_path):
    out = smoke(server, API_KEY, tmp_path, "--mutations", "off")
    assert out.returncode == 1
    assert "FAIL mcp: mutation tools are listed while they should be off: unsubscribe_execute,unsubscribe_digest" in out.stderr
    assert smoke(server, API_KEY, tmp_path, "--mutations", "on").returncode == 0


def test_usage_errors_exit_2(tmp_path):
    out = smoke("http://127.0.0.1:9", API_KEY, tmp_path, "--mutations", "maybe")
    assert out.returncode == 2 and "--mutations takes on or off" in out.stderr
    out = subprocess.run([str(SMOKE), "http://127.0.0.1:9", str(tmp_path / "missing")], capture_output=True, text=True)
    assert out.returncode == 2 and "cannot read the API key file" in out.stderr
