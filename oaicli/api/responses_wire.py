"""Responses on the wire: one POST /responses (streamed, and resumed when a stored stream drops), and
following or cancelling a background response.

The event reading itself is api/responses.py's (sans-I/O); this module owns the requests.
"""

import json
import time

import httpx

from oaicli.api import responses as r
from oaicli.api.polling import Backoff, ended, pause
from oaicli.api.sse import SSEParser
from oaicli.core.errors import NetworkError, StreamError

# A stream that keeps dropping is given up after this many resumes (each one made progress or not).
MAX_RESUMES = 5
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
        resumes = 0
        # The real API breaks a dropped stream with a protocol error, the fake with a clean EOF: both
        # leave the stream unfinished, and both resume the same way.
        while not stream.finished:
            params = stream.resume_params()
            if params is None or resumes >= MAX_RESUMES:
                why = "it was not stored" if not stream.stored else "it could not be resumed"
                raise StreamError(f"The response stream ended before the response did, and {why}.",
                                  "Nothing was saved; try again.")
            resumes += 1
            self.notice(f"The stream dropped; resuming response {stream.response_id} after event "
                        f"{stream.last_sequence}.")
            self.read(self.client.send("GET", stream.resume_path(), params=params), stream, on_happening)
        return final_response(stream.outcome)

    def read(self, response: httpx.Response, stream: r.ResponseStream, on_happening) -> None:
        """Feed one HTTP answer's events to `stream`; a connection that breaks just ends the read."""
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                whole = json.loads(response.read() or b"{}")  # a server that ignored stream=true
                for happening in stream.feed({"type": f"response.{whole.get('status', 'completed')}",
                                              "response": whole}):
                    on_happening(happening)
                return
            parser = SSEParser()
            for chunk in response.iter_bytes():
                for event in parser.feed(chunk):
                    self._dispatch(event, stream, on_happening)
            for event in parser.close():
                self._dispatch(event, stream, on_happening)
        except httpx.TransportError:
            return
        finally:
            response.close()

    def _dispatch(self, event, stream: r.ResponseStream, on_happening) -> None:
        data = event.data.strip()
        if not data or data == "[DONE]":
            return
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise StreamError(f"The server sent an event that is not JSON: {data[:80]!r}.") from exc
        sequence, last = payload.get("sequence_number"), stream.last_sequence
        replayed = isinstance(sequence, int) and last is not None and sequence <= last
        happenings = stream.feed(payload, event.event)
        if self.on_event is not None and not replayed:
            self.on_event(payload)
        for happening in happenings:
            on_happening(happening)


def final_response(outcome) -> dict:
    """The response object of a finished stream; a failure or an `error` event raises (exit 5)."""
    if isinstance(outcome, r.StreamError):
        raise StreamError(f"The server reported an error mid-stream: {outcome.message}"
                          f"{f' ({outcome.code})' if outcome.code else ''}.", "Nothing was saved; try again.")
    if isinstance(outcome, r.Failed):
        raise NetworkError(f"The response failed: {outcome.message.rstrip('.')}"
                           f"{f' ({outcome.code})' if outcome.code else ''}.", "Nothing was saved; try again.")
    return outcome.response


def follow(client, response_id: str, deadline: float | None, on_status, sleep=time.sleep) -> dict:
    """Poll a (background) response until it ends, calling `on_status(response)` on each change of status;
    the final response object. --timeout bounds the wait (exit 8)."""
    backoff = Backoff(MIN_DELAY, MAX_DELAY)
    while True:
        response = client.get(f"/responses/{response_id}")
        status = response.get("status")
        if backoff.saw(status):
            on_status(response)
        if status in r.TERMINAL_STATUSES or status is None:
            return response
        pause(deadline, backoff.delay, sleep, f"Response {response_id} is still {status}",
              f"Resume with `oaicli responses follow {response_id}`.")


def outcome(response: dict) -> None:
    """Raise the exit code `fine-tunes follow` uses for the way a response ended (0 when it completed)."""
    response_id = response.get("id")
    error = response.get("error") or {}
    reason = (response.get("incomplete_details") or {}).get("reason") or "no reason given"
    ended(response.get("status"), {
        "failed": f"Response {response_id} failed: {error.get('message') or 'no reason given'}.",
        "cancelled": f"Response {response_id} was cancelled.",
        "incomplete": f"Response {response_id} is incomplete ({reason})."})
