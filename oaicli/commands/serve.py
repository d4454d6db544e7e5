"""`oaicli serve`: the upper-application envelope over HTTP (POST /v1/envelope), for bots and back ends."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command, store_option

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


@command(None, "serve", output=False)
@store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Other than loopback, --token (or --insecure) is required.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--token", envvar="OAICLI_SERVE_TOKEN", metavar="TOKEN",
              help="Require `Authorization: Bearer TOKEN` (else OAICLI_SERVE_TOKEN).")
@click.option("--insecure", is_flag=True, help="Listen on a non-loopback address without a token.")
@click.option("-m", "--model", help="Model (default: the profile's models.chat, else gpt-3.5-turbo).")
@click.option("-s", "--system", help="System prompt of every context.")
@click.option("--group-shared", is_flag=True, help="One context per group, shared by its users.")
@click.option("--api", type=click.Choice(["chat", "responses", "auto"]),
              help="chat: /v1/chat/completions (the default); responses: /v1/responses; auto: responses at "
              "OpenAI, else chat unless the server answers /responses. Default: OAICLI_CHAT_API or the profile's "
              "chat_api.")
@click.option("--context", type=click.Choice(["local", "previous", "server"]), default="local", show_default=True,
              help="With --api responses: previous chains each question on its context's last answer "
              "(previous_response_id); server keeps each (group, user) context in a Conversation. The local "
              "store records every turn either way.")
@click.option("--max-tokens", "answer_tokens", type=click.IntRange(min=1), metavar="N",
              help="Most tokens per answer (sent as max_tokens; that room is kept free of history).")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature, 0 to 2.")
@click.option("--context-window", type=click.IntRange(min=16), metavar="N",
              help="The model's context window in tokens (default: from the known-model table).")
@click.option("--max-history", type=click.IntRange(min=0), metavar="N", help="Send at most N earlier exchanges (question and answer pairs).")
@click.option("--max-question-chars", type=click.IntRange(min=1), default=32000, show_default=True,
              help="Longer questions are refused (code 1004, HTTP 400).")
@click.option("--max-body", type=click.IntRange(min=64), default=262144, show_default=True, metavar="BYTES",
              help="Larger request bodies are refused (code 1004, HTTP 413).")
@click.option("--workers", type=click.IntRange(min=1), default=128, show_default=True,
              help="Upstream connections, i.e. contexts answered at once (split over --processes; threads only "
                   "with a PostgreSQL store).")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes answering, each on its own event loop (a context always in the same "
                   "one); more than 1 uses more cores. A worker that dies is replaced.")
@click.option("--metrics/--no-metrics", default=True, show_default=True,
              help="Serve GET /metrics (Prometheus text: requests by outcome, added and upstream latency).")
@click.option("--shutdown-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              metavar="SECONDS", help="On SIGTERM or Ctrl-C, how long answers in flight may take to finish.")
def serve(host, port, token, insecure, model, system, group_shared, api, context, answer_tokens, temperature,
          context_window, max_history, max_question_chars, max_body, workers, processes, metrics, shutdown_timeout):
    """Serve the envelope over HTTP: POST /v1/envelope, GET /healthz, GET /metrics.

    The request and response are those of `chat --envelope`, one per HTTP request, with the same
    store and idempotent question_id. With `Accept: text/event-stream` the answer streams as
    `delta` events, then a `final` event. Requests of one context are answered strictly in order;
    different contexts run at once. SIGTERM or Ctrl-C stops gracefully: answers in flight finish
    (or, past --shutdown-timeout, are not saved). Needs uvicorn: `pipx inject oaicli uvicorn
    httptools`, or in a venv `pip install '.[serve]'` from the clone.

    With --api responses the questions go through /v1/responses; --context previous or server then
    keeps each context on the server too (only the new question is sent), and the local store still
    records every turn: a context the server lost is sent again from it.

    \b
    Example:
      OAICLI_SERVE_TOKEN=s3cret oaicli serve --port 8080
      curl -s localhost:8080/v1/envelope -H 'Authorization: Bearer s3cret' \\
        -d '{"version":"1.0.0","pars":{"user_id":"1","group_id":"","question":"Hi","question_id":""}}'
      oaicli serve --api responses --context server -m gpt-5-mini
    """
    from oaicli.core.errors import ExitCode, OaicliError, register_secret
    register_secret(token)
    if not token and not insecure and not _is_loopback(host):
        raise OaicliError(f"Refusing to listen on {host} without a token: anyone who can reach it could use "
                          "your API key.", "Pass --token (or OAICLI_SERVE_TOKEN), or --insecure if you mean it.",
                          exit_code=ExitCode.USAGE)
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise OaicliError("`oaicli serve` needs the server libraries: "
                          "pipx inject oaicli uvicorn httptools (in a venv: pip install '.[serve]' from the clone)") from None
    from oaicli.envelope.http import main
    return main.start(invocation.current(), host=host, port=port, token=token, api=api, envelope_options=dict(
        model=model, system=system, group_shared=group_shared, answer_tokens=answer_tokens, temperature=temperature,
        context_window=context_window, max_history=max_history, max_question_chars=max_question_chars,
        context=context), max_body=max_body, workers=workers, processes=processes, metrics=metrics,
        shutdown_timeout=shutdown_timeout)


def _is_loopback(host: str) -> bool:
    import ipaddress
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
