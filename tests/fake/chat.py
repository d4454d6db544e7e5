"""Fake /v1/chat/completions and /v1/completions.

The answer is `state["answer"](messages)` when set, else "echo: <last user message>". Streams are
split into `state["chunks"]` pieces (default: one per word) with `state["chunk_delay"]` between them.
"""

import time


def default_answer(messages):
    last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return f"echo: {last_user}"


def split(text: str, pieces: int | None) -> list[str]:
    if not pieces:
        words = text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    size = max(1, -(-len(text) // pieces))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def install(server):
    state = server.state

    @server.route("POST", "/v1/chat/completions")
    def chat(request, reply):
        body = request.json()
        delay = state.get("answer_delay", 0)
        if delay:
            time.sleep(delay)
        answer = state.get("answer", default_answer)(body.get("messages", []))
        model = body.get("model", "gpt-3.5-turbo")
        n = body.get("n", 1)
        usage = {"prompt_tokens": 10, "completion_tokens": len(answer.split()), "total_tokens": 10 + len(answer.split())}
        if not body.get("stream"):
            return reply.json({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": i, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop"} for i in range(n)],
                "usage": usage})
        events = []
        for i in range(n):
            events.append(_chunk(model, i, {"role": "assistant", "content": ""}))
            events += [_chunk(model, i, {"content": piece}) for piece in split(answer, state.get("chunks"))]
            events.append(_chunk(model, i, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                           "choices": [], "usage": usage})
        reply.sse(events, delay=state.get("chunk_delay", 0), drop_after=state.get("drop_after"),
                  done=state.get("send_done", True))


def _chunk(model, index, delta, finish=None):
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
