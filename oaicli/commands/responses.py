"""`oaicli responses follow|cancel`: the hand-written verbs of the responses group (the generated get,
delete and input-items come from the spec)."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command, wait_deadline


@click.group("responses")
def responses():
    """Follow and cancel responses (the Responses API; `oaicli chat --api responses` asks).

    \b
    Example:
      ID=$(oaicli chat --api responses --background "Write a long report")
      oaicli responses follow "$ID" > report.txt
    """


@command(None, "follow", formats=("text", "json", "jsonl"))
@click.argument("response_id")
def follow(response_id):
    """Wait for a (background) response to end and print its answer.

    While it runs, its events are read from its stream (GET /responses/ID?stream=true, resumed after
    the last event when the connection drops); a server that will not stream it is polled. On a
    terminal the answer appears as it arrives; in a pipe or file it is written once the response has
    completed, so a failed, cancelled or incomplete response leaves stdout empty (--format json prints
    the final object, partial output included, whatever the status). Status changes and reasoning
    summaries go to stderr (hidden with -q). Exit 0 completed, 6 failed, 7 cancelled or incomplete, 8
    when --timeout runs out first, 130 on Ctrl-C (the response goes on).

    \b
    Example:
      oaicli responses follow resp_abc123 --timeout 600
      oaicli responses follow resp_abc123 > report.txt || echo "no complete answer"
    """
    from oaicli.api import responses_wire as wire
    from oaicli.chat.responses_display import ResponsesDisplay
    from oaicli.core.errors import ExitCode
    from oaicli.output import writers as output
    run = invocation.current()
    fmt = output.answer_format(run)
    api = run.client()
    display = ResponsesDisplay(run, fmt, {"stream": fmt == "text" and run.stdout_tty, "usage": False})
    try:
        response = display.watching(lambda on_happening: wire.follow(
            api, response_id, wait_deadline(), lambda current: display.notice(f"Response {response_id}: {current.get('status')}."),
            sleep=api.sleep, on_happening=on_happening, notice=display.notice))
    except KeyboardInterrupt:
        run.say(f"\nStopped following {response_id}; the response goes on.\n"
                f"  Resume: oaicli responses follow {response_id}\n"
                f"  Cancel: oaicli responses cancel {response_id}")
        raise click.exceptions.Exit(ExitCode.INTERRUPTED)
    if fmt == "json":
        output.write(output.dumps(response))
    elif fmt == "jsonl":
        output.write_json_line(response)
    elif response.get("status") == "completed":
        display.show(response)
    wire.outcome(response)


@command(None, "cancel")
@click.argument("response_id")
def cancel(response_id):
    """Cancel a background response.

    \b
    Example:
      oaicli responses cancel resp_abc123
    """
    from oaicli.output import writers as output
    output.render_object(invocation.current().client().post(f"/responses/{response_id}/cancel"),
                         fields=["id", "object", "status", "model", "created_at"])


extra_commands = [follow, cancel]
# Until the generated responses group can take hand-written verbs, they hang off this group of their own.
for _extra in extra_commands:
    responses.add_command(_extra)
