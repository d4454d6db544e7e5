"""Wiring for `oaicli serve`: settings, the engine (in this process or in worker processes), the app,
the listening socket."""

from oaicli.core.errors import redact
from oaicli.envelope.http import app as app_module
from oaicli.envelope.http import run as run_module
from oaicli.envelope.http.build import build_runner
from oaicli.envelope.http.procs import ProcessRunner
from oaicli.envelope.upstream import choose_api


def start(invocation, *, host: str, port: int, token: str | None, envelope_options: dict, max_body: int, workers: int,
          processes: int, shutdown_timeout: float, metrics: bool = True, api: str | None = None) -> int:
    """`api`: chat, responses or auto (default: the profile's chat_api, else chat); the context mode is
    envelope_options["context"] (local, previous, server), as for `chat --envelope`."""
    settings = invocation.settings
    settings.require_key()  # no key: say so now (exit 3), not in every answer
    model = envelope_options.pop("model") or settings.default_model("chat")
    api = choose_api(api or settings.chat_api, envelope_options["context"], model, settings.base_url)
    params = {"max_tokens": envelope_options["answer_tokens"], "temperature": envelope_options.pop("temperature")}
    engine_options = dict(model=model, extra_params={k: v for k, v in params.items() if v is not None},
                          **envelope_options)
    sock = run_module.bind(host, port)
    if processes > 1:
        runner = ProcessRunner(processes, {"flags": settings.flags, "engine": engine_options,
                                           "workers": -(-workers // processes), "api": api})
        parser, closing, start = runner.parser, [runner.stop], runner.start
    else:
        runner, closing = build_runner(settings, engine_options, workers, api)
        parser, start = runner.parser, None
    service = app_module.Service(runner, parser, token=token, max_body=max_body, metrics=metrics)
    shown_host = f"[{host}]" if ":" in host else host
    invocation.say(redact(f"Serving the envelope on http://{shown_host}:{sock.getsockname()[1]}/v1/envelope "
                          f"(model {model}{_through(api, envelope_options['context'])}, {'token required' if token else 'no token'}); "
                          "Ctrl-C stops."))
    try:
        return run_module.run(app_module.create_app(service), sock, shutdown_timeout=shutdown_timeout,
                              verbose=settings.verbose, close=runner.close, busy=runner.busy,
                              abandon=service.abandon, start=start)
    finally:
        for close in closing:
            close()


def _through(api: str, context: str) -> str:
    """How questions are asked, for the start line, when it is not the default."""
    shown = "" if api == "chat" else f" through {'/responses' if api == 'responses' else '/responses or /chat/completions'}"
    return shown + ("" if context == "local" else f", context {context}")
