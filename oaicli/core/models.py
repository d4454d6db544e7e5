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


def base_model(model: str) -> str:
    """The model family a name belongs to: strips `ft:` fine-tune wrappers and `provider/` prefixes."""
    name = (model or "").strip().lower()
    name = name.rsplit("/", 1)[-1]
    if name.startswith("ft:"):
        name = name[3:]
    return name.split(":", 1)[0]  # ft:gpt-4o-mini:org::id and legacy davinci:ft-org-...


def lookup(table: dict, model: str):
    """The value of the longest key of `table` that names the model's family (`gpt-4o` for
    `gpt-4o-2024-08-06` and `ft:gpt-4o:acme::id`), or None."""
    name = base_model(model)
    best = None
    for key in table:
        if (name == key or name.startswith(key + "-")) and (best is None or len(key) > len(best)):
            best = key
    return table[best] if best is not None else None
