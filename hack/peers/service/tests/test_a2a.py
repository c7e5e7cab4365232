"""The official A2A Python SDK resolves the agent card and completes SendMessage and GetTask."""
import uuid

import httpx
import pytest
from a2a.client.client import ClientConfig
from a2a.client.client_factory import create_client
from a2a.types import GetTaskRequest, SendMessageRequest
from google.protobuf.json_format import MessageToDict, ParseDict

from conftest import API_KEY


@pytest.mark.asyncio
@pytest.mark.parametrize("server", [{"AUTH_MODE": "hybrid"}], indirect=True)
async def test_send_message_then_get_task(server):
    http = httpx.AsyncClient(headers={"X-API-Key": API_KEY})
    client = await create_client(server, client_config=ClientConfig(streaming=False, httpx_client=http))
    request = ParseDict(
        {
            "message": {
                "messageId": str(uuid.uuid4()),
                "role": "ROLE_USER",
                "parts": [{"data": {"skill": "mail_scan", "arguments": {}}}],
            }
        },
        SendMessageRequest(),
    )
    tasks = [event.task async for event in client.send_message(request) if event.HasField("task")]
    assert len(tasks) == 1
    task = MessageToDict(tasks[0])
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
    assert "total_messages" in task["artifacts"][0]["parts"][0]["data"]

    fetched = MessageToDict(await client.get_task(GetTaskRequest(id=task["id"])))
    assert fetched["id"] == task["id"]
    assert fetched["status"]["state"] == "TASK_STATE_COMPLETED"


@pytest.mark.asyncio
@pytest.mark.parametrize("server", [{"AUTH_MODE": "api_key"}], indirect=True)
async def test_card_declares_the_api_key_scheme(server):
    card = httpx.get(server + "/.well-known/agent-card.json").json()
    assert card["securityRequirements"] == [{"schemes": {"apiKey": {"list": []}}}]
    assert {s["id"] for s in card["skills"]} >= {"mail_scan", "availability"}
