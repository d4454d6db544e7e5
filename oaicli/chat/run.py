"""The body of `oaicli chat`: one turn, a stored session, or the interactive loop."""

import click

from oaicli.chat.interactive import InteractiveLoop
from oaicli.chat.session import Chat
from oaicli.chat.stdin import read_prompt
from oaicli.output import writers as output


def main(prompt, opts, invocation) -> int:
    """One turn (stateless or in a session), or the interactive loop; the exit code."""
    settings = invocation.settings
    model = opts["model"] or settings.default_model("chat")
    if opts["session"] and opts["continue_"]:
        raise click.UsageError("Use either --session NAME or -c/--continue, not both.")
    fmt = output.answer_format(invocation)
    interactive = opts["interactive"] or (prompt is None and not opts["messages"] and invocation.stdin_tty)
    chat = Chat(opts, model, fmt, invocation)
    if interactive:
        return InteractiveLoop(chat).run(prompt)
    question = read_prompt(invocation, prompt, allow_empty=bool(opts["messages"]))
    if chat.session_name:
        chat.session_turn(question)
    else:
        chat.stateless_turn(question)
    return 0
