"""The API client for `serve`'s event loop: the same auth, retry policy, errors and SSE parsing as ApiClient,
awaited instead of blocking, so one loop answers every context with no thread per request.

httpcore's async pool does work quadratic in its size on every request and release
(`_assign_requests_to_connections`): one client of 256 connections cost 14 ms of CPU per request when
measured. So the connections are split over several small clients ("shards"), and a context always uses
the least busy shard, so no shard queues requests while another has idle connections.
"""

import asyncio
import contextlib
import time
from typing import AsyncIterator

import httpx

from oaicli.api.client import (
    auth_headers,
    check_base_url,
    describe,
    error_from_response,
    event_payload,
    json_document,
    route,
    verify_for,
    whole_answer,
)
from oaicli.api.retry import RetryPolicy
from oaicli.api.sse import SSEParser
from oaicli.core.errors import NetworkError, StreamError, redact

CONNECTIONS_PER_SHARD = 4


class AsyncApiClient:
    def __init__(self, settings, max_connections: int, echo=None, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.echo = echo or (lambda text: None)
        self.max_retries = settings.max_retries
        self.retry = RetryPolicy(self.max_retries, sleep=None, notice=None if settings.quiet else self.echo)
        check_base_url(settings)
        shards = max(1, -(-max_connections // CONNECTIONS_PER_SHARD))
        per_shard = -(-max_connections // shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0))
        self._busy = [0] * shards  # requests in flight on each shard
        self._shards = [httpx.AsyncClient(base_url=settings.base_url.rstrip("/"), headers=auth_headers(settings, settings.require_key()),
                                          timeout=timeout, verify=verify_for(settings.base_url),
                                          follow_redirects=True, limits=limits, transport=transport)
                        for _ in range(shards)]

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()

    @contextlib.contextmanager
    def _shard(self):
        """The least busy shard, counted busy until the request's response is closed."""
        index = self._busy.index(min(self._busy))
        self._busy[index] += 1
        try:
            yield self._shards[index]
        finally:
            self._busy[index] -= 1

    async def send(self, http: httpx.AsyncClient, path: str, body: dict | None, method: str = "POST",
                   params: dict | None = None) -> httpx.Response:
        """A request with the retry policy; the open response (the caller reads and closes it)."""
        path, params = route(self.settings, path, params, body)
        for attempt, last in self.retry.attempts():
            request = http.build_request(method, path, params=params, json=body)
            if self.settings.verbose:
                self.echo(redact(f"> {method} {request.url}"))
            started = time.monotonic()
            try:
                response = await http.send(request, stream=True)
            except httpx.TransportError as exc:
                if last or http.is_closed:
                    raise self._network_error(exc, method, request.url) from exc
                timed_out = isinstance(exc, httpx.TimeoutException)
                await asyncio.sleep(self.retry.pause(None, attempt, f"timed out ({exc.__class__.__name__})"
                                                     if timed_out else f"connection failed ({describe(exc)})"))
                continue
            if self.settings.verbose:  # a server or proxy may echo the key in any header: redacted
                self.echo(redact(f"< {response.status_code} {response.reason_phrase} in "
                                 f"{(time.monotonic() - started) * 1000:.0f} ms "
                                 f"(x-request-id: {response.headers.get('x-request-id', '-')})"))
            if response.status_code < 400:
                return response
            await response.aread()
            await close(response)
            if self.retry.retries(response.status_code, last):
                await asyncio.sleep(self.retry.pause(response, attempt, f"HTTP {response.status_code}"))
                continue
            raise error_from_response(response)
        raise AssertionError("unreachable")

    def _network_error(self, exc: httpx.TransportError, method: str, url) -> NetworkError:
        if isinstance(exc, httpx.TimeoutException):
            return NetworkError(f"{method} {url} timed out after {self.max_retries + 1} attempts.",
                                "Raise --timeout or try again later.")
        return NetworkError(f"Cannot reach {self.settings.base_url}: {describe(exc)}.",
                            "Check --base-url and your network or proxy settings.")

    async def post_json(self, path: str, body: dict):
        with self._shard() as http:
            response = await self.send(http, path, body)
            try:
                content = await response.aread()
            except httpx.TransportError as exc:
                raise NetworkError(f"The connection dropped while reading the answer: {exc}.",
                                   "Check the network and try again.") from exc
            finally:
                await close(response)
        return json_document(content, "POST", path) if content.strip() else {}

    @contextlib.asynccontextmanager
    async def open(self, method: str, path: str, body: dict | None = None, params: dict | None = None):
        """The open response of one request (streamed: the caller iterates it), closed on leaving."""
        with self._shard() as http:
            response = await self.send(http, path, body, method, params)
            try:
                yield response
            finally:
                await close(response)

    async def delete(self, path: str) -> None:
        async with self.open("DELETE", path) as response:
            await response.aread()

    async def stream_events(self, path: str, body: dict) -> AsyncIterator[dict]:
        """Each event's JSON as it arrives; `[DONE]` ends the stream, and a stream that ends without it
        raises StreamError. A server that ignores `stream` and answers one JSON document yields that."""
        with self._shard() as http:
            response = await self.send(http, path, body)
            async for event in self._events(response, path):
                yield event

    async def _events(self, response: httpx.Response, path: str) -> AsyncIterator[dict]:
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                yield whole_answer(await response.aread(), response.headers.get("content-type", ""), "POST", path)
                return
            parser = SSEParser()
            async for chunk in response.aiter_bytes():
                for event in parser.feed(chunk):
                    if event.data.strip() == "[DONE]":
                        return
                    if event.data.strip():
                        yield event_payload(event.data)
            for event in parser.close():
                if event.data.strip() == "[DONE]":
                    return
                if event.data.strip():
                    yield event_payload(event.data)
            raise StreamError("The stream ended before the server said it was done ([DONE] missing).",
                              "Nothing was saved; try again.")
        except httpx.TransportError as exc:
            raise StreamError(f"The connection dropped mid-stream: {describe(exc)}.",
                              "Nothing was saved; try again.") from exc
        finally:
            await close(response)


async def close(response: httpx.Response) -> None:
    """Close the response and drop its stream: httpx's response and its stream refer to each other, so
    without this every answer left a cycle of ~60 objects (request, URL, headers, pool entries) for the
    cycle collector, whose pauses stalled serve's loop ~100 times a second under 100 clients. The read
    content stays; a closed response never reads its stream again."""
    await response.aclose()
    response.stream = None
