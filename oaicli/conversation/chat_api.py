"""Which API a conversation is sent through when --api is auto (chat, the envelope, serve): the Responses
API at OpenAI; elsewhere too unless the server turned out not to answer /responses, remembered per base
URL in the oaicli home so later runs do not ask again."""

from oaicli.core.errors import OaicliError

OPENAI_HOSTS = ("api.openai.com",)


def chat_api(requested: str | None, base_url: str) -> str | None:
    """--api (or the profile's/OAICLI_CHAT_API's chat_api), with auto settled where it can be: "responses"
    at OpenAI, "chat" where the server is remembered to lack /responses, else "auto" (try /responses and
    fall back on a 404 or 405: Chat.send, envelope/upstream.py)."""
    if requested != "auto":
        return requested
    from urllib.parse import urlsplit
    if (urlsplit(base_url).hostname or "") in OPENAI_HOSTS:
        return "responses"
    return "chat" if _remembered().get(base_url.rstrip("/")) == "chat" else "auto"


def _remembered_path():
    from oaicli.core import settings
    return settings.home_dir() / "chat_api.json"


def _remembered() -> dict:
    import json
    try:
        return json.loads(_remembered_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def has_no_responses(api: str, error, base_url: str, notice) -> bool:
    """With auto, whether `error` (from /responses) says the server has no such path (404, 405): then
    it is remembered for the base URL, and the caller goes on with chat completions."""
    if api != "auto" or getattr(error, "status", None) not in (404, 405):
        return False
    notice("This server has no /responses; using /chat/completions (remembered for this base URL).")
    _remember_no_responses(base_url)
    return True


def _remember_no_responses(base_url: str) -> None:
    import json

    from oaicli.output.files import atomic_writer
    known = {**_remembered(), base_url.rstrip("/"): "chat"}
    try:
        with atomic_writer(_remembered_path(), "w") as sink:
            sink.write(json.dumps(known, indent=2) + "\n")
    except (OSError, OaicliError):
        pass  # a read-only home only costs asking /responses again next time
