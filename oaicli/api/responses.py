"""The Responses API without I/O: request bodies from a conversation, streamed events read as happenings,
and the answer, tool calls and usage read out of a response object.

The caller owns the network: it posts `request_body(...)` to /responses, feeds each SSE event to a
`ResponseStream`, and when a stream breaks asks the stream where to resume (`resume_params()`).
"""

import json
import re
from dataclasses import dataclass

from oaicli.core.errors import NetworkError
from oaicli.core.errors import StreamError as StreamBroken  # this module's StreamError is the `error` event

# A stream that keeps dropping is given up after this many resumes (each one made progress or not).
MAX_RESUMES = 5
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
# A response in one of these states will not change again; `responses follow` stops there.
TERMINAL_STATUSES = ("completed", "failed", "cancelled", "incomplete")
SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def request_body(model: str, messages: list[dict], *, max_output_tokens: int | None = None,
                 reasoning_effort: str | None = None, reasoning_summary: str | None = None,
                 response_format: str | None = None, schema: dict | None = None, strict: bool | None = None,
                 store: bool | None = None, service_tier: str | None = None,
                 previous_response_id: str | None = None, conversation: str | None = None,
                 background: bool = False, stream: bool = False) -> dict:
    """The POST /responses body for a chat-style conversation (a list of {role, content} messages).

    Leading system messages become `instructions` (the Responses API does not carry them over
    between turns, so they are sent on every turn); the rest become `input` items with their roles.
    With `previous_response_id` or `conversation` the server holds the history, so `messages`
    should hold only the new turn."""
    if previous_response_id and conversation:
        raise ValueError("previous_response_id and conversation cannot be used together")
    instructions, history = split_instructions(messages)
    body: dict = {"model": model, "input": [input_item(m) for m in history]}
    if instructions:
        body["instructions"] = instructions
    optional = {"max_output_tokens": max_output_tokens, "store": store, "service_tier": service_tier,
                "previous_response_id": previous_response_id}
    body.update({key: value for key, value in optional.items() if value is not None})
    if conversation:
        body["conversation"] = conversation
    reasoning = reasoning_options(reasoning_effort, reasoning_summary)
    if reasoning:
        body["reasoning"] = reasoning
    text_format = text_format_for(response_format, schema, strict)
    if text_format:
        body["text"] = {"format": text_format}
    if background:
        body["background"] = True
    if stream:
        body["stream"] = True
    return body


