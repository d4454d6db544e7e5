"""Wiring for `oaicli serve`: settings, one shared client and store, the app, the listening socket."""

import sys

import click

from oaicli.errors import ExitCode, OaicliError, redact

DEFAULT_MODEL = "gpt-3.5-turbo"


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
    # One client for every worker: httpx.Client is thread-safe, and a pool as large as the worker
    # count keeps one warm upstream connection per context being answered.
    client = ApiClient(settings, max_connections=workers)
    exchanger = Exchanger(engine, client, notice=_notice(settings))
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
        client.close()
        store.close()


def _notice(settings):
    def notice(text: str) -> None:
        if not settings.quiet:
            print(redact(text), file=sys.stderr, flush=True)
    return notice
