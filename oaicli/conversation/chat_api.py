"""Which API a conversation is sent through when --api is auto (chat, the envelope, serve): the Responses
API at OpenAI; elsewhere too unless the server turned out not to answer /responses, remembered per base
URL in the oaicli home so later runs do not ask again."""

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
    return "chat" if _remembered().get(base_url) == "chat" else "auto"


def _remembered():
    from oaicli.output.remembered import PerServer
    return PerServer("chat_api.json")


def has_no_responses(api: str, error, base_url: str, notice) -> bool:
    """With auto, whether `error` (from /responses) says the server has no such path (404, 405): then
    it is remembered for the base URL, and the caller goes on with chat completions."""
    if api != "auto" or getattr(error, "status", None) not in (404, 405):
        return False
    notice("This server has no /responses; using /chat/completions (remembered for this base URL).")
    _remembered().set(base_url, "chat")
    return True
