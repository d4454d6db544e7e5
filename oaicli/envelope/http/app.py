"""The ASGI app: POST /v1/envelope and GET /healthz, with the token, the limits and per-context order."""

import asyncio
import contextlib
import hmac
import json
import time
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from oaicli.envelope.engine import VERSION, Codes
from oaicli.envelope.engine import response as envelope_response
from oaicli.envelope.http.exchange import status_for
from oaicli.envelope.http.metrics import CONTENT_TYPE as METRICS_TYPE
from oaicli.envelope.http.metrics import Metrics
from oaicli.envelope.http.queues import ContextQueues

STOPPING = "the server is stopping and gave up on this answer; it was not saved: send the question again"


class Service:
    """What every request shares: the token, the limits, the context queues and the runner that answers
    (on the event loop here: answer.py, or worker processes: see procs.py)."""

    def __init__(self, runner, parser, *, token: str | None, max_body: int, metrics: bool = True):
        self.runner = runner
        self.parser = parser
        self.token = token.encode() if token else None
        self.max_body = max_body
        self.queues = ContextQueues()
        self.in_flight = 0
        self.received = 0
        # Set once shutdown gives up on the answers in flight (past --shutdown-timeout, or a second
        # signal): each of them is then answered with the envelope's 503 by its own handler.
        self.abandoned = asyncio.Event()
        self.metrics = Metrics(lambda: self.in_flight, lambda: len(self.queues)) if metrics else None

    def observe(self, status: int, started: float, queued: float = 0.0, upstream: float = 0.0) -> None:
        if self.metrics is not None:
            self.metrics.observe(status, time.perf_counter() - started, queued, upstream)

    def join(self, parsed):
        """Take the request's place in its context's queue. A plain call, made by the handler before its
        first await, so the order of arrival holds whether the answer is streamed or not."""
        self.received += 1
        return self.queues.join(parsed.context_key)

    async def answer(self, parsed, ticket, on_delta=None) -> tuple[dict, int, float, float]:
        """Wait for the context's turn, then answer: (response, HTTP status, queued, upstream seconds)."""
        self.in_flight += 1
        try:
            work = asyncio.ensure_future(self._answer_in_turn(parsed, ticket, on_delta))
            given_up = asyncio.ensure_future(self.abandoned.wait())
            await asyncio.wait((work, given_up), return_when=asyncio.FIRST_COMPLETED)
            given_up.cancel()
            if work.done():
                result = work.result()
                # An answer is kept; a failure in the same instant as giving up (a worker process told
                # to stop) is the shutdown's doing: the 503 says so.
                if result[1] == 200 or not self.abandoned.is_set():
                    return result
            return envelope_response(Codes.INTERNAL, STOPPING, parsed.ids), 503, 0.0, 0.0
        finally:
            self.in_flight -= 1

    async def _answer_in_turn(self, parsed, ticket, on_delta):
        arrived = time.perf_counter()
        async with ticket:
            queued = time.perf_counter() - arrived
            response, status, upstream = await self.runner.run(parsed, on_delta)
        return response, status, queued, upstream

    def abandon(self) -> None:
        """Stop waiting for the answers in flight: no more saves, and every waiting client gets the 503."""
        self.abandoned.set()
        asyncio.get_running_loop().run_in_executor(None, self.runner.close)


