"""Chat and text completions on the wire: the request fields named by options, one request (streamed or
not), and the assembly of streamed chunks into the response object.

Shared by `chat`, `complete`, the envelope and `serve`. The per-chunk path is kept cheap (a few dict
lookups and a list append); the joining happens once, in `result()`.
"""

from oaicli.core.errors import ApiError, redact

SAMPLING_FIELDS = ("temperature", "top_p", "n", "max_tokens", "presence_penalty", "frequency_penalty", "user",
                   "seed", "max_completion_tokens")


def request_params(opts) -> dict:
    """The request fields named by options (not model, messages, stream), --param last so it wins."""
    params = {name: opts[name] for name in SAMPLING_FIELDS if opts.get(name) is not None}
    if opts.get("stop"):
        params["stop"] = list(opts["stop"])
    if opts.get("logit_bias"):
        params["logit_bias"] = opts["logit_bias"]
    if opts.get("response_format"):
        params["response_format"] = {"type": opts["response_format"]}
    params.update(opts.get("params") or {})
    return params


class Requester:
    """Sends one chat or completions request, streamed or not, handing each event to a callback."""

    def __init__(self, client, completions: bool = False):
        self.client = client
        self.usage_refused = False
        self.use_completions(completions)

    def use_completions(self, completions: bool) -> None:
        self.completions = completions
        self.path = "/completions" if completions else "/chat/completions"

    def __call__(self, body: dict, on_event=None) -> dict:
        """The response object (assembled from the chunks when streamed)."""
        if not body.get("stream"):
            response = self.client.post(self.path, json=body)
            if on_event:
                on_event(response)
            return response
        if self.usage_refused:
            body.pop("stream_options", None)
        try:
            return self._stream(body, on_event)
        except ApiError as exc:
            if not refuses_stream_options(exc, body):
                raise
            # An older server refuses stream_options: ask again without it, and stop sending it.
            self.usage_refused = True
            body.pop("stream_options")
            return self._stream(body, on_event)

    def _stream(self, body: dict, on_event) -> dict:
        assembler = CompletionAssembler() if self.completions else ChatAssembler()
        add = assembler.add
        for event in self.client.stream_events(self.path, body):
            pieces = add(event)
            if on_event:
                on_event(event, pieces)
        return assembler.result()


class AsyncRequester:
    """The Requester for serve's event loop (chat completions, api/async_client.py): the same request,
    the same stream_options fallback and the same assembly, awaited."""

    path = "/chat/completions"

    def __init__(self, client):
        self.client = client
        self.usage_refused = False

    async def __call__(self, body: dict, on_event=None) -> dict:
        if not body.get("stream"):
            return await self.client.post_json(self.path, body)
        if self.usage_refused:
            body.pop("stream_options", None)
        try:
            return await self._stream(body, on_event)
        except ApiError as exc:
            if not refuses_stream_options(exc, body):
                raise
            self.usage_refused = True
            body.pop("stream_options")
            return await self._stream(body, on_event)

    async def _stream(self, body: dict, on_event) -> dict:
        assembler = ChatAssembler()
        add = assembler.add
        async for event in self.client.stream_events(self.path, body):
            pieces = add(event)
            if on_event:
                on_event(event, pieces)
        return assembler.result()


def refuses_stream_options(error: ApiError, body: dict) -> bool:
    """An older server's 400 about stream_options (then the request is sent again without it)."""
    return error.status == 400 and "stream_options" in body and "stream_options" in f"{error.param} {error.message}"


