"""Fake /v1/responses: typed event streams, stored responses, resuming a stream, background responses, cancel.

A response answers `state["responses_answer"](body)` when set, else "echo: <last user text>"; its text
streams as one `response.output_text.delta` per word, after a reasoning summary when the body asks for
`reasoning.summary`, and before a function call when `state["responses_tool_call"]` is a
(name, arguments) pair. Every event is kept with its `sequence_number`, so
`GET /v1/responses/{id}?stream=true&starting_after=N` replays what followed event N.
Knobs in `server.state`:
- `responses_drop_after` ([n, ...]): the next streams (POST or GET) each drop the connection after n events;
- `responses_fail` (a message): the response fails (`response.failed`) halfway through its text;
- `responses_error` ((code, message)): an `error` event halfway through its text, and the stream ends;
- `responses_status` ((status, message)): the next POST answers that HTTP error instead;
- `responses_polls_per_step`: reads of a background response per status step (default 1):
  queued -> in_progress -> completed;
- `responses_stream_get`: how `GET /v1/responses/{id}?stream=true` is answered instead of streaming:
  "ignore" (the response object, as a server without resumable streams does) or (status, message);
- `responses_stream_pause`: seconds the streams wait after each event (a stalled stream);
- `responses_cancel_while_streaming`: the next GET stream cancels its response (as another client's
  `responses cancel` would): it carries the status events only and ends, with no terminal event.
A `max_output_tokens` below the answer's word count ends it `incomplete` (reason max_output_tokens).
"""

import itertools
import json
import time

from tests.fake.records import finder

_ids = itertools.count(1)
BACKGROUND_STEPS = ("queued", "in_progress", "completed")
TERMINAL = {"completed", "failed", "cancelled", "incomplete"}
STATUS_EVENTS = {"response.queued", "response.created", "response.in_progress"}


def default_answer(body: dict) -> str:
    items = body.get("input")
    if isinstance(items, str):
        return f"echo: {items}"
    users = [item for item in items or () if item.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content)
    return f"echo: {content}"


def words(text: str) -> list[str]:
    pieces = text.split(" ")
    return [w + (" " if i < len(pieces) - 1 else "") for i, w in enumerate(pieces)]


def _usage(body: dict, answer: str, reasoning: bool) -> dict:
    input_tokens = max(1, len(json.dumps(body.get("input", ""))) // 4)
    reasoning_tokens = 64 if reasoning else 0
    output_tokens = len(answer.split()) + reasoning_tokens
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens}


def new_response(body: dict, number: int) -> dict:
    return {"id": f"resp_{number:06d}", "object": "response", "created_at": int(time.time()),
            "status": "in_progress", "background": bool(body.get("background")), "completed_at": None,
            "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": body.get("model", "gpt-5-mini"),
            "output": [], "previous_response_id": body.get("previous_response_id"),
            "conversation": {"id": body["conversation"]} if body.get("conversation") else None,
            "reasoning": body.get("reasoning"), "service_tier": body.get("service_tier", "default"),
            "store": body.get("store", True), "text": body.get("text", {"format": {"type": "text"}}),
            "tools": body.get("tools", []), "usage": None, "metadata": body.get("metadata", {})}


class Script:
    """Builds one response's events in order, numbering them, and the final response object beside them."""

    def __init__(self, response: dict):
        self.response = response
        self.events: list[dict] = []

    def emit(self, kind: str, **fields) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def snapshot(self, status: str) -> dict:
        return json.loads(json.dumps({**self.response, "status": status}))

    def item(self, item: dict, deltas) -> None:
        """An output item: added, its deltas (a callable emitting them), done."""
        index = len(self.response["output"])
        self.emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        deltas(index)
        self.response["output"].append({**item, "status": "completed"})
        self.emit("response.output_item.done", output_index=index, item=self.response["output"][-1])