def create_app(service: Service) -> Starlette:
    async def envelope(request: Request) -> Response:
        started = time.perf_counter()
        refused = _refusal(service, request)
        if refused is not None:
            service.observe(refused.status_code, started)
            return refused
        raw = await _read_body(request, service.max_body)
        if raw is None:
            service.observe(413, started)
            return _json(_error(Codes.TOO_LONG, f"the request body is over the limit of {service.max_body} "
                                                "bytes (--max-body)"), 413)
        parsed = service.parser.parse(raw)
        if isinstance(parsed, dict):
            service.observe(status_for(parsed, None), started)
            return _json(parsed, status_for(parsed, None))
        ticket = service.join(parsed)
        if "text/event-stream" in request.headers.get("accept", ""):
            return await _stream(service, parsed, ticket, started)
        response, status, queued, upstream = await service.answer(parsed, ticket)
        service.observe(status, started, queued, upstream)
        return _json(response, status, _timing(started, queued, upstream))

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "version": VERSION, "received": service.received,
                      "in_flight": service.in_flight, "contexts": len(service.queues)}, 200)

    async def metrics(request: Request) -> Response:
        """Prometheus text; behind the token when there is one (it tells who is using the server how much)."""
        refused = _refusal(service, request)
        if refused is not None:
            return refused
        return Response(service.metrics.render(), 200, media_type=METRICS_TYPE)

    routes = [Route("/v1/envelope", envelope, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    if service.metrics is not None:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    return Starlette(routes=routes, lifespan=_lifespan(service))


def _lifespan(service: Service):
    @asynccontextmanager
    async def lifespan(app):
        # A runner whose store lives on this loop (PostgreSQL's async pool) opens it here and closes it last.
        serving = getattr(service.runner, "serving", None)
        async with serving() if serving else contextlib.nullcontext():
            yield
            # uvicorn has finished (or given up waiting for) the requests in flight:
            # answers still coming in from now on are not saved.
            await anyio.to_thread.run_sync(service.runner.close)
    return lifespan


def _refusal(service: Service, request: Request) -> Response | None:
    if service.token is None:
        return None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), service.token):
        return None
    return _json(_error(Codes.UNAUTHORIZED, "a valid bearer token is required (Authorization: Bearer TOKEN)"),
                 401, {"WWW-Authenticate": "Bearer"})


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed the limit (nothing more is read)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


async def _stream(service: Service, parsed, ticket, started: float) -> Response:
    """Server-sent events: `delta` events as the answer arrives, then one `final` event.

    An answer that fails before its first delta is an ordinary JSON error with its HTTP status."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def on_delta(line: dict) -> None:  # called from a worker thread (or the thread reading a worker process)
        loop.call_soon_threadsafe(queue.put_nowait, ("delta", line))

    async def work() -> None:
        try:
            result = await service.answer(parsed, ticket, on_delta)
        except Exception as exc:  # a bug in the server itself: still one final object
            result = service.parser.fail(parsed, exc), 500, 0.0, 0.0
        service.observe(result[1], started, result[2], result[3])
        queue.put_nowait(("final", result))

    task = asyncio.ensure_future(work())  # runs to the end (and saves) even if the client goes away
    kind, item = await queue.get()
    if kind == "final":
        response, status, queued, upstream = item
        if status != 200:
            return _json(response, status, _timing(started, queued, upstream))

    async def events():
        nonlocal kind, item
        while True:
            if kind == "final":
                yield _event("final", item[0])
                return
            yield _event("delta", item)
            kind, item = await queue.get()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    response = StreamingResponse(events(), media_type="text/event-stream", headers=headers)
    response.task = task  # keep a reference so the task is not collected while it runs
    return response


def _event(name: str, obj: dict) -> bytes:
    return f"event: {name}\ndata: {_dumps(obj)}\n\n".encode()


def _error(code: int, message: str) -> dict:
    return envelope_response(code, message)


def _timing(started: float, queued: float, upstream: float) -> dict:
    """Server-Timing lets a client (and benchmarks/serve.py) separate our time from the upstream's."""
    total = time.perf_counter() - started
    return {"Server-Timing": f"queue;dur={queued * 1000:.2f}, upstream;dur={upstream * 1000:.2f}, "
                             f"total;dur={total * 1000:.2f}"}


def _json(obj: dict, status: int, headers: dict | None = None) -> Response:
    return Response(_dumps(obj).encode(), status, headers, media_type="application/json")


def _dumps(obj: dict) -> str:
    """JSON as UTF-8 text; a string that cannot be UTF-8 (a lone surrogate from an upstream answer) is
    escaped instead of failing the response."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(obj)
    return text
