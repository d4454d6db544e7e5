"""The ASGI app: POST /v1/envelope, GET /healthz and GET /metrics, with the token, the limits and per-context
order, written against the ASGI interface itself (uvicorn calls it directly).

Three routes need no framework: Starlette's routing, request and response objects and middleware stack cost
~7% of serve's CPU per answer under load (py-spy, 100 clients), for nothing these routes use."""

import asyncio
import contextlib
import hmac
import json
import time

from oaicli.core.errors import redact
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
        self._tasks: set[asyncio.Task] = set()  # answers whose client may be gone, running to their end

    def keep(self, task: asyncio.Task) -> None:
        """Hold a reference to a task nobody awaits, so it is not collected while it runs."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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


JSON_TYPE = b"application/json"
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]


def create_app(service: Service):
    """The ASGI callable: routes by method and path, and runs the lifespan (closing the runner at the end)."""
    routes = {("POST", "/v1/envelope"): _envelope, ("GET", "/healthz"): _healthz}
    if service.metrics is not None:
        routes[("GET", "/metrics")] = _metrics

    async def app(scope, receive, send) -> None:
        if scope["type"] == "http":
            handler = routes.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(service, scope, receive, send)
            elif any(path == scope["path"] for _, path in routes):
                await _send(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8")
            else:
                await _send(send, 404, b"Not Found", b"text/plain; charset=utf-8")
        elif scope["type"] == "lifespan":
            await _lifespan(service, receive, send)
    return app


async def _envelope(service: Service, scope, receive, send) -> None:
    started = time.perf_counter()
    headers = _headers(scope)
    if await _refused(service, headers, send):
        service.observe(401, started)
        return
    raw = await _read_body(receive, headers, service.max_body)
    if raw is None:
        service.observe(413, started)
        await _send_json(send, _error(Codes.TOO_LONG, f"the request body is over the limit of {service.max_body} "
                                                      "bytes (--max-body)"), 413)
        return
    parsed = service.parser.parse(raw)
    if isinstance(parsed, dict):
        service.observe(status_for(parsed, None), started)
        await _send_json(send, parsed, status_for(parsed, None))
        return
    ticket = service.join(parsed)
    if b"text/event-stream" in headers.get(b"accept", b""):
        await _stream(service, parsed, ticket, started, send)
        return
    response, status, queued, upstream = await service.answer(parsed, ticket)
    service.observe(status, started, queued, upstream)
    await _send_json(send, response, status, _timing(started, queued, upstream))


async def _healthz(service: Service, scope, receive, send) -> None:
    await _send_json(send, {"status": "ok", "version": VERSION, "received": service.received,
                            "in_flight": service.in_flight, "contexts": len(service.queues)}, 200)


async def _metrics(service: Service, scope, receive, send) -> None:
    """Prometheus text; behind the token when there is one (it tells who is using the server how much)."""
    if not await _refused(service, _headers(scope), send):
        await _send(send, 200, service.metrics.render().encode(), METRICS_TYPE.encode())


async def _lifespan(service: Service, receive, send) -> None:
    """Start-up, then shutdown. A runner whose store lives on this loop (PostgreSQL's async pool) opens it
    at start-up and closes it last."""
    serving = getattr(service.runner, "serving", None)
    async with contextlib.AsyncExitStack() as stack:
        await receive()  # lifespan.startup
        try:
            if serving is not None:
                await stack.enter_async_context(serving())
        except Exception as exc:  # uvicorn logs the message and exits
            await send({"type": "lifespan.startup.failed", "message": redact(f"{exc.__class__.__name__}: {exc}")})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        # uvicorn has finished (or given up waiting for) the requests in flight:
        # answers still coming in from now on are not saved.
        await asyncio.get_running_loop().run_in_executor(None, service.runner.close)
    await send({"type": "lifespan.shutdown.complete"})


def _headers(scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (ASGI servers give names in lower case)."""
    return dict(scope["headers"])


async def _refused(service: Service, headers: dict, send) -> bool:
    """Whether the request lacks the token (then the 401 is sent)."""
    if service.token is None:
        return False
    scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), service.token):
        return False
    await _send_json(send, _error(Codes.UNAUTHORIZED, "a valid bearer token is required (Authorization: Bearer TOKEN)"),
                     401, {"WWW-Authenticate": "Bearer"})
    return True


async def _read_body(receive, headers: dict, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed the limit (nothing more is read). A client that
    went away leaves an empty body (answered with a 400 nobody reads)."""
    declared = headers.get(b"content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _stream(service: Service, parsed, ticket, started: float, send) -> None:
    """Server-sent events: `delta` events as the answer arrives, then one `final` event.

    An answer that fails before its first delta is an ordinary JSON error with its HTTP status. The answer
    runs to its end (and is saved) even if the client goes away; sends to a gone client do nothing."""
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

    service.keep(asyncio.ensure_future(work()))
    kind, item = await queue.get()
    if kind == "final" and item[1] != 200:
        response, status, queued, upstream = item
        await _send_json(send, response, status, _timing(started, queued, upstream))
        return
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    while kind != "final":
        await send({"type": "http.response.body", "body": _event("delta", item), "more_body": True})
        kind, item = await queue.get()
    await send({"type": "http.response.body", "body": _event("final", item[0]), "more_body": False})


def _event(name: str, obj: dict) -> bytes:
    return f"event: {name}\ndata: {_dumps(obj)}\n\n".encode()


def _error(code: int, message: str) -> dict:
    return envelope_response(code, message)


def _timing(started: float, queued: float, upstream: float) -> dict:
    """Server-Timing lets a client (and benchmarks/serve.py) separate our time from the upstream's."""
    total = time.perf_counter() - started
    return {"Server-Timing": f"queue;dur={queued * 1000:.2f}, upstream;dur={upstream * 1000:.2f}, "
                             f"total;dur={total * 1000:.2f}"}


async def _send_json(send, obj: dict, status: int, headers: dict | None = None) -> None:
    await _send(send, status, _dumps(obj).encode(), JSON_TYPE, headers)


async def _send(send, status: int, body: bytes, content_type: bytes, headers: dict | None = None) -> None:
    """One whole response; its length given, so it is not sent chunked."""
    raw = [(b"content-length", str(len(body)).encode()), (b"content-type", content_type)]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _dumps(obj: dict) -> str:
    """JSON as UTF-8 text; a string that cannot be UTF-8 (a lone surrogate from an upstream answer) is
    escaped instead of failing the response."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(obj)
    return text
