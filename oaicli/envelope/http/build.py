"""The store, the engine and the upstream client one serving process answers with (the one process, or
each worker process of --processes), on its event loop: a SQLite store is called from the loop, a
PostgreSQL one through psycopg's async pool (conversation/pgasync.py)."""

import sys

from oaicli.api.async_client import AsyncApiClient
from oaicli.conversation.stores import POSTGRES_INSTALL, open_store
from oaicli.conversation.tailcache import TailCache
from oaicli.core.errors import ExitCode, OaicliError, redact
from oaicli.envelope.engine import Envelope
from oaicli.envelope.http.answer import LoopAnswerer


def build_runner(settings, engine_options: dict, workers: int, api: str = "chat", alone: bool = True):
    """(runner, closers): what answers parsed requests in a serving process, on its event loop.
    `api`: chat, responses or auto. `alone`: no other process of this server writes the store, so on SQLite
    the recent history of busy contexts is kept in memory (conversation/tailcache.py); worker processes of
    --processes share the file, and each one's commits would empty the others' caches on every turn."""
    store = open_store(settings.store_url, max_connections=workers + 2)
    turns = None
    if not hasattr(store, "file_lock"):  # PostgreSQL: opened once to check the URL and migrate, then async
        store = turns = _async_postgres(store, workers, _notice(settings))
    else:
        store.checkpoint_in_background()
        store = TailCache(store) if alone else store
    engine = Envelope(store, **engine_options)
    engine.warm_up()
    client = AsyncApiClient(settings, max_connections=workers, echo=_notice(settings))
    return LoopAnswerer(engine, client, notice=_notice(settings), api=api, turns=turns), [store.close]


def _async_postgres(opened, workers: int, notice):
    """The PostgreSQL store on the loop, in place of the blocking one `opened`: a turn holds a connection
    (its advisory lock's) while it is answered, so the pool has one per turn answered at once, as many
    as the upstream connections; said at start when the server allows fewer."""
    pool, allowed = workers + 2, opened.server_connections()
    opened.close()
    try:
        from oaicli.conversation.pgasync import AsyncPgStore
    except ImportError as exc:  # psycopg is there (the store opened), greenlet is not
        raise OaicliError("serve on a postgresql:// store needs greenlet, which is not installed.",
                          POSTGRES_INSTALL, exit_code=ExitCode.AUTH) from exc
    if pool > allowed:
        notice(f"PostgreSQL allows {allowed} connections and this instance may hold up to {pool} (one per turn "
               "answered at once): lower --workers, or raise max_connections above instances x (--workers + 2).")
    return AsyncPgStore(opened.url, max_connections=pool)


def _notice(settings):
    def notice(text: str) -> None:
        if not settings.quiet:
            print(redact(text), file=sys.stderr, flush=True)
    return notice