def split_instructions(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """The leading system/developer messages joined (the instructions) and the messages after them."""
    count = 0
    while count < len(messages) and messages[count].get("role") in ("system", "developer"):
        count += 1
    texts = [content_text(m.get("content")) for m in messages[:count]]
    return ("\n\n".join(t for t in texts if t) or None), list(messages[count:])


def input_item(message: dict) -> dict:
    """A chat message as an input message item; a role the Responses API lacks (`tool`) is refused."""
    role = message.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise ValueError(f"a message with role {role!r} has no Responses input form")
    return {"type": "message", "role": role, "content": message.get("content") or ""}


def content_text(content) -> str:
    """Text of a message content: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or () if isinstance(part, dict))


def reasoning_options(effort: str | None, summary: str | None) -> dict:
    if effort is not None and effort not in REASONING_EFFORTS:
        raise ValueError(f"reasoning effort {effort!r} is not one of {', '.join(REASONING_EFFORTS)}")
    options = {"effort": effort, "summary": summary}
    return {key: value for key, value in options.items() if value is not None}


def text_format_for(response_format: str | None, schema: dict | None, strict: bool | None) -> dict | None:
    """`text.format`: a schema implies json_schema; json_object needs no schema; text is the default."""
    if schema is not None:
        if response_format not in (None, "json_schema"):
            raise ValueError(f"a schema needs the json_schema format, not {response_format}")
        spec = {"type": "json_schema", "name": schema_name(schema), "schema": schema}
        if strict is not None:
            spec["strict"] = strict
        return spec
    if response_format == "json_schema":
        raise ValueError("the json_schema format needs a schema")
    if response_format not in (None, *RESPONSE_FORMATS):
        raise ValueError(f"response format {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}")
    return {"type": response_format} if response_format not in (None, "text") else None


def schema_name(schema: dict) -> str:
    """The API wants a name of at most 64 letters, digits, _ or -: the schema's title when it has one."""
    name = SCHEMA_NAME.sub("_", str(schema.get("title") or "response"))[:64]
    return name or "response"


# ----- streamed events -----

@dataclass
class TextDelta:
    text: str
    output_index: int = 0


@dataclass
class ReasoningDelta:
    """A piece of a reasoning summary (shown on stderr, not part of the answer)."""
    text: str
    output_index: int = 0
    summary_index: int = 0


@dataclass
class RefusalDelta:
    text: str


@dataclass
class ToolCall:
    """A function call the model asked for: shown, never executed."""
    call_id: str
    name: str
    arguments: str


@dataclass
class StatusChanged:
    """response.created / queued / in_progress: the response exists (its id is known) and has this status."""
    status: str
    response: dict


@dataclass
class Completed:
    response: dict
    usage: "Usage"


@dataclass
class Failed:
    response: dict
    code: str | None
    message: str


@dataclass
class Incomplete:
    response: dict
    reason: str | None


@dataclass
class StreamError:
    """An `error` event: the stream ends without a response object."""
    code: str | None
    message: str
    param: str | None = None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0


STATUS_EVENTS = {"response.created", "response.queued", "response.in_progress"}


class ResponseStream:
    """Turns Responses SSE events into happenings, in order, and remembers where the stream got to.

    Events carry a `sequence_number`; the last one seen is where a broken stream resumes
    (`GET /responses/{id}?stream=true&starting_after=N`). An event at or before it (a server that
    replays) is ignored, so nothing is printed twice."""

    def __init__(self):
        self.response_id: str | None = None
        self.stored = True
        self.last_sequence: int | None = None
        self.outcome: Completed | Failed | Incomplete | StreamError | None = None
        self._text: list[str] = []

    def feed(self, event: dict, name: str | None = None) -> list:
        """One parsed event (its JSON data; `name` is the SSE event name when `type` is missing)."""
        sequence = event.get("sequence_number")
        if isinstance(sequence, int):
            if self.last_sequence is not None and sequence <= self.last_sequence:
                return []
            self.last_sequence = sequence
        kind = event.get("type") or name
        response = event.get("response")
        if isinstance(response, dict):
            self._note(response)
        handler = HANDLERS.get(kind)
        return handler(self, event) if handler else []

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def text(self) -> str:
        """The answer streamed so far."""
        return "".join(self._text)

    def resume_params(self) -> dict | None:
        """Query parameters to pick a broken stream up where it stopped, or None when it cannot be:
        it ended, the response is not stored, or no event with an id and a sequence number arrived."""
        if self.finished or not self.stored or not self.response_id or self.last_sequence is None:
            return None
        return {"stream": "true", "starting_after": self.last_sequence}

    def resume_path(self) -> str | None:
        return f"/responses/{self.response_id}" if self.resume_params() is not None else None

    def _note(self, response: dict) -> None:
        self.response_id = response.get("id") or self.response_id
        if response.get("store") is False:
            self.stored = False

    def _status(self, event: dict) -> list:
        response = event.get("response") or {}
        return [StatusChanged(response.get("status") or event["type"].split(".", 1)[1], response)]

    def _text_delta(self, event: dict) -> list:
        self._text.append(event.get("delta") or "")
        return [TextDelta(event.get("delta") or "", event.get("output_index", 0))]

    def _reasoning_delta(self, event: dict) -> list:
        return [ReasoningDelta(event.get("delta") or "", event.get("output_index", 0),
                               event.get("summary_index", 0))]

    def _refusal_delta(self, event: dict) -> list:
        return [RefusalDelta(event.get("delta") or "")]

    def _item_done(self, event: dict) -> list:
        item = event.get("item") or {}
        return [tool_call_of(item)] if item.get("type") == "function_call" else []

    def _completed(self, event: dict) -> list:
        response = event.get("response") or {}
        self.outcome = Completed(response, usage_of(response))
        return [self.outcome]

    def _failed(self, event: dict) -> list:
        response = event.get("response") or {}
        error = response.get("error") or {}
        self.outcome = Failed(response, error.get("code"), error.get("message") or "the response failed")
        return [self.outcome]

    def _incomplete(self, event: dict) -> list:
        response = event.get("response") or {}
        self.outcome = Incomplete(response, (response.get("incomplete_details") or {}).get("reason"))
        return [self.outcome]

    def _error(self, event: dict) -> list:
        self.outcome = StreamError(event.get("code"), event.get("message") or "the stream reported an error",
                                   event.get("param"))
        return [self.outcome]


HANDLERS = {
    **{kind: ResponseStream._status for kind in STATUS_EVENTS},
    "response.output_text.delta": ResponseStream._text_delta,
    "response.reasoning_summary_text.delta": ResponseStream._reasoning_delta,
    "response.refusal.delta": ResponseStream._refusal_delta,
    "response.output_item.done": ResponseStream._item_done,
    "response.completed": ResponseStream._completed,
    "response.failed": ResponseStream._failed,
    "response.incomplete": ResponseStream._incomplete,
    "error": ResponseStream._error,
}


def feed_data(stream: ResponseStream, data: str, name: str | None) -> tuple[dict | None, list]:
    """One SSE event's data fed to `stream`: (its JSON when it is new, None for a keep-alive, `[DONE]` or
    an event replayed after a resume; the happenings)."""
    data = data.strip()
    if not data or data == "[DONE]":
        return None, []
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise StreamBroken(f"The server sent an event that is not JSON: {data[:80]!r}.") from exc
    sequence, last = payload.get("sequence_number"), stream.last_sequence
    replayed = isinstance(sequence, int) and last is not None and sequence <= last
    happenings = stream.feed(payload, name)
    return (None if replayed else payload), happenings


def feed_whole(stream: ResponseStream, response: dict) -> list:
    """A whole response object (a server that ignored stream=true) fed to `stream` as its status event."""
    return stream.feed({"type": f"response.{response.get('status', 'completed')}", "response": response})


def resumes(stream: ResponseStream, notice):
    """After the first request's events were read into `stream`: (path, query) of each GET that picks the
    stream up after its last event, until it has finished. The real API breaks a dropped stream with a
    protocol error, the fake with a clean EOF: both leave the stream unfinished, and both resume the same
    way. Raises StreamError when it cannot be resumed (not stored) or after MAX_RESUMES."""
    count = 0
    while not stream.finished:
        params = stream.resume_params()
        if params is None or count >= MAX_RESUMES:
            why = "it was not stored" if not stream.stored else "it could not be resumed"
            raise StreamBroken(f"The response stream ended before the response did, and {why}.",
                               "Nothing was saved; try again.")
        count += 1
        notice(f"The stream dropped; resuming response {stream.response_id} after event {stream.last_sequence}.")
        yield stream.resume_path(), params


def final_response(outcome) -> dict:
    """The response object of a finished stream; a failure or an `error` event raises (exit 5)."""
    if isinstance(outcome, StreamError):
        raise StreamBroken(f"The server reported an error mid-stream: {outcome.message}"
                           f"{f' ({outcome.code})' if outcome.code else ''}.", "Nothing was saved; try again.")
    if isinstance(outcome, Failed):
        raise NetworkError(f"The response failed: {outcome.message.rstrip('.')}"
                           f"{f' ({outcome.code})' if outcome.code else ''}.", "Nothing was saved; try again.")
    return outcome.response


# ----- a whole response object -----

def output_text(response: dict) -> str:
    """The answer: every output_text part of the assistant's message items, in order."""
    return "".join(part.get("text", "") for item in response.get("output") or () if item.get("type") == "message"
                   for part in item.get("content") or () if part.get("type") == "output_text")


def reasoning_summary(response: dict) -> str:
    """The reasoning summaries of a response, one paragraph per summary part."""
    return "\n\n".join(part.get("text", "") for item in response.get("output") or ()
                       if item.get("type") == "reasoning" for part in item.get("summary") or ())


def refusal(response: dict) -> str | None:
    texts = [part.get("refusal", "") for item in response.get("output") or () if item.get("type") == "message"
             for part in item.get("content") or () if part.get("type") == "refusal"]
    return "".join(texts) if texts else None


def tool_calls(response: dict) -> list[ToolCall]:
    return [tool_call_of(item) for item in response.get("output") or () if item.get("type") == "function_call"]


def tool_call_of(item: dict) -> ToolCall:
    return ToolCall(item.get("call_id") or item.get("id") or "", item.get("name") or "", item.get("arguments") or "")


def usage_of(response: dict) -> Usage:
    """Token counts of a response; zeros when the server sent none (usage is null until it completes)."""
    usage = response.get("usage") or {}
    return Usage(input_tokens=usage.get("input_tokens") or 0, output_tokens=usage.get("output_tokens") or 0,
                 reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
                 cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
                 total_tokens=usage.get("total_tokens") or 0)


def as_completion(response: dict) -> dict:
    """The answer in the chat.completion shape the store and the envelope read, with `response_id`."""
    counts = usage_of(response)
    usage = None
    if response.get("usage"):
        usage = {"prompt_tokens": counts.input_tokens, "completion_tokens": counts.output_tokens,
                 "total_tokens": counts.total_tokens,
                 "completion_tokens_details": {"reasoning_tokens": counts.reasoning_tokens}}
    finish = "length" if response.get("status") == "incomplete" else "stop"
    return {"id": response.get("id"), "object": "chat.completion", "created": response.get("created_at"),
            "model": response.get("model"), "response_id": response.get("id") if response.get("store") is not False
            else None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": output_text(response)},
                         "finish_reason": finish}], "usage": usage}
