"""serve's ASGI app driven in-process, one event loop, no sockets: the order in which requests take their
place, and the envelope's 503 when shutdown gives up on an answer. Deterministic: asyncio runs ready tasks
first in, first out, and the fake runner decides when answers come."""

import asyncio
import json

import pytest

pytest.importorskip("starlette")

from oaicli.envelope.engine import Envelope  # noqa: E402
from oaicli.envelope.http.app import Service, create_app  # noqa: E402


class RecordingRunner:
    """Answers in the order its calls reach it (the order of the contexts' turns), once released."""

    def __init__(self):
        self.order: list[str] = []
        self.release = asyncio.Event()
        self.closed = False

    async def run(self, parsed, on_delta=None):
        self.order.append(parsed.question)
        await self.release.wait()
        answer = {"version": "1.0.0", "code": 0, "msg": "ok", "data": {**parsed.ids, "answer": "a"}}
        return answer, 200, 0.0

    def close(self) -> None:
        self.closed = True


def envelope_body(question: str) -> bytes:
    return json.dumps({"version": "1.0.0", "pars": {"user_id": "u1", "group_id": "g1", "question": question,
                                                     "question_id": question}}).encode()


async def call(app, payload: bytes, accept: str = "application/json") -> tuple[int, bytes]:
    """One POST /v1/envelope through the ASGI interface; (status, body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/envelope", "raw_path": b"/v1/envelope", "query_string": b"", "root_path": "",
             "headers": [(b"accept", accept.encode()), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}
    received = [{"type": "http.request", "body": payload, "more_body": False}]
    status, chunks = [], []

    async def receive():
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(chunks)


def service_and_app():
    runner = RecordingRunner()
    service = Service(runner, Envelope(None, model="gpt-3.5-turbo", system=None), token=None, max_body=65536)
    return runner, service, create_app(service)


def test_a_streamed_request_keeps_its_place_ahead_of_a_plain_one_that_arrives_next():
    async def scenario():
        runner, service, app = service_and_app()
        first = asyncio.ensure_future(call(app, envelope_body("streamed"), accept="text/event-stream"))
        second = asyncio.ensure_future(call(app, envelope_body("plain")))
        while service.received < 2:  # both handlers have run up to their first wait
            await asyncio.sleep(0)
        runner.release.set()
        results = await asyncio.gather(first, second)
        return runner.order, results

    order, results = asyncio.run(scenario())
    assert order == ["streamed", "plain"]
    assert b'"code":0' in results[0][1].replace(b" ", b"") and results[1][0] == 200


def test_answers_abandoned_at_shutdown_get_the_envelope_503_not_a_plain_500():
    async def scenario():
        runner, service, app = service_and_app()
        plain = asyncio.ensure_future(call(app, envelope_body("plain")))
        streamed = asyncio.ensure_future(call(app, envelope_body("streamed"), accept="text/event-stream"))
        while service.in_flight < 2:
            await asyncio.sleep(0)
        service.abandon()  # what the shutdown timeout (or a second signal) does
        results = await asyncio.gather(plain, streamed)
        await asyncio.sleep(0.01)  # the executor has run runner.close
        return runner, results

    runner, (plain, streamed) = asyncio.run(scenario())
    for status, payload in (plain, streamed):
        answer = json.loads(payload)
        assert status == 503 and answer["code"] == 5000 and "stopping" in answer["msg"]
        assert answer["data"]["question_id"] in ("plain", "streamed")
    assert runner.closed  # no answer may be saved from now on
