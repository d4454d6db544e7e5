"""Fake /v1/conversations: create (with initial items), get, delete, list items. The responses fake adds
each turn's input and output items to the Conversation a request names (tests/fake/responses.py).
Knob in `server.state`: `conversations_fail_create` (a message) makes the next create answer 500."""

import itertools
import time

from tests.fake.records import finder

_ids = itertools.count(1)


def add_items(state: dict, conversation_id: str, items: list[dict]) -> None:
    state["conversations"][conversation_id]["items"].extend(items)


def install(server):
    state = server.state
    state.setdefault("conversations", {})

    found = finder(state, "conversations", "Conversation with id '{id}' not found.", param="conversation_id")

    @server.route("POST", "/v1/conversations")
    def create(request, reply):
        if state.get("conversations_fail_create"):
            return reply.error(500, state.pop("conversations_fail_create"), type="server_error")
        body = request.json() or {}
        conversation = {"id": f"conv_{next(_ids):06d}", "object": "conversation", "created_at": int(time.time()),
                        "metadata": body.get("metadata") or {}}
        state["conversations"][conversation["id"]] = {"conversation": conversation,
                                                      "items": list(body.get("items") or [])}
        reply.json(conversation)

    @server.route("GET", "/v1/conversations/(?P<id>[^/]+)")
    def get(request, reply):
        record = found(request, reply)
        if record:
            reply.json(record["conversation"])

    @server.route("GET", "/v1/conversations/(?P<id>[^/]+)/items")
    def items(request, reply):
        record = found(request, reply)
        if record:
            reply.json({"object": "list", "data": record["items"], "has_more": False})

    @server.route("DELETE", "/v1/conversations/(?P<id>[^/]+)")
    def delete(request, reply):
        if found(request, reply) is not None:
            del state["conversations"][request.match["id"]]
            reply.json({"id": request.match["id"], "object": "conversation.deleted", "deleted": True})
