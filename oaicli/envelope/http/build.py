"""The store, the engine and the upstream clients one serving process answers with (the single-process
server, or each worker process of --processes)."""

import sys

from oaicli.api.client import ApiClient
from oaicli.conversation.stores import open_store
from oaicli.core.errors import redact
from oaicli.envelope.engine import Envelope
from oaicli.envelope.http.exchange import Exchanger

CONNECTIONS_PER_CLIENT = 8


def build(settings, engine_options: dict, workers: int):
    """The store, the engine and the upstream clients one process answers with: (exchanger, closers)."""
    store = open_store(settings.store, max_connections=workers + 2)
    engine = Envelope(store, **engine_options)
    # Upstream connections: one kept alive per worker. httpx clients are thread-safe, but httpcore's
    # pool does work quadratic in its size on every request (ConnectionPool._assign_requests_to_
    # connections), which at 128 connections ate most of the CPU; so the workers share several
    # small clients instead of one big one.
    shards = -(-workers // CONNECTIONS_PER_CLIENT)
    clients = [ApiClient(settings, max_connections=-(-workers // shards)) for _ in range(shards)]
    exchanger = Exchanger(engine, clients, notice=_notice(settings))
    return exchanger, [client.close for client in clients] + [store.close]


def _notice(settings):
    def notice(text: str) -> None:
        if not settings.quiet:
            print(redact(text), file=sys.stderr, flush=True)
    return notice
