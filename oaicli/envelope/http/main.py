"""Wiring for `oaicli serve`: settings, the engine (in this process or in worker processes), the app,
the listening socket."""

import sys

import click

from oaicli.core.errors import ExitCode, OaicliError, redact

DEFAULT_MODEL = "gpt-3.5-turbo"
CONNECTIONS_PER_CLIENT = 8


def start(*, host: str, port: int, token: str | None, envelope_options: dict, max_body: int, workers: int,
          processes: int, shutdown_timeout: float) -> int:
    from oaicli.core import settings as settings_module
    from oaicli.conversation.turn import completions_only
    from oaicli.cli.options import FLAGS_KEY
    from oaicli.envelope.http import app as app_module, run as run_module

    settings = settings_module.current()
    settings.require_key()  # no key: say so now (exit 3), not in every answer
    model = envelope_options.pop("model") or settings.default_model("chat", DEFAULT_MODEL)
    if completions_only(model):
        raise OaicliError(f"serve speaks chat completions (like chat --envelope); {model} is a completions-only "
                          "model.", "Choose a chat model with -m.", exit_code=ExitCode.USAGE)
    params = {"max_tokens": envelope_options["answer_tokens"], "temperature": envelope_options.pop("temperature")}
    engine_options = dict(model=model, extra_params={k: v for k, v in params.items() if v is not None},
                          **envelope_options)
    sock = run_module.bind(host, port)
    if processes > 1:
        from oaicli.envelope.http.procs import ProcessRunner
        flags = click.get_current_context().find_root().meta.get(FLAGS_KEY, {})
        runner = ProcessRunner(processes, {"flags": flags, "engine": engine_options,
                                           "workers": -(-workers // processes)})
        parser, closing = runner.parser, [runner.stop]
    else:
        exchanger, closing = build(settings, engine_options, workers)
        runner, parser = app_module.ThreadRunner(exchanger, workers), exchanger.parser
    service = app_module.Service(runner, parser, token=token, max_body=max_body)
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(redact(f"Serving the envelope on http://{shown_host}:{sock.getsockname()[1]}/v1/envelope "
                      f"(model {model}, {'token required' if token else 'no token'}); Ctrl-C stops."), err=True)
    try:
        return run_module.run(app_module.create_app(service), sock, shutdown_timeout=shutdown_timeout,
                              verbose=settings.verbose, close=runner.close, busy=runner.busy)
    finally:
        for close in closing:
            close()


def build(settings, engine_options: dict, workers: int):
    """The store, the engine and the upstream clients one process answers with: (exchanger, closers)."""
    from oaicli.api.client import ApiClient
    from oaicli.envelope.engine import Envelope
    from oaicli.envelope.http.exchange import Exchanger
    from oaicli.conversation.store import Store
    store = Store.open()
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
