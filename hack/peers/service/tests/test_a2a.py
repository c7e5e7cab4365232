"""The official A2A Python SDK resolves the agent card and completes SendMessage and GetTask."""
import time
import uuid

import httpx
import jwt
import pytest
from a2a.client.card_resolver import A2ACardResolver
from a2a.client.client import ClientConfig
from a2a.client.client_factory import create_client
from a2a.types import GetExtendedAgentCardRequest, GetTaskRequest, SendMessageRequest
from google.protobuf.json_format import MessageToDict, ParseDict

from conftest import API_KEY, JWT_SECRET


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


@pytest.mark.asyncio
@pytest.mark.parametrize("server", [{"AUTH_MODE": "hybrid"}], indirect=True)
async def test_extended_card_lists_only_the_callers_skills(server):
    """The SDK sees capabilities.extendedAgentCard on the public card and fetches the extended card
    with GetExtendedAgentCard; it lists only the skills the token's scopes allow."""
    now = int(time.time())
    claims = {"sub": "peer", "iat": now, "exp": now + 300, "scope": "mail:scan availability:read"}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    client = await create_client(server, client_config=ClientConfig(streaming=False, httpx_client=http))
    public = await A2ACardResolver(http, server).get_agent_card()
    assert public.capabilities.extended_agent_card
    assert {s.id for s in public.skills} == {"mail_scan", "unsubscribe_candidates", "availability", "available_meeting_intervals"}
    extended = await client.get_extended_agent_card(GetExtendedAgentCardRequest())
    assert [s.id for s in extended.skills] == ["mail_scan", "availability"]
    assert extended.supported_interfaces[0].url == server + "/a2a"


@pytest.mark.parametrize("server", [{"AUTH_MODE": "api_key"}], indirect=True)
def test_v03_extended_card_parses_as_a_v03_card(server):
    """Without A2A-Version the v0.3 method answers a card in the v0.3 shape: the SDK's own v0.3
    model accepts it and its converter turns it into the same skills."""
    from a2a.compat.v0_3 import conversions
    from a2a.compat.v0_3 import types as v03

    body = {"jsonrpc": "2.0", "id": "1", "method": "agent/getAuthenticatedExtendedCard", "params": {}}
    reply = httpx.post(server + "/a2a", json=body, headers={"X-API-Key": API_KEY}).json()
    card = v03.AgentCard.model_validate(reply["result"])
    assert card.supports_authenticated_extended_card
    assert card.url == server + "/a2a"
    assert card.security == [{"apiKey": []}]
    core = conversions.to_core_agent_card(card)
    assert {s.id for s in core.skills} == {"mail_scan", "unsubscribe_candidates", "availability", "available_meeting_intervals"}
