"""The model ids `models list` last saw, per base URL: a small cache for shell completion of --model."""

import json
import os

from oaicli.core import settings

MAX_IDS = 2000


def cache_path():
    return settings.home_dir() / "model_ids.json"


def remember(base_url: str, ids: list[str]) -> None:
    """Keep `ids` for `base_url`; a home that cannot be written only costs the completion."""
    path = cache_path()
    known = {**_read(), base_url.rstrip("/"): sorted(ids)[:MAX_IDS]}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(known), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def remembered(base_url: str) -> list[str]:
    ids = _read().get(base_url.rstrip("/"))
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def _read() -> dict:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
