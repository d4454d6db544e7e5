"""serve's async client with httpx.MockTransport: answers, errors, and no reference cycle left per answer."""

import asyncio
import gc
import json
import weakref

import httpx
import pytest

from oaicli.api.async_client import AsyncApiClient
from oaicli.core.errors import ApiError
from oaicli.core.settings import Settings

KEY = "sk-test-async-0123456789abcdef"


def client_answering(answer):
    """An AsyncApiClient on a MockTransport; `made` holds a weak reference to each response it returned."""
    made: list[weakref.ref] = []

    def handle(request: httpx.Request) -> httpx.Response:
        response = answer(request)
        made.append(weakref.ref(response))
        return response

    settings = Settings({"api_key": KEY, "base_url": "http://fake.test/v1", "max_retries": 0}, environ={})
    return AsyncApiClient(settings, max_connections=4, transport=httpx.MockTransport(handle)), made


@pytest.fixture
def no_collector():
    """With the cycle collector off, an object outlives its last reference only if it is in a cycle."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_an_answer_leaves_no_cycle_for_the_collector(no_collector):
    client, made = client_answering(lambda request: httpx.Response(200, json={"echo": json.loads(request.content)}))
    assert asyncio.run(client.post_json("/chat/completions", {"n": 1})) == {"echo": {"n": 1}}
    assert len(made) == 1 and made[0]() is None  # freed at once, as serve's loop needs


def test_an_error_answer_is_raised_and_leaves_no_cycle(no_collector):
    client, made = client_answering(lambda request: httpx.Response(400, json={"error": {"message": "bad model"}}))

    async def refused() -> str:
        try:
            await client.post_json("/chat/completions", {"n": 1})
        except ApiError as exc:
            return str(exc)  # the error's traceback (which holds the response) goes with this frame
        return "answered"

    assert "bad model" in asyncio.run(refused())
    assert len(made) == 1 and made[0]() is None


def test_a_stream_yields_its_events_and_leaves_no_cycle(no_collector):
    events = b'data: {"i": 1}\n\ndata: {"i": 2}\n\ndata: [DONE]\n\n'
    client, made = client_answering(lambda request: httpx.Response(
        200, content=events, headers={"content-type": "text/event-stream"}))

    async def collect():
        return [event async for event in client.stream_events("/chat/completions", {"stream": True})]

    assert asyncio.run(collect()) == [{"i": 1}, {"i": 2}]
    assert len(made) == 1 and made[0]() is None
