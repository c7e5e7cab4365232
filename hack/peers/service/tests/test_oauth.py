"""oauth mode: the MCP SDK connects with a token from a local issuer; the workload discovers the
issuer's keys from its RFC 8414 metadata, published (as Keycloak, Okta and Entra ID do) at a path
other than /.well-known/jwks.json."""
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import start

RESOURCE = "https://mail.test/mcp"


@pytest.fixture
def issuer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = str(uuid.uuid4())
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}).encode()
    fetches = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            fetches.append(self.path)
            documents = {
                "/.well-known/oauth-authorization-server": json.dumps({
                    "issuer": url, "jwks_uri": url + "/oauth/v1/keys",
                    "token_endpoint": url + "/oauth/v1/token", "response_types_supported": ["code"],
                }).encode(),
                "/oauth/v1/keys": jwks,
            }
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"

    def mint(scope: str, aud: str = RESOURCE, signing_kid: str = kid) -> str:
        now = int(time.time())
        claims = {"sub": "oauth-user", "iss": url, "aud": aud, "iat": now, "exp": now + 300, "scope": scope}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": signing_kid, "typ": "at+jwt"})

    yield url, mint, fetches
    httpd.shutdown()


@pytest.mark.asyncio
async def test_oauth_resource_server(issuer):
    url, mint, fetches = issuer
    proc, base = start({
        "AUTH_MODE": "api_key",
        "MCP_AUTH_MODE": "oauth",
        "MCP_RESOURCE_SERVER_URL": RESOURCE,
        "MCP_OAUTH_ISSUER": url,
    })
    try:
        unauthenticated = httpx.post(base + "/mcp", json={})
        assert unauthenticated.status_code == 401
        assert 'resource_metadata="https://mail.test/.well-known/oauth-protected-resource/mcp"' in unauthenticated.headers["www-authenticate"]
        prm = httpx.get(base + "/.well-known/oauth-protected-resource/mcp").json()
        assert prm["resource"] == RESOURCE and prm["authorization_servers"] == [url]

        http = httpx2.AsyncClient(headers={"Authorization": "Bearer " + mint("mail:scan availability:read")})
        async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == {"mail_scan", "availability"}
            assert not (await client.call_tool("mail_scan", {})).is_error

        wrong_aud = httpx.post(base + "/mcp", json={}, headers={"Authorization": "Bearer " + mint("mail:scan", aud="https://other.test/mcp")})
        assert (wrong_aud.status_code, wrong_aud.headers["x-auth-failure"]) == (401, "wrong_audience")
        assert fetches[:2] == ["/.well-known/oauth-authorization-server", "/oauth/v1/keys"], fetches
        before = len(fetches)
        for _ in range(5):
            unknown = httpx.post(base + "/mcp", json={}, headers={"Authorization": "Bearer " + mint("mail:scan", signing_kid="invented")})
            assert unknown.headers["x-auth-failure"] == "unknown_kid"
        assert len(fetches) - before <= 1, "unknown kids refetch the JWKS at most once per interval"

        scoped = httpx.post(
            base + "/mcp",
            json={"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "unsubscribe_candidates", "arguments": {}}},
            headers={"Authorization": "Bearer " + mint("mail:scan"), "Accept": "application/json, text/event-stream"},
        )
        assert scoped.status_code == 403
        assert 'error="insufficient_scope", scope="unsubscribe:read"' in scoped.headers["www-authenticate"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
