"""Starts the mailagent binary on a free loopback port with test credentials."""
import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

API_KEY = "peer-test-api-key-0123456789abcdef"
JWT_SECRET = "peer-test-jwt-secret-at-least-32-bytes-long"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _remove_on_exit(path: str) -> None:
    # Every server's state directory (its Maildir copy, log, keys) goes when pytest exits, however
    # the test ended: the next run and the next session share /tmp. A failing test's log is in
    # its assertion output, not needed afterwards.
    atexit.register(shutil.rmtree, path, ignore_errors=True)


def start(extra_env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    state = tempfile.mkdtemp(prefix="mailagent-peer-")
    _remove_on_exit(state)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MAILAGENT_LISTEN": f"127.0.0.1:{port}",
        "MAILAGENT_STATE_DIR": state,
        "AGENT_API_KEY": API_KEY,
        "AUTH_JWT_SECRET": JWT_SECRET,
        "LOG_FORMAT": "json",
        # The SDK tests are not about rate limits; the default (60/min, burst 10) would turn a
        # busy test's later calls into 429s.
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_BURST": "10000",
        **extra_env,
    }
    proc = subprocess.Popen([os.environ["MAILAGENT_BIN"]], env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(state, "log"), "w"))
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=0.5)
            return proc, base
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(open(os.path.join(state, "log")).read())
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("mailagent did not become healthy")


@pytest.fixture
def server(request):
    proc, base = start(getattr(request, "param", {}))
    yield base
    proc.terminate()
    proc.wait(timeout=10)