class ChatAssembler:
    """Folds `chat.completion.chunk` events into the `chat.completion` object the API would have sent."""

    object_name = "chat.completion"

    def __init__(self):
        self.whole: dict | None = None
        self.head: dict = {}
        self.usage: dict | None = None
        self._choices: dict[int, dict] = {}

    def add(self, chunk: dict) -> list[tuple[int, str]]:
        """Record one chunk; returns the (choice index, text) pieces it carried, for the caller to print."""
        if not self.head:
            self.head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if self._is_whole(chunk):  # a server that ignored stream=true answered with the whole object
            return self._whole(chunk)
        pieces = []
        for choice in chunk.get("choices") or ():
            text = self._choice(choice)
            if text:
                pieces.append((choice.get("index", 0), text))
        return pieces

    def _choice(self, choice: dict) -> str:
        index = choice.get("index", 0)
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = {"role": "assistant", "parts": [], "finish_reason": None,
                                            "tools": {}, "extra": {}, "logprobs": None}
        if choice.get("finish_reason"):
            state["finish_reason"] = choice["finish_reason"]
        if choice.get("logprobs"):
            self._logprobs(state, choice["logprobs"])
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text:
            state["parts"].append(text)
        if delta.get("role"):
            state["role"] = delta["role"]
        for call in delta.get("tool_calls") or ():
            self._tool_call(state["tools"], call)
        for key in ("refusal", "function_call"):
            if delta.get(key):
                _merge_text(state["extra"], key, delta[key])
        return text or ""

    @staticmethod
    def _logprobs(state: dict, logprobs: dict) -> None:
        merged = state["logprobs"] = state["logprobs"] or {}
        for key, value in logprobs.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            else:
                merged[key] = value

    @staticmethod
    def _tool_call(tools: dict, call: dict) -> None:
        slot = tools.setdefault(call.get("index", len(tools)), {"id": None, "type": "function",
                                                                   "function": {"name": "", "arguments": ""}})
        if call.get("id"):
            slot["id"] = call["id"]
        if call.get("type"):
            slot["type"] = call["type"]
        function = call.get("function") or {}
        slot["function"]["name"] += function.get("name") or ""
        slot["function"]["arguments"] += function.get("arguments") or ""

    @staticmethod
    def _is_whole(chunk: dict) -> bool:
        choices = chunk.get("choices")
        return bool(choices) and isinstance(choices[0], dict) and "message" in choices[0]

    def _whole(self, response: dict) -> list[tuple[int, str]]:
        self.whole = response
        return [(c.get("index", 0), (c.get("message") or {}).get("content") or c.get("text") or "")
                for c in response.get("choices") or ()]

    def result(self) -> dict:
        if self.whole is not None:
            return self.whole
        response = {"id": self.head.get("id"), "object": self.object_name, "created": self.head.get("created"),
                    "model": self.head.get("model")}
        if "system_fingerprint" in self.head:
            response["system_fingerprint"] = self.head["system_fingerprint"]
        response["choices"] = [self._finished(i, self._choices[i]) for i in sorted(self._choices)]
        if self.usage is not None:
            response["usage"] = self.usage
        return response

    def _finished(self, index: int, state: dict) -> dict:
        message = {"role": state["role"], "content": "".join(state["parts"]) if state["parts"] else None}
        if state["tools"]:
            message["tool_calls"] = [state["tools"][k] for k in sorted(state["tools"])]
            message["content"] = message["content"] if state["parts"] else None
        elif not state["parts"]:
            message["content"] = ""
        message.update(state["extra"])
        return {"index": index, "message": message, "logprobs": state["logprobs"],
                "finish_reason": state["finish_reason"]}

    def text(self, index: int = 0) -> str:
        """The answer of one choice so far."""
        if self.whole is not None:
            return answer_of(self.whole, index)
        state = self._choices.get(index)
        return "".join(state["parts"]) if state else ""


class CompletionAssembler(ChatAssembler):
    """Folds streamed `text_completion` events (legacy /v1/completions) into one `text_completion` object."""

    object_name = "text_completion"

    @staticmethod
    def _is_whole(chunk: dict) -> bool:
        return False  # a whole text_completion folds in like one chunk

    def _choice(self, choice: dict) -> str:
        index = choice.get("index", 0)
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = {"parts": [], "finish_reason": None, "logprobs": None}
        if choice.get("finish_reason"):
            state["finish_reason"] = choice["finish_reason"]
        if choice.get("logprobs"):
            self._logprobs(state, choice["logprobs"])
        text = choice.get("text")
        if text:
            state["parts"].append(text)
        return text or ""

    def _finished(self, index: int, state: dict) -> dict:
        return {"text": "".join(state["parts"]), "index": index, "logprobs": state["logprobs"],
                "finish_reason": state["finish_reason"]}


def _merge_text(target: dict, key: str, value) -> None:
    if isinstance(value, str):
        target[key] = target.get(key, "") + value
    elif isinstance(value, dict):  # function_call {name, arguments} arrives in pieces
        slot = target.setdefault(key, {})
        for name, piece in value.items():
            slot[name] = slot.get(name, "") + (piece or "")


def answer_of(response: dict, index: int = 0) -> str:
    """The text of one choice of a chat.completion or text_completion object, any secret in it masked
    (a server may echo the key in an answer; it is neither shown nor stored)."""
    for choice in response.get("choices") or ():
        if choice.get("index", 0) == index:
            return redact((choice.get("message") or {}).get("content") or choice.get("text") or "")
    return ""
