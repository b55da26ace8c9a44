"""The agent-builder SDK's surface, as a thin alias of :class:`switchboard_client.Client`.

Programs written for that SDK run unchanged::

    from agenticrag_client import AgenticRAGClient, APIConfig

    client = AgenticRAGClient(APIConfig(base_url="http://127.0.0.1:3000", api_key="sb_live_..."))
    workflows = client.workflows.list()                          # {"workflows": [...], "next_cursor": ...}
    result = client.workflows.execute("<flow id>", {"input": "data"})  # {"executionId": ...}
    response = client.chatflows.chat("Hello!")                   # {"sessionId", "response", "usage"}

Workflows are Switchboard flows; ``chatflows.chat`` is one assistant turn without device tools,
or one turn of a chatflow when ``workflow_id`` is given. ``client.switchboard`` is the full client.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from .client import Client


@dataclass
class APIConfig:
    """Where the server is and who calls: ``base_url`` is the server root (without /api/v1)."""

    base_url: str
    api_key: Optional[str] = None
    token: Optional[str] = None
    timeout: float = 60.0
    headers: Optional[Mapping[str, str]] = None


class WorkflowsApi:
    """Flows under the agent-builder's name."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """One page of the caller's flows, newest first: ``{"workflows": [...], "next_cursor": ...}``."""
        page = self._client.flows.list_flows(limit=limit, cursor=cursor)
        return {"workflows": page["flows"], "next_cursor": page["nextCursor"]}

    def execute(self, workflow_id: str, input: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Runs an agentflow in the background with ``input`` (its ``{{input.<key>}}`` values): ``{"executionId": ...}``."""
        return self._client.flows.execute_flow(workflow_id, input=input if input is not None else {})


class ChatflowsApi:
    """Chat under the agent-builder's name."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def chat(
        self,
        message: str,
        session_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        config: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """One turn, answered when done: of the chatflow ``workflow_id``, else of the assistant without device tools."""
        if workflow_id is not None:
            return self._client.flows.chat_with_flow(workflow_id, message, session_id=session_id)
        return self._client.chat.chat(message, session_id=session_id, config=config, tools="none")


class AgenticRAGClient:
    """``AgenticRAGClient(APIConfig(base_url, api_key))``: ``workflows`` and ``chatflows`` over the Switchboard client."""

    def __init__(self, config: APIConfig) -> None:
        self.config = config
        self.switchboard = Client(
            config.base_url, token=config.token, timeout=config.timeout, headers=config.headers, api_key=config.api_key
        )
        self.workflows = WorkflowsApi(self.switchboard)
        self.chatflows = ChatflowsApi(self.switchboard)


__all__ = ["APIConfig", "AgenticRAGClient", "ChatflowsApi", "WorkflowsApi"]