def build(state: dict, body: dict, number: int) -> Script:
    """Every event of one response, and its final state (in `script.response`)."""
    script = Script(new_response(body, number))
    if body.get("background"):
        script.emit("response.queued", response=script.snapshot("queued"))
    script.emit("response.created", response=script.snapshot("in_progress"))
    script.emit("response.in_progress", response=script.snapshot("in_progress"))
    summary = (body.get("reasoning") or {}).get("summary")
    if summary:
        _reasoning(script, f"Thinking about the question ({summary} summary).")
    answer = state.get("responses_answer", default_answer)(body)
    pieces = words(answer)
    limit = body.get("max_output_tokens")
    cut = min(len(pieces), limit) if limit else len(pieces)
    if state.get("responses_fail") or state.get("responses_error"):
        cut = len(pieces) // 2
    if not _message(script, pieces[:cut], state):
        return script
    if state.get("responses_tool_call") and cut == len(pieces):
        _function_call(script, *state["responses_tool_call"])
    script.response["usage"] = _usage(body, "".join(pieces[:cut]), bool(summary))
    _finish(script, state, truncated=cut < len(pieces))
    return script


def _reasoning(script: Script, text: str) -> None:
    item_id = f"rs_{len(script.events):06d}"

    def deltas(index):
        part = {"type": "summary_text", "text": ""}
        script.emit("response.reasoning_summary_part.added", item_id=item_id, output_index=index,
                    summary_index=0, part=part)
        for piece in words(text):
            script.emit("response.reasoning_summary_text.delta", item_id=item_id, output_index=index,
                        summary_index=0, delta=piece)
        script.emit("response.reasoning_summary_text.done", item_id=item_id, output_index=index,
                    summary_index=0, text=text)
        script.emit("response.reasoning_summary_part.done", item_id=item_id, output_index=index,
                    summary_index=0, part={**part, "text": text})
    script.item({"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": text}]},
                deltas)


