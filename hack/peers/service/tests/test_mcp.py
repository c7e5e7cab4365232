"""The official MCP Python SDK connects, lists and calls tools in api_key and jwt modes."""
import time

import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import API_KEY, JWT_SECRET

READ_TOOLS = {"mail_scan", "unsubscribe_candidates", "availability", "available_meeting_intervals"}


def token(scope: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "peer", "iat": now, "exp": now + 300, "scope": scope}, JWT_SECRET, algorithm="HS256")


async def tools_and_scan(base: str, headers: dict) -> tuple[set, object]:
    http = httpx2.AsyncClient(headers=headers)
    async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
        tools = await client.list_tools()
        result = await client.call_tool("mail_scan", {})
        return {t.name for t in tools.tools}, result


@pytest.mark.asyncio
@pytest.mark.parametrize("server", [{"AUTH_MODE": "api_key"}], indirect=True)
async def test_api_key_lists_read_tools_and_calls_scan(server):
    names, result = await tools_and_scan(server, {"X-API-Key": API_KEY})
    assert names == READ_TOOLS, "mutation tools are hidden while the switch is off"
    assert not result.is_error, result
    assert "total_messages" in result.structured_content


@pytest.mark.asyncio
@pytest.mark.parametrize("server", [{"AUTH_MODE": "jwt", "MCP_ENABLE_MUTATION_TOOLS": "true"}], indirect=True)
async def test_jwt_tools_are_filtered_by_scope(server):
    names, result = await tools_and_scan(server, {"Authorization": "Bearer " + token("mail:scan unsubscribe:execute")})
    assert names == {"mail_scan", "unsubscribe_execute"}
    assert not result.is_error, result


@pytest.mark.asyncio
@pytest.mark.parametrize("server", [{"AUTH_MODE": "jwt"}], indirect=True)
async def test_bad_token_is_refused(server):
    with pytest.raises(Exception):
        await tools_and_scan(server, {"Authorization": "Bearer " + token("mail:scan")[:-2] + "xx"})
