"""The head-to-head contender of `make bench`: the official MCP Python SDK (PyPI `mcp`, pinned in
hack/peers/service/requirements.txt) serving one tool that does the work of mailagent's
`unsubscribe_candidates` with Python's standard library.

It reads the Maildir at MAILDIR_PATH once, on the first call, keeping the parsed headers (as
mailagent keeps its scan index), and on every call groups the messages that carry
`List-Unsubscribe` by their `List-Id` identifier, else the sender's address, with the methods each
group offers. Streamable HTTP at http://127.0.0.1:$PORT/mcp, the SDK's defaults (sessions, SSE
answers), no auth; DNS-rebinding checks off because the load generator sends a portless Host.

    python mcp_python_server.py PORT
"""

import collections
import email.parser
import email.policy
import email.utils
import mailbox
import os
import re
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

_MESSAGES: list[dict[str, str]] | None = None
_HEADERS = ("From", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Subject")


def _messages() -> list[dict[str, str]]:
    global _MESSAGES
    if _MESSAGES is None:
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        box = mailbox.Maildir(os.environ["MAILDIR_PATH"], factory=None, create=False)
        _MESSAGES = []
        for key in box.iterkeys():
            with box.get_file(key) as handle:
                headers = parser.parse(handle)
            _MESSAGES.append({name: str(headers.get(name, "")) for name in _HEADERS})
    return _MESSAGES


def _key(message: dict[str, str]) -> str:
    list_id = re.search(r"<([^>]+)>", message["List-Id"])
    if list_id:
        return list_id.group(1).strip().lower()
    return email.utils.parseaddr(message["From"])[1].lower()


server = MCPServer("python-sdk-bench", log_level="WARNING")


@server.tool()
def unsubscribe_candidates() -> dict:
    """Senders with List-Unsubscribe, grouped, most messages first."""
    groups: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    messages = _messages()
    for message in messages:
        if message["List-Unsubscribe"] and message["From"]:
            groups[_key(message)].append(message)
    candidates = []
    for key, members in groups.items():
        uris = re.findall(r"<([^>]+)>", " ".join(m["List-Unsubscribe"] for m in members))
        methods = sorted({uri.split(":", 1)[0].lower() for uri in uris})
        one_click = any("one-click" in m["List-Unsubscribe-Post"].lower() for m in members)
        candidates.append({
            "key": key,
            "sender": email.utils.parseaddr(members[0]["From"])[1].lower(),
            "message_count": len(members),
            "methods": methods,
            "one_click": one_click,
            "sample_subject": members[0]["Subject"],
        })
    candidates.sort(key=lambda c: (-c["message_count"], c["key"]))
    return {"candidates": candidates, "scanned_messages": len(messages)}


if __name__ == "__main__":
    import anyio

    anyio.run(
        lambda: server.run_streamable_http_async(
            host="127.0.0.1",
            port=int(sys.argv[1]),
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
    )
