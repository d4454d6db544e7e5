"""The one MIME table: the type each upload is sent as (fine-tune data, images, audio), then Python's guess."""

import mimetypes
from pathlib import Path

TYPES = {
    ".jsonl": "text/jsonl",  # what OpenAI's own Uploads example sends for fine-tune data
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".mp3": "audio/mpeg", ".mpga": "audio/mpeg", ".mpeg": "audio/mpeg", ".mp4": "audio/mp4", ".m4a": "audio/mp4",
    ".wav": "audio/wav", ".webm": "audio/webm",
}


def mime_type(path: Path | str) -> str:
    path = Path(path)
    return TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
