"""The store, the engine and the upstream clients one serving process answers with (the one process, or
each worker process of --processes): on the event loop, or in worker threads for a PostgreSQL store,
whose driver here blocks."""

import sys

from oaicli.api.async_client import AsyncApiClient
from oaicli.api.client import ApiClient
from oaicli.conversation.stores import open_store
from oaicli.core.errors import redact
from oaicli.envelope.engine import Envelope
from oaicli.envelope.http.answer import LoopAnswerer
from oaicli.envelope.http.app import ThreadRunner
from oaicli.envelope.http.exchange import Exchanger

CONNECTIONS_PER_CLIENT = 8


def build_runner(settings, engine_options: dict, workers: int, api: str = "chat"):
    """(runner, closers): what answers parsed requests in a serving process, on its event loop when the
    store allows it. `api`: chat, responses or auto."""
    built = build_on_loop(settings, engine_options, workers, api)
    if built is not None:
        return built
    exchanger, closers = build(settings, engine_options, workers, api)
    return ThreadRunner(exchanger, workers), closers


def build(settings, engine_options: dict, workers: int, api: str = "chat"):
    """(exchanger, closers) for worker threads: the blocking answer path. `api`: chat, responses or auto."""
    store = open_store(settings.store_url, max_connections=workers + 2)
    engine = Envelope(store, **engine_options)
    # Upstream connections: one kept alive per worker. httpx clients are thread-safe, but httpcore's
    # pool does work quadratic in its size on every request (ConnectionPool._assign_requests_to_
    # connections), which at 128 connections ate most of the CPU; so the workers share several
    # small clients instead of one big one.
    shards = -(-workers // CONNECTIONS_PER_CLIENT)
    clients = [ApiClient(settings, max_connections=-(-workers // shards)) for _ in range(shards)]
    exchanger = Exchanger(engine, clients, notice=_notice(settings), api=api)
    return exchanger, [client.close for client in clients] + [store.close]


def build_on_loop(settings, engine_options: dict, workers: int, api: str = "chat"):
    """(answerer, closers) answering on the event loop, or None when the store needs threads."""
    store = open_store(settings.store_url, max_connections=workers + 2)
    if not hasattr(store, "file_lock"):  # PostgreSQL: its (blocking) driver runs in worker threads
        store.close()
        return None
    store.checkpoint_in_background()
    engine = Envelope(store, **engine_options)
    engine.warm_up()
    client = AsyncApiClient(settings, max_connections=workers, echo=_notice(settings))
    return LoopAnswerer(engine, client, notice=_notice(settings), api=api), [store.close]


def _notice(settings):
    def notice(text: str) -> None:
        if not settings.quiet:
            print(redact(text), file=sys.stderr, flush=True)
    return notice
