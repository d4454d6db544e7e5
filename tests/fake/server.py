"""A small OpenAI-compatible server on 127.0.0.1 for loopback tests and benchmarks.

Routes live in sibling modules (`tests/fake/models.py`, ...), each with `install(server)`.
Tests script failures with `server.queue(...)`: one-shot replies served before the route's own
handler, in order, for retries, error bodies and dropped connections.

A hostile server, for the tests that the key never appears: with `state["echo_key"]` every answer
carries the request's key in its headers (x-request-id among them) and every JSON object or stream
event in an `echo_key` field; with `state["fail_with_key"] = STATUS` every authorized request is
answered STATUS with an error text quoting the key as given, repr'd, JSON-escaped and URL-encoded.
"""

import importlib
import json
import re
import threading
import time
import traceback
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

EAGER_BODY = 16 << 20

ROUTE_MODULES = ["models", "chat", "images", "embeddings", "audio", "moderations", "files", "fine_tunes", "responses",
                 "batches", "conversations", "vector_stores"]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes = b""

    def json(self):
        return json.loads(self.body)


class Request:
    """What a route handler sees: method, path, query, headers and the body (read on demand)."""

    def __init__(self, handler: "Handler", method: str):
        self._handler = handler
        parts = urlsplit(handler.path)
        self.method = method
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.match: re.Match | None = None
        self._body: bytes | None = None

    @property
    def length(self) -> int:
        return int(self.headers.get("content-length") or 0)

    def iter_body(self, chunk_size: int = 1 << 20):
        """Stream the body without holding it (for large uploads)."""
        if self._body is not None:  # already read (small bodies are, to record them)
            for start in range(0, len(self._body), chunk_size):
                yield self._body[start:start + chunk_size]
            return
        remaining = self.length
        while remaining > 0:
            chunk = self._handler.rfile.read(min(chunk_size, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
        self._body = b""

    def abandon_body(self, after: int = 0) -> None:
        """Read `after` bytes of the body and never the rest: with `reply.drop()` the socket closes with
        data unread, so the client, still sending, sees the connection reset mid-upload."""
        self._handler.rfile.read(after)
        self._body = b""

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = self._handler.rfile.read(self.length) if self.length else b""
        return self._body

    def json(self):
        return json.loads(self.body or b"{}")

    def multipart(self) -> dict:
        """Parse a multipart/form-data body: name -> str, or (filename, bytes, content_type) for files."""
        boundary = re.search(r'boundary="?([^";]+)"?', self.headers.get("content-type", "")).group(1).encode()
        fields = {}
        for part in self.body.split(b"--" + boundary)[1:]:
            if part.startswith(b"--"):
                break
            head, _, content = part.partition(b"\r\n\r\n")
            content = content[:-2] if content.endswith(b"\r\n") else content
            head_text = head.decode("utf-8", errors="replace")
            name = re.search(r'name="([^"]*)"', head_text).group(1)
            filename = re.search(r'filename="([^"]*)"', head_text)
            ctype = re.search(r"content-type:\s*(\S+)", head_text, re.I)
            value = (filename.group(1), content, ctype.group(1) if ctype else None) if filename \
                else content.decode("utf-8")
            if name in fields:
                existing = fields[name] if isinstance(fields[name], list) else [fields[name]]
                fields[name] = existing + [value]
            else:
                fields[name] = value
        return fields


class Reply:
    """Writes answers: JSON, OpenAI errors, SSE streams, raw bytes, or a dropped connection."""

    def __init__(self, handler: "Handler", echo_key: str | None = None):
        self._handler = handler
        self.sent = False
        self.echo_key = echo_key  # the request's key, to echo back (state["echo_key"])

    def _head(self, status: int, content_type: str, length: int | None, headers: dict | None = None):
        self._handler.send_response(status)
        self._handler.send_header("Content-Type", content_type)
        self._handler.send_header("x-request-id", self.echo_key or f"req_{id(self._handler):x}")
        if self.echo_key:
            self._handler.send_header("x-echoed-authorization", f"Bearer {self.echo_key}")
        if length is not None:
            self._handler.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self._handler.send_header(name, str(value))
        self._handler.end_headers()
        self.sent = True

    def json(self, obj, status: int = 200, headers: dict | None = None):
        obj = self.echoed(obj)
        body = json.dumps(obj, ensure_ascii=False).encode()
        self._head(status, "application/json", len(body), headers)
        self._handler.wfile.write(body)

    def error(self, status: int, message: str, type: str = "invalid_request_error", code=None,
              headers: dict | None = None, param=None):
        self.json({"error": {"message": message, "type": type, "param": param, "code": code}}, status, headers)

    def echoed(self, obj):
        """A JSON object or event with the request's key in it, in echo mode."""
        return {**obj, "echo_key": self.echo_key} if self.echo_key and isinstance(obj, dict) else obj

    def raw(self, status: int, body: bytes, content_type: str = "text/plain", headers: dict | None = None):
        self._head(status, content_type, len(body), headers)
        self._handler.wfile.write(body)

    def sse(self, events, delay: float = 0.0, done: bool = True, drop_after: int | None = None,
            raw_chunks=None):
        """Stream events (dicts or strings) as `data:` lines; optionally drop the connection mid-way."""
        self._head(200, "text/event-stream", None, {"Cache-Control": "no-cache", "Connection": "close"})
        self._handler.close_connection = True
        out = self._handler.wfile
        if raw_chunks is not None:
            for chunk in raw_chunks:
                out.write(chunk)
                out.flush()
                time.sleep(delay)
            return
        for index, event in enumerate(events):
            if drop_after is not None and index >= drop_after:
                self.drop()
                return
            data = event if isinstance(event, str) else json.dumps(self.echoed(event), ensure_ascii=False)
            out.write(f"data: {data}\n\n".encode())
            out.flush()
            if delay:
                time.sleep(delay)
        if done:
            out.write(b"data: [DONE]\n\n")
        out.flush()

    def stream_bytes(self, total: int, content_type: str = "application/octet-stream", drop_at: int | None = None,
                     chunk: bytes = b"x" * (1 << 20)):
        self._head(200, content_type, total)
        sent = 0
        while sent < total:
            piece = chunk[: total - sent]
            if drop_at is not None and sent + len(piece) > drop_at:
                self._handler.wfile.write(piece[: drop_at - sent])
                self.drop()
                return
            self._handler.wfile.write(piece)
            sent += len(piece)

    def drop(self):
        """Close the socket without (finishing) an answer."""
        self._handler.close_connection = True
        self.sent = True
        try:
            self._handler.wfile.flush()
        except OSError:
            pass
        import socket
        try:
            self._handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@dataclass
class Scripted:
    """A one-shot reply queued by a test."""
    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    raw: bytes | None = None
    content_type: str = "application/json"


class FakeOpenAI:
    def __init__(self):
        self.routes: list[tuple[str, re.Pattern, object]] = []
        self.requests: list[Recorded] = []
        self.queued: dict[tuple[str, str], deque] = defaultdict(deque)
        self.state: dict = {}
        # What went wrong inside the server's threads (a client that hung up, a route that raised), as
        # formatted tracebacks: the server never writes to the process's stderr, which CliRunner swaps
        # for the test's own while a command runs, so a stray line there would fail an unrelated assertion.
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        for name in ROUTE_MODULES:
            importlib.import_module(f"tests.fake.{name}").install(self)

    def route(self, method: str, pattern: str):
        def register(handler):
            self.routes.append((method, re.compile(f"^{pattern}$"), handler))
            return handler
        return register

    def queue(self, method: str, path: str, *replies: Scripted):
        self.queued[(method, path)].extend(replies)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (path is None or r.path == path)]

    tls = None  # an ssl.SSLContext (server side) set before start() serves HTTPS

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}/v1"

    def start(self) -> "FakeOpenAI":
        server = self

        class BoundHandler(Handler):
            fake = server

        # The listen backlog is fixed when the server activates, so it is raised before that: with
        # the default of 5, concurrent clients lose SYNs and wait a second or more to connect.
        self._httpd = QuietHTTPServer(("127.0.0.1", 0), BoundHandler, bind_and_activate=False)
        self._httpd.errors = self.errors
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 1024
        self._httpd.server_bind()
        self._httpd.server_activate()
        if self.tls:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        # A short poll interval: stop() waits for it, and every loopback test stops a server.
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class QuietHTTPServer(ThreadingHTTPServer):
    """socketserver prints a request's exception to sys.stderr; this one keeps it in `errors`."""

    errors: list[str]

    def handle_error(self, request, client_address):
        self.errors.append(traceback.format_exc())


