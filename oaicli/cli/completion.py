"""Shell completion of values from local state: session names (the store, opened read-only) and model
ids (the cache `models list` writes). Each reads one file: no request is sent and nothing is created."""

import os

from click.shell_completion import CompletionItem


def session_names(ctx, param, incomplete: str) -> list[CompletionItem]:
    from oaicli.conversation.store import session_names as stored_names
    return [CompletionItem(name) for name in stored_names() if name.startswith(incomplete)]


def model_ids(ctx, param, incomplete: str) -> list[CompletionItem]:
    from oaicli.core import model_ids as cache
    from oaicli.core.settings import Settings
    try:
        base_url = Settings({}, environ=os.environ).base_url
    except Exception:  # a broken config must not break the shell's completion
        return []
    return [CompletionItem(model) for model in cache.remembered(base_url) if model.startswith(incomplete)]
