"""serve's ASGI app driven in-process, one event loop, no sockets: the order in which requests take their
place, and the envelope's 503 when shutdown gives up on an answer. Deterministic: asyncio runs ready tasks
first in, first out, and the fake runner decides when answers come."""

import asyncio
import json

import pytest

pytest.importorskip("uvicorn")

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
    status, headers, body = await request(app, "POST", "/v1/envelope", [payload], {"accept": accept})
    return status, body


async def request(app, method: str, path: str, chunks=(), headers=None) -> tuple[int, dict, bytes]:
    """One HTTP request through the ASGI interface, its body in `chunks` (then the client is gone);
    (status, response headers, body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}
    received = [{"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
                for index, chunk in enumerate(chunks)] or [{"type": "http.request", "body": b"", "more_body": False}]
    start, parts = [], []

    async def receive():
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            start.append(message)
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return start[0]["status"], {k.decode(): v.decode() for k, v in start[0]["headers"]}, b"".join(parts)


def service_and_app(token=None, max_body=65536, metrics=True):
    runner = RecordingRunner()
    service = Service(runner, Envelope(None, model="gpt-3.5-turbo", system=None), token=token, max_body=max_body,
                      metrics=metrics)
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


def test_a_body_over_the_cap_is_a_413_whether_declared_or_found_while_reading():
    async def scenario():
        runner, service, app = service_and_app(max_body=len(envelope_body("q")))  # exactly enough for it
        runner.release.set()
        declared = await request(app, "POST", "/v1/envelope", [b"{}"], {"content-length": "10000"})
        read = await request(app, "POST", "/v1/envelope", [b" " * 60, b" " * 60, b"never read"])
        fits = await request(app, "POST", "/v1/envelope", [envelope_body("q")[:50], envelope_body("q")[50:]])
        return runner, declared, read, fits

    runner, declared, read, fits = asyncio.run(scenario())
    for status, headers, payload in (declared, read):
        assert status == 413 and headers["content-type"] == "application/json"
        assert json.loads(payload)["code"] == 1004 and f"{len(envelope_body('q'))} bytes" in json.loads(payload)["msg"]
        assert headers["content-length"] == str(len(payload))
    assert fits[0] == 200 and runner.order == ["q"]


def test_the_token_is_checked_on_the_envelope_and_the_metrics_but_not_the_health_check():
    async def scenario():
        runner, service, app = service_and_app(token="s3cret-token")
        runner.release.set()
        body = [envelope_body("q")]
        missing = await request(app, "POST", "/v1/envelope", body)
        wrong = await request(app, "POST", "/v1/envelope", body, {"authorization": "Bearer s3cret-tokeX"})
        other_scheme = await request(app, "POST", "/v1/envelope", body, {"authorization": "Basic s3cret-token"})
        metrics_refused = await request(app, "GET", "/metrics")
        health = await request(app, "GET", "/healthz")
        right = await request(app, "POST", "/v1/envelope", body, {"authorization": "bearer  s3cret-token"})
        metrics = await request(app, "GET", "/metrics", headers={"authorization": "Bearer s3cret-token"})
        return runner, (missing, wrong, other_scheme, metrics_refused), health, right, metrics

    runner, refused, health, right, metrics = asyncio.run(scenario())
    for status, headers, payload in refused:
        assert status == 401 and headers["www-authenticate"] == "Bearer" and json.loads(payload)["code"] == 1005
        assert b"s3cret" not in payload
    assert health[0] == 200 and json.loads(health[2])["status"] == "ok"
    assert right[0] == 200 and runner.order == ["q"]
    assert metrics[0] == 200 and metrics[1]["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics[2].decode().splitlines()
    assert 'oaicli_envelope_requests_total{outcome="unauthorized"} 3' in lines
    assert 'oaicli_envelope_requests_total{outcome="ok"} 1' in lines


def test_healthz_counts_what_was_received_and_is_in_flight():
    async def scenario():
        runner, service, app = service_and_app()
        waiting = asyncio.ensure_future(call(app, envelope_body("q")))
        while service.in_flight < 1:
            await asyncio.sleep(0)
        during = await request(app, "GET", "/healthz")
        runner.release.set()
        await waiting
        after = await request(app, "GET", "/healthz")
        return during, after

    during, after = asyncio.run(scenario())
    assert json.loads(during[2]) == {"status": "ok", "version": "1.0.0", "received": 1, "in_flight": 1, "contexts": 1}
    assert json.loads(after[2]) == {"status": "ok", "version": "1.0.0", "received": 1, "in_flight": 0, "contexts": 0}


def test_a_client_gone_before_its_body_arrived_is_not_answered_upstream():
    async def cut_short():
        runner, service, app = service_and_app()
        chunks = [{"type": "http.request", "body": b'{"version": "1.0.0", ', "more_body": True}]
        status = []

        async def receive():
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])

        scope = {"type": "http", "method": "POST", "path": "/v1/envelope", "headers": []}
        await app(scope, receive, send)
        return runner, status

    runner, status = asyncio.run(cut_short())
    assert runner.order == [] and status == [400]  # nothing asked upstream; the 400 goes nowhere


def test_a_streamed_answer_runs_to_its_end_when_the_client_is_gone():
    async def scenario():
        runner, service, app = service_and_app()
        sent = []

        async def receive():
            return {"type": "http.request", "body": envelope_body("q"), "more_body": False}

        async def send(message):  # a gone client: uvicorn drops what is sent to it
            sent.append(message["type"])

        scope = {"type": "http", "method": "POST", "path": "/v1/envelope",
                 "headers": [(b"accept", b"text/event-stream")]}
        handler = asyncio.ensure_future(app(scope, receive, send))
        while service.in_flight < 1:
            await asyncio.sleep(0)
        runner.release.set()
        await handler
        return runner, service, sent

    runner, service, sent = asyncio.run(scenario())
    assert runner.order == ["q"] and service.in_flight == 0
    assert sent == ["http.response.start", "http.response.body"]  # the final event, then the end


def test_server_sent_events_carry_their_headers_and_end_with_the_final_event():
    async def scenario():
        runner, service, app = service_and_app()
        runner.release.set()
        return await request(app, "POST", "/v1/envelope", [envelope_body("q")], {"accept": "text/event-stream"})

    status, headers, payload = asyncio.run(scenario())
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache" and "content-length" not in headers
    event, data = payload.decode().strip().split("\n")
    assert event == "event: final" and json.loads(data.removeprefix("data: "))["data"]["answer"] == "a"


def test_unknown_paths_are_404_and_wrong_methods_405_and_no_metrics_means_404():
    async def scenario():
        _, _, app = service_and_app()
        _, _, without_metrics = service_and_app(metrics=False)
        return [await request(app, "GET", "/nowhere"), await request(app, "GET", "/v1/envelope"),
                await request(app, "POST", "/healthz"), await request(without_metrics, "GET", "/metrics")]

    assert [status for status, _, _ in asyncio.run(scenario())] == [404, 405, 405, 404]


def test_the_lifespan_closes_the_runner_at_shutdown_only():
    async def scenario():
        runner, service, app = service_and_app()
        messages = [{"type": "lifespan.startup"}]
        sent = []
        shutdown = asyncio.Event()

        async def receive():
            if messages:
                return messages.pop(0)
            await shutdown.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message):
            sent.append(message["type"])

        task = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
        while not sent:
            await asyncio.sleep(0)
        closed_before = runner.closed
        shutdown.set()
        await task
        return closed_before, runner.closed, sent

    closed_before, closed_after, sent = asyncio.run(scenario())
    assert not closed_before and closed_after
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