def _key_of(request: Request) -> str | None:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip() or request.headers.get("api-key")


class Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, every answer on a kept-alive
    # connection waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        # http.server logs each request and each protocol error to sys.stderr; only errors are kept.
        pass

    def log_error(self, format, *args):
        self.fake.errors.append(format % args)

    def _dispatch(self, method: str):
        request = Request(self, method)
        reply = Reply(self, _key_of(request) if self.fake.state.get("echo_key") else None)
        scripted = self._next_scripted(method, request.path)
        if scripted is not None:
            self._record(request, request.body)
            return self._play(scripted, reply)
        for route_method, pattern, handler in self.fake.routes:
            match = pattern.match(request.path)
            if route_method == method and match:
                request.match = match
                # Recorded before answering: a test looks at the calls as soon as its client has the answer.
                # Bodies up to EAGER_BODY are read for that first; bigger ones stay streamable (iter_body).
                eager = request.length <= EAGER_BODY
                recorded = self._record(request, request.body if eager else b"")
                if getattr(handler, "public", False) or self._authorized(request, reply):
                    if self.fake.state.get("fail_with_key"):
                        self._fail_with_key(request, reply)
                    else:
                        handler(request, reply)
                if not eager:
                    recorded.body = request.body
                return
        self._record(request, request.body)
        reply.error(404, f"Unknown path {method} {request.path}", code="unknown_url")

    def _fail_with_key(self, request: Request, reply: Reply):
        key = _key_of(request)
        reply.error(self.fake.state["fail_with_key"],
                    f"Incorrect API key provided: {key}. As repr {key!r}, as bytes {key.encode()!r}, "
                    f"as JSON {json.dumps(key)}, URL-encoded {quote(key, safe='')}.", code="invalid_api_key")

    def _authorized(self, request: Request, reply: Reply) -> bool:
        """Like OpenAI: no key is a 401; with `state["valid_keys"]` set, so is any other key (echoed back)."""
        key = _key_of(request)
        if not key:
            reply.error(401, "You didn't provide an API key.", code=None)
            return False
        valid = self.fake.state.get("valid_keys")
        if valid is not None and key not in valid:
            reply.error(401, f"Incorrect API key provided: {key}.", code="invalid_api_key")
            return False
        return True

    def _record(self, request: Request, body: bytes) -> Recorded:
        recorded = Recorded(request.method, request.path, request.query, request.headers, body)
        with self.fake.lock:
            self.fake.requests.append(recorded)
        return recorded

    def _next_scripted(self, method: str, path: str):
        with self.fake.lock:
            queue = self.fake.queued.get((method, path))
            return queue.popleft() if queue else None

    def _play(self, scripted: Scripted, reply: Reply):
        if scripted.delay:
            time.sleep(scripted.delay)
        if scripted.drop:
            return reply.drop()
        if scripted.raw is not None:
            return reply.raw(scripted.status, scripted.raw, scripted.content_type, scripted.headers)
        return reply.json(scripted.body if scripted.body is not None else {}, scripted.status, scripted.headers)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")
