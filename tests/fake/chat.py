"""Fake /v1/chat/completions, /v1/completions and /v1/edits.

Chat answers `state["answer"](messages)` when set, else "echo: <last user message>"; completions answer
`state["completion_answer"](prompt)`, else " echo: <last `User:` line>" for a transcript prompt and
" more text" otherwise. Streams are split into `state["chunks"]` pieces (default: one per word).
Knobs in `server.state`:
- `answer_delay` (seconds before answering), `chunk_delay` (between chunks), `drop_after` (drop the
  connection after N events), `send_done` (False: end without [DONE]);
- `max_context_chars`: a request whose messages (or prompt) hold more characters is refused with
  400 context_length_exceeded, like OpenAI;
- `reject_stream_options`: 400 for any request with stream_options (an older server);
- `no_edits`: /v1/edits answers 404, like today's OpenAI;
- `stream_html`: a streamed request is answered 200 with an HTML page (a proxy's login page);
- `interleave`: a streamed chat with n > 1 sends the choices' chunks in turn, as OpenAI does.
The time each stream's first chunk with text was flushed (time.time()) is appended to `state["first_chunk_at"]`.
"""

import json
import time


def default_answer(messages):
    last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return f"echo: {last_user}"


def default_completion(prompt):
    if prompt.rstrip().endswith("Assistant:"):
        last_user = next((line[len("User: "):] for line in reversed(prompt.splitlines())
                          if line.startswith("User: ")), "")
        return f" echo: {last_user}"
    return " more text"


def split(text: str, pieces: int | None) -> list[str]:
    if not pieces:
        words = text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    size = max(1, -(-len(text) // pieces))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _usage(prompt_chars: int, answer: str) -> dict:
    prompt_tokens = max(1, prompt_chars // 4)
    completion = len(answer.split())
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def install(server):
    state = server.state

    def refused(body, reply, size: int) -> bool:
        limit = state.get("max_context_chars")
        if limit is not None and size > limit:
            reply.error(400, f"This model's maximum context length is {limit} tokens. However, your messages "
                             f"resulted in {size} tokens. Please reduce the length of the messages.",
                        code="context_length_exceeded", param="messages")
            return True
        if state.get("reject_stream_options") and "stream_options" in body:
            reply.error(400, "Unrecognized request argument supplied: stream_options", param="stream_options")
            return True
        if state.get("answer_delay"):
            time.sleep(state["answer_delay"])
        return False

    @server.route("POST", "/v1/chat/completions")
    def chat(request, reply):
        body = request.json()
        messages = body.get("messages", [])
        if refused(body, reply, sum(len(str(m.get("content") or "")) for m in messages)):
            return
        answer = state.get("answer", default_answer)(messages)
        model = body.get("model", "gpt-3.5-turbo")
        n = body.get("n", 1)
        usage = _usage(sum(len(str(m.get("content") or "")) for m in messages), answer)
        if not body.get("stream"):
            return reply.json({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": i, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop"} for i in range(n)],
                "usage": usage})
        per_choice = [[_chunk(model, i, {"role": "assistant", "content": ""})]
                      + [_chunk(model, i, {"content": piece}) for piece in split(answer, state.get("chunks"))]
                      + [_chunk(model, i, {}, "stop")] for i in range(n)]
        rounds = zip(*per_choice) if state.get("interleave") else per_choice
        events = [event for group in rounds for event in group]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                           "choices": [], "usage": usage})
        _sse(reply, events, state)

    @server.route("POST", "/v1/completions")
    def completions(request, reply):
        body = request.json()
        prompt = body.get("prompt", "")
        prompt = prompt if isinstance(prompt, str) else "".join(map(str, prompt))
        if refused(body, reply, len(prompt)):
            return
        answer = state.get("completion_answer", default_completion)(prompt)
        if body.get("echo"):
            answer = prompt + answer
        model = body.get("model", "gpt-3.5-turbo-instruct")
        n = body.get("n", 1)
        usage = _usage(len(prompt), answer)
        pieces = split(answer, state.get("chunks"))
        logprobs = body.get("logprobs")
        if not body.get("stream"):
            return reply.json({
                "id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": model,
                "choices": [{"text": answer, "index": i, "finish_reason": "stop",
                             "logprobs": _logprobs(pieces) if logprobs is not None else None} for i in range(n)],
                "usage": usage})
        events = []
        for i in range(n):
            offset = 0
            for piece in pieces:
                events.append(_text_chunk(model, i, piece, None,
                                          _logprobs([piece], offset) if logprobs is not None else None))
                offset += len(piece)
            events.append(_text_chunk(model, i, "", "stop", None))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": "cmpl-fake", "object": "text_completion", "model": model, "choices": [],
                           "usage": usage})
        _sse(reply, events, state)

    @server.route("POST", "/v1/edits")
    def edits(request, reply):
        if state.get("no_edits"):
            return reply.error(404, "Invalid URL (POST /v1/edits)", code="unknown_url")
        body = request.json()
        text = f"{body.get('input', '')} [edited: {body.get('instruction')}]"
        reply.json({"object": "edit", "created": int(time.time()),
                    "choices": [{"text": text, "index": i} for i in range(body.get("n", 1))],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})


def _sse(reply, events, state):
    """Like Reply.sse, and records when the first chunk left (for the latency benchmark)."""
    if state.get("stream_html"):
        return reply.raw(200, b"<!doctype html><html><body>Please sign in to the proxy</body></html>", "text/html")
    reply._head(200, "text/event-stream", None, {"Cache-Control": "no-cache", "Connection": "close"})
    reply._handler.close_connection = True
    out = reply._handler.wfile
    delay, drop_after = state.get("chunk_delay", 0), state.get("drop_after")
    first_text = True
    for index, event in enumerate(events):
        if drop_after is not None and index >= drop_after:
            return reply.drop()
        out.write(b"data: " + json.dumps(reply.echoed(event), ensure_ascii=False).encode() + b"\n\n")
        out.flush()
        if first_text and _has_text(event):
            first_text = False
            state.setdefault("first_chunk_at", []).append(time.time())
        if delay:
            time.sleep(delay)
    if state.get("send_done", True):
        out.write(b"data: [DONE]\n\n")
    out.flush()


def _has_text(event) -> bool:
    choice = (event.get("choices") or [{}])[0]
    return bool((choice.get("delta") or {}).get("content") or choice.get("text"))


def _chunk(model, index, delta, finish=None):
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def _text_chunk(model, index, text, finish, logprobs):
    return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}]}


def _logprobs(pieces, offset=0):
    offsets, at = [], offset
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return {"tokens": list(pieces), "token_logprobs": [-0.25] * len(pieces),
            "top_logprobs": [{p: -0.25} for p in pieces], "text_offset": offsets}
