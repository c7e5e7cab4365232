"""The official MCP and A2A Python SDKs call a MailAgent's workload pod, with the credentials
`make run` hands out: an API key the AuthPolicy controller minted (from its client Secret) and a
JWT that `mailagent-token` signed with the policy's Active key (KEYS_DIR/mail-admin, KEYS_DIR/jwt).

Usage: python clients.py BASE_URL KEYS_DIR MCP_HOST
BASE_URL is the pod (http://<pod IP>:8080). MCP_HOST is the in-cluster Service name sent as the
Host header, which the workload's DNS-rebinding check accepts (no kube-proxy on the local node,
so the Service address itself does not route). Prints one line per check; exits 1 on a failure.
"""
import asyncio
import sys
import uuid

import httpx
import httpx2
from a2a.client.client import ClientConfig
from a2a.client.client_factory import create_client
from a2a.types import SendMessageRequest
from google.protobuf.json_format import MessageToDict, ParseDict
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def read(keys: str, name: str) -> str:
    with open(f"{keys}/{name}") as f:
        return f.read().strip()


async def mcp_calls(base: str, host: str, headers: dict) -> set:
    http = httpx2.AsyncClient(headers={"Host": host, **headers})
    async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
        tools = await client.list_tools()
        result = await client.call_tool("mail_scan", {})
        assert not result.is_error, result
        assert result.structured_content["total_messages"] > 0, "the sample Maildir from the volume"
        return {t.name for t in tools.tools}


async def a2a_call(base: str, headers: dict) -> dict:
    http = httpx.AsyncClient(headers=headers)
    client = await create_client(base, client_config=ClientConfig(streaming=False, httpx_client=http))
    request = ParseDict(
        {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER",
                     "parts": [{"data": {"skill": "mail_scan", "arguments": {}}}]}},
        SendMessageRequest(),
    )
    tasks = [event.task async for event in client.send_message(request) if event.HasField("task")]
    assert len(tasks) == 1
    task = MessageToDict(tasks[0])
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
    return task


async def main() -> None:
    base, keys, host = sys.argv[1:4]
    api_key = {"X-API-Key": read(keys, "mail-admin")}
    names = await mcp_calls(base, host, api_key)
    print(f"mcp api-key: tools {sorted(names)}; mail_scan ok")

    token = read(keys, "jwt")
    names = await mcp_calls(base, host, {"Authorization": f"Bearer {token}"})
    print(f"mcp jwt: tools {sorted(names)}; mail_scan ok")

    task = await a2a_call(base, api_key)
    print(f"a2a api-key: task {task['status']['state']}")


if __name__ == "__main__":
    asyncio.run(main())
