"""Where the envelope's questions go: the engine (engine.py) makes chat-shaped requests and the steps of
a server-side context; this sends them through chat completions or the Responses API (--api) and
creates and deletes the Conversations of --context server. `Upstream` blocks (chat --envelope, serve's
worker threads), `AsyncUpstream` is awaited on serve's event loop; both answer in chat.completion shape,
which the engine saves."""

from oaicli.api import responses as r
from oaicli.api.completions import AsyncRequester, Requester
from oaicli.api.responses_async import AsyncResponsesRequester
from oaicli.api.responses_wire import ResponsesRequester
from oaicli.conversation.chat_api import chat_api, has_no_responses
from oaicli.conversation.turn import completions_only
from oaicli.core.errors import ApiError, ExitCode, InputError, OaicliError
from oaicli.envelope.engine import DropConversation, NewConversation

CONTEXTS = ("local", "previous", "server")
# Chat request fields the Responses body names otherwise (see responses_body), or has no room for.
CHAT_FIELDS = ("model", "messages", "stream", "stream_options", "conversation", "previous_response_id", "max_tokens",
               "max_completion_tokens", "response_format")


def choose_api(requested: str | None, context: str, model: str, base_url: str) -> str:
    """The API the envelope asks through: "chat", "responses", or "auto" (/responses until the server
    says it has none). A choice that cannot work is a usage error (exit 2), before any request."""
    api = requested or "chat"
    if api == "completions" or completions_only(model):
        raise OaicliError(f"The envelope speaks chat completions or the Responses API; {model} is a completions-only "
                          "model.", "Choose a chat model with -m.", exit_code=ExitCode.USAGE)
    if context != "local" and api != "responses":
        raise OaicliError(f"--context {context} needs --api responses (server-side context exists only in OpenAI's "
                          "Responses API).", exit_code=ExitCode.USAGE)
    return chat_api(api, base_url)


def responses_body(body: dict) -> dict:
    """A chat-shaped envelope request as a POST /responses body: the system prompt as `instructions`,
    the messages as input items, max_tokens as max_output_tokens, response_format as text.format; other
    fields (temperature, top_p, user, --param) as they are."""
    fields = {key: value for key, value in body.items() if key not in CHAT_FIELDS}
    try:
        request = r.request_body(body["model"], body["messages"], conversation=body.get("conversation"),
                                 previous_response_id=body.get("previous_response_id"), stream=bool(body.get("stream")),
                                 max_output_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
                                 response_format=(body.get("response_format") or {}).get("type"))
    except ValueError as exc:
        raise InputError(f"Cannot make the Responses request: {exc}.") from None
    return {**request, **fields}


def conversation_seed(history: list) -> dict:
    """The POST /conversations body seeding a Conversation with the context's stored turns."""
    return {"items": [{"type": "message", "role": turn.role, "content": turn.content} for turn in history]}


class _Choice:
    """The API in use, and auto's fallback to chat completions when the server has no /responses."""

    def __init__(self, client, api: str, notice):
        self.client = client
        self.api = api
        self.notice = notice or (lambda text: None)

    def falls_back(self, error: ApiError) -> bool:
        """With auto, a 404 or 405 from /responses: chat completions from now on (as `chat --api auto`)."""
        if not has_no_responses(self.api, error, self.client.settings.base_url, self.notice):
            return False
        self.api = "chat"
        return True


class Upstream(_Choice):
    """The blocking path: `perform(step, on_text)` for each step of Envelope.turn."""

    def __init__(self, client, api: str = "chat", notice=None):
        """`client`: an ApiClient; `notice` says what the user should know (a resumed stream, a fallback)."""
        super().__init__(client, api, notice)
        self.chat = Requester(client)
        self.responses = ResponsesRequester(client, self.notice)

    def perform(self, step, on_text=None):
        if isinstance(step, NewConversation):
            return self.client.post("/conversations", json=conversation_seed(step.history))["id"]
        if isinstance(step, DropConversation):
            try:
                self.client.delete(f"/conversations/{step.conversation}")
            except OaicliError:
                pass  # an empty Conversation left behind holds no turns
            return None
        return self.ask(step.request_body, on_text)

    def ask(self, body: dict, on_text=None) -> dict:
        """The completion; each piece of the answer's text goes to `on_text` as it arrives."""
        if self.api != "chat":
            try:
                return r.as_completion(self.responses(responses_body(body), _answer_text(on_text)))
            except ApiError as exc:
                if not self.falls_back(exc):
                    raise
        return self.chat(body, _first_choice_text(on_text))


class AsyncUpstream(_Choice):
    """The same on serve's event loop: `await perform(step, on_text)`."""

    def __init__(self, client, api: str = "chat", notice=None):
        """`client`: an AsyncApiClient."""
        super().__init__(client, api, notice)
        self.chat = AsyncRequester(client)
        self.responses = AsyncResponsesRequester(client, self.notice)

    async def perform(self, step, on_text=None):
        if isinstance(step, NewConversation):
            return (await self.client.post_json("/conversations", conversation_seed(step.history)))["id"]
        if isinstance(step, DropConversation):
            try:
                await self.client.delete(f"/conversations/{step.conversation}")
            except OaicliError:
                pass  # an empty Conversation left behind holds no turns
            return None
        return await self.ask(step.request_body, on_text)

    async def ask(self, body: dict, on_text=None) -> dict:
        if self.api != "chat":
            try:
                return r.as_completion(await self.responses(responses_body(body), _answer_text(on_text)))
            except ApiError as exc:
                if not self.falls_back(exc):
                    raise
        return await self.chat(body, _first_choice_text(on_text))


def _answer_text(on_text):
    if on_text is None:
        return None
    return lambda happening: on_text(happening.text) if isinstance(happening, r.TextDelta) and happening.text else None


def _first_choice_text(on_text):
    if on_text is None:
        return None

    def forward(event, pieces) -> None:
        for index, text in pieces:
            if index == 0 and text:
                on_text(text)
    return forward
