"""Responses on the wire: one POST /responses (streamed, and resumed when a stored stream drops), and
following a background response (read from its stream as it goes, or polled).

The event reading itself is api/responses.py's (sans-I/O); this module owns the requests.
"""

import json
import time

import httpx

from oaicli.api import responses as r
from oaicli.api.polling import Backoff, ended, expire, pause
from oaicli.api.sse import SSEParser
from oaicli.core.errors import ApiError, StreamError

MIN_DELAY, MAX_DELAY = 1.0, 10.0


class ResponsesRequester:
    """Sends one Responses request; hands each happening (api/responses.py's dataclasses) to a callback
    and returns the final response object."""

    def __init__(self, client, notice=None):
        self.client = client
        self.notice = notice or (lambda text: None)
        self.on_event = None  # when set: each new event's JSON, as it arrives (--format jsonl)

    def __call__(self, body: dict, on_happening=None) -> dict:
        on_happening = on_happening or (lambda happening: None)
        if not body.get("stream"):
            return self.client.post("/responses", json=body)
        stream = r.ResponseStream()
        self.read(self.client.send("POST", "/responses", json=body), stream, on_happening)
        for path, params in r.resumes(stream, self.notice):
            self.read(self.client.send("GET", path, params=params), stream, on_happening)
        return r.final_response(stream.outcome)

    def read(self, response: httpx.Response, stream: r.ResponseStream, on_happening, deadline=None) -> None:
        """Feed one HTTP answer's events to `stream`; a connection that breaks just ends the read, and so
        does `deadline` (a time.monotonic() value) passing."""
        try:
            if not is_event_stream(response):
                whole = json.loads(response.read() or b"{}")  # a server that ignored stream=true
                for happening in r.feed_whole(stream, whole):
                    on_happening(happening)
                return
            parser = SSEParser()
            for chunk in response.iter_bytes():
                for event in parser.feed(chunk):
                    self._dispatch(event, stream, on_happening)
                if deadline is not None and time.monotonic() >= deadline:
                    return
            for event in parser.close():
                self._dispatch(event, stream, on_happening)
        except httpx.TransportError:
            return
        finally:
            response.close()

    def _dispatch(self, event, stream: r.ResponseStream, on_happening) -> None:
        payload, happenings = r.feed_data(stream, event.data, event.event)
        if self.on_event is not None and payload is not None:
            self.on_event(payload)
        for happening in happenings:
            on_happening(happening)


def is_event_stream(response: httpx.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


def follow(client, response_id: str, deadline: float | None, on_status, sleep=time.sleep, on_happening=None,
           notice=None) -> dict:
    """Wait for a (background) response to end, calling `on_status(response)` on each change of status;
    the final response object. With `on_happening`, a response still running is read from its stream
    (GET /responses/{id}?stream=true, resumed after a drop) as it goes; a server that will not stream
    it is polled. --timeout bounds the wait (exit 8)."""
    backoff = Backoff(MIN_DELAY, MAX_DELAY)
    hint = f"Resume with `oaicli responses follow {response_id}`."
    while True:
        response = client.get(f"/responses/{response_id}")
        status = response.get("status")
        if backoff.saw(status):
            on_status(response)
        if status in r.TERMINAL_STATUSES or status is None:
            return response
        if on_happening is not None:
            streamed = watch(client, response_id, deadline, on_happening, notice or (lambda text: None))
            on_happening = None  # streamed once: from here on (a refusal, an unresumable drop) it is polled
            if streamed is not None:
                if backoff.saw(streamed.get("status")):
                    on_status(streamed)
                return streamed
            expire(deadline, f"Response {response_id} is still {status}", hint)
            continue
        pause(deadline, backoff.delay, sleep, f"Response {response_id} is still {status}", hint)


def watch(client, response_id: str, deadline: float | None, on_happening, notice) -> dict | None:
    """A running response's events, from its first, as they come, resumed after each drop with
    starting_after (chat --api responses's resume, api/responses.resumes); the final response object, or
    None when the server refuses to stream it or the stream cannot be resumed (the caller polls)."""
    stream = r.ResponseStream()
    stream.response_id = response_id
    reader = ResponsesRequester(client)
    path = f"/responses/{response_id}"
    try:
        first = client.send("GET", path, params={"stream": "true"})
    except ApiError as exc:
        notice(f"The server does not stream response {response_id} (HTTP {exc.status}); polling it.")
        return None
    if not is_event_stream(first):  # a server that ignores stream=true answers the object: poll it
        first.close()
        return None
    reader.read(first, stream, on_happening, deadline)
    try:
        for resume_path, params in r.resumes(stream, notice):
            expire(deadline, f"Response {response_id} is still running",
                   f"Resume with `oaicli responses follow {response_id}`.")
            reader.read(client.send("GET", resume_path, params=params), stream, on_happening, deadline)
            if stream.last_sequence == params["starting_after"]:  # nothing new (cancelled?): ask its status
                return None
    except (StreamError, ApiError) as exc:
        notice(f"{exc.message.rstrip('.')}; polling response {response_id} instead.")
        return None
    return None if isinstance(stream.outcome, r.StreamError) else stream.outcome.response


def outcome(response: dict) -> None:
    """Raise the exit code `fine-tunes follow` uses for the way a response ended (0 when it completed)."""
    response_id = response.get("id")
    error = response.get("error") or {}
    reason = (response.get("incomplete_details") or {}).get("reason") or "no reason given"
    ended(response.get("status"), {
        "failed": f"Response {response_id} failed: {error.get('message') or 'no reason given'}.",
        "cancelled": f"Response {response_id} was cancelled.",
        "incomplete": f"Response {response_id} is incomplete ({reason})."})