def _message(script: Script, pieces: list[str], state: dict) -> bool:
    """The answer's message item; False when the script ends inside it (an `error` event)."""
    item_id = f"msg_{len(script.events):06d}"
    text = "".join(pieces)
    index = len(script.response["output"])
    script.emit("response.output_item.added", output_index=index, item={
        "type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []})
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    script.emit("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=part)
    for piece in pieces:
        script.emit("response.output_text.delta", item_id=item_id, output_index=index, content_index=0,
                    delta=piece, logprobs=[])
    if state.get("responses_error"):
        code, message = state["responses_error"]
        script.emit("error", code=code, message=message, param=None)
        return False
    script.emit("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=text,
                logprobs=[])
    script.emit("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                part={**part, "text": text})
    script.response["output"].append({"type": "message", "id": item_id, "status": "completed", "role": "assistant",
                                      "content": [{**part, "text": text}]})
    script.emit("response.output_item.done", output_index=index, item=script.response["output"][-1])
    return True


def _function_call(script: Script, name: str, arguments: str) -> None:
    item_id = f"fc_{len(script.events):06d}"

    def deltas(index):
        for start in range(0, len(arguments), 8):
            script.emit("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                        delta=arguments[start:start + 8])
        script.emit("response.function_call_arguments.done", item_id=item_id, output_index=index, name=name,
                    arguments=arguments)
    script.item({"type": "function_call", "id": item_id, "call_id": f"call_{item_id[3:]}", "name": name,
                 "arguments": arguments}, deltas)


def _finish(script: Script, state: dict, truncated: bool) -> None:
    response = script.response
    if state.get("responses_fail"):
        response.update(status="failed", error={"code": "server_error", "message": state["responses_fail"]})
        script.emit("response.failed", response=script.snapshot("failed"))
    elif truncated:
        response.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
        script.emit("response.incomplete", response=script.snapshot("incomplete"))
    else:
        response.update(status="completed", completed_at=int(time.time()))
        script.emit("response.completed", response=script.snapshot("completed"))


def stream(server, reply, events: list[dict]) -> None:
    """SSE with event names, as the Responses API sends them; no [DONE] at the end."""
    drops = server.state.get("responses_drop_after") or []
    drop_after = drops.pop(0) if drops else None
    sent = events if drop_after is None else events[:drop_after]
    chunks = (f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in sent)
    reply.sse(None, raw_chunks=chunks, delay=server.state.get("responses_stream_pause", 0.0))
    if drop_after is not None:
        reply.drop()


def install(server):
    state = server.state
    state.setdefault("responses", {})

    found = finder(state, "responses", "Response with id '{id}' not found.", param="response_id")

    @server.route("POST", "/v1/responses")
    def create(request, reply):
        body = request.json()
        if body.get("previous_response_id") and body["previous_response_id"] not in state["responses"]:
            return reply.error(400, f"Previous response with id '{body['previous_response_id']}' not found.",
                               param="previous_response_id")
        conversation = body.get("conversation")
        if conversation and conversation not in state.get("conversations", {}):
            return reply.error(404, f"Conversation with id '{conversation}' not found.", param="conversation")
        if state.get("responses_status"):  # a scripted HTTP failure, e.g. (500, "boom")
            status, message = state.pop("responses_status")
            return reply.error(status, message, type="server_error" if status >= 500 else "invalid_request_error")
        script = build(state, body, next(_ids))
        final = script.response
        if conversation:
            from tests.fake.conversations import add_items
            add_items(state, conversation, [*_input_items(body), *final["output"]])
        record = {"final": final, "events": script.events, "background": bool(body.get("background")),
                  "step": 0, "polls": 0}
        if body.get("store", True) is not False:
            state["responses"][final["id"]] = record
        if body.get("stream"):
            return stream(server, reply, script.events)
        if record["background"]:
            return reply.json(_current(record))
        reply.json(final)

    @server.route("GET", "/v1/responses/(?P<id>[^/]+)")
    def get(request, reply):
        record = found(request, reply)
        if record is None:
            return
        refusal = state.get("responses_stream_get")
        if request.query.get("stream") == "true" and refusal != "ignore":
            if refusal:
                return reply.error(refusal[0], refusal[1], param="stream")
            after = int(request.query.get("starting_after", -1))
            events = [e for e in record["events"] if e["sequence_number"] > after]
            if state.pop("responses_cancel_while_streaming", False):
                record["cancelled"] = True
            if record.get("cancelled"):
                return stream(server, reply, [e for e in events if e["type"] in STATUS_EVENTS])
            record["step"] = len(BACKGROUND_STEPS) - 1  # a streamed background response runs to its end
            return stream(server, reply, events)
        if record["background"]:
            _advance(state, record)
            return reply.json(_current(record))
        reply.json(record["final"])

    @server.route("POST", "/v1/responses/(?P<id>[^/]+)/cancel")
    def cancel(request, reply):
        record = found(request, reply)
        if record is None:
            return
        if not record["background"]:
            return reply.error(400, "Only responses created with background=true can be cancelled.")
        current = _current(record)
        if current["status"] in TERMINAL - {"cancelled"}:
            return reply.error(400, f"Cannot cancel a response that is {current['status']}.")
        record["cancelled"] = True
        reply.json(_current(record))

    @server.route("DELETE", "/v1/responses/(?P<id>[^/]+)")
    def delete(request, reply):
        if found(request, reply) is not None:
            del state["responses"][request.match["id"]]
            reply.json({"id": request.match["id"], "object": "response", "deleted": True})


def _input_items(body: dict) -> list[dict]:
    items = body.get("input")
    return [{"type": "message", "role": "user", "content": items}] if isinstance(items, str) else list(items or [])


def _advance(state: dict, record: dict) -> None:
    record["polls"] += 1
    if record["polls"] >= state.get("responses_polls_per_step", 1):
        record["polls"] = 0
        record["step"] = min(record["step"] + 1, len(BACKGROUND_STEPS) - 1)


def _current(record: dict) -> dict:
    """A background response as it stands: its final object once its steps ran out, else a snapshot."""
    final = record["final"]
    if record.get("cancelled"):
        return {**final, "status": "cancelled", "output": [], "usage": None, "completed_at": None}
    status = BACKGROUND_STEPS[record["step"]]
    if status == "completed":
        return final
    return {**final, "status": status, "output": [], "usage": None, "completed_at": None,
            "error": None, "incomplete_details": None}
