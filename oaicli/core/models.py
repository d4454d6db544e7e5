"""Default models per command (a profile's `models.<command>` overrides them) and model ids in URLs."""

DEFAULT_MODELS = {
    "chat": "gpt-3.5-turbo",
    "complete": "gpt-3.5-turbo-instruct",
    "edit": "text-davinci-edit-001",
    "embed": "text-embedding-ada-002",
    "image": "dall-e-2",
    "audio": "whisper-1",
    "speak": "tts-1",
    "moderate": "",  # the server's own default
}


def model_path(model: str) -> str:
    """/models/ID; a fine-tuned id (ft:base:org::id) keeps its colons, anything else is escaped."""
    from urllib.parse import quote  # commands that only show --help import this module; quote costs ~3 ms
    return "/models/" + quote(model, safe=":")
