"""Wiring for `oaicli serve`: settings, the engine (in this process or in worker processes), the app,
the listening socket."""

from oaicli.conversation.turn import completions_only
from oaicli.core.errors import ExitCode, OaicliError, redact
from oaicli.envelope.http import app as app_module
from oaicli.envelope.http import run as run_module
from oaicli.envelope.http.build import build_runner
from oaicli.envelope.http.procs import ProcessRunner


def start(invocation, *, host: str, port: int, token: str | None, envelope_options: dict, max_body: int, workers: int,
          processes: int, shutdown_timeout: float, metrics: bool = True) -> int:
    settings = invocation.settings
    settings.require_key()  # no key: say so now (exit 3), not in every answer
    model = envelope_options.pop("model") or settings.default_model("chat")
    if completions_only(model):
        raise OaicliError(f"serve speaks chat completions (like chat --envelope); {model} is a completions-only "
                          "model.", "Choose a chat model with -m.", exit_code=ExitCode.USAGE)
    params = {"max_tokens": envelope_options["answer_tokens"], "temperature": envelope_options.pop("temperature")}
    engine_options = dict(model=model, extra_params={k: v for k, v in params.items() if v is not None},
                          **envelope_options)
    sock = run_module.bind(host, port)
    if processes > 1:
        runner = ProcessRunner(processes, {"flags": settings.flags, "engine": engine_options,
                                           "workers": -(-workers // processes)})
        parser, closing, start = runner.parser, [runner.stop], runner.start
    else:
        runner, closing = build_runner(settings, engine_options, workers)
        parser, start = runner.parser, None
    service = app_module.Service(runner, parser, token=token, max_body=max_body, metrics=metrics)
    shown_host = f"[{host}]" if ":" in host else host
    invocation.say(redact(f"Serving the envelope on http://{shown_host}:{sock.getsockname()[1]}/v1/envelope "
                          f"(model {model}, {'token required' if token else 'no token'}); Ctrl-C stops."))
    try:
        return run_module.run(app_module.create_app(service), sock, shutdown_timeout=shutdown_timeout,
                              verbose=settings.verbose, close=runner.close, busy=runner.busy,
                              abandon=service.abandon, start=start)
    finally:
        for close in closing:
            close()
