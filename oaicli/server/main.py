"""Wiring for `oaicli serve`: settings, one shared client and store, the app, the listening socket."""

import sys

import click

from oaicli.errors import ExitCode, OaicliError, redact

DEFAULT_MODEL = "gpt-3.5-turbo"
CONNECTIONS_PER_CLIENT = 8


def start(*, host: str, port: int, token: str | None, envelope_options: dict, max_body: int, workers: int,
          shutdown_timeout: float) -> int:
    from oaicli import settings as settings_module
    from oaicli.client import ApiClient
    from oaicli.conversation import completions_only
    from oaicli.envelope import Envelope
    from oaicli.server import app as app_module, run as run_module
    from oaicli.server.exchange import Exchanger
    from oaicli.store import Store

    settings = settings_module.current()
    settings.require_key()  # no key: say so now (exit 3), not in every answer
    model = envelope_options.pop("model") or settings.default_model("chat", DEFAULT_MODEL)
    if completions_only(model):
        raise OaicliError(f"serve speaks chat completions (like chat --envelope); {model} is a completions-only "
                          "model.", "Choose a chat model with -m.", exit_code=ExitCode.USAGE)
    params = {"max_tokens": envelope_options["answer_tokens"], "temperature": envelope_options.pop("temperature")}
    store = Store.open()
    engine = Envelope(store, model=model, extra_params={k: v for k, v in params.items() if v is not None},
                      **envelope_options)
    # Upstream connections: one kept alive per worker. httpx clients are thread-safe, but httpcore's
    # pool does work quadratic in its size on every request (ConnectionPool._assign_requests_to_
    # connections), which at 128 connections ate most of the CPU; so the workers share several
    # small clients instead of one big one.
    shards = -(-workers // CONNECTIONS_PER_CLIENT)
    clients = [ApiClient(settings, max_connections=-(-workers // shards)) for _ in range(shards)]
    exchanger = Exchanger(engine, clients, notice=_notice(settings))
    service = app_module.Service(exchanger, token=token, max_body=max_body, workers=workers)
    sock = run_module.bind(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    actual_port = sock.getsockname()[1]
    click.echo(redact(f"Serving the envelope on http://{shown_host}:{actual_port}/v1/envelope "
                      f"(model {model}, {'token required' if token else 'no token'}); Ctrl-C stops."), err=True)
    try:
        return run_module.run(app_module.create_app(service), sock, shutdown_timeout=shutdown_timeout,
                              verbose=settings.verbose, close=exchanger.close, busy=lambda: exchanger.active)
    finally:
        for client in clients:
            client.close()
        store.close()


def _notice(settings):
    def notice(text: str) -> None:
        if not settings.quiet:
            print(redact(text), file=sys.stderr, flush=True)
    return notice
