"""How one Responses answer is shown: text deltas to stdout as they arrive, reasoning summaries to stderr
(hidden with -q), function calls shown (never run), the final response object with --format json (each event with jsonl), and
usage with reasoning tokens on stderr. The answer comes back in the chat.completion shape the local
store saves, with the response's id kept beside it."""

import json

from oaicli.api import responses as r
from oaicli.api.responses import as_completion
from oaicli.chat import schema as schemas
from oaicli.core.errors import ExitCode, OaicliError, RedactingWriter
from oaicli.output import writers as output


class ResponsesDisplay:
    def __init__(self, invocation, fmt: str, opts, schema: dict | None = None):
        self.invocation = invocation
        self.fmt = fmt
        self.stream = opts["stream"] is not False
        self.usage = opts["usage"]
        self.schema = schema
        self._reasoning_open = False
        self._reasoning_shown = False  # a summary went to stderr as it arrived
        self._wrote = False  # answer text went to stdout as it arrived
        self._live: list[str] = []  # that text
        self._ends_with_newline = True
        # A server may echo the key in an answer, even split across two deltas: masked all the same.
        self._text = RedactingWriter(invocation.stdout)
        self._reasoning = RedactingWriter(invocation.stderr)

    def send(self, requester, body: dict) -> dict:
        """Ask, show, and return the answer in chat.completion shape (see as_completion)."""
        if self.stream:
            body["stream"] = True
            if self.fmt == "jsonl":  # each event as it arrives, as chat prints each chunk
                requester.on_event = lambda event: output.write_json_line(event, self.invocation.stdout)
        response = self.watching(lambda on_happening: requester(body, on_happening))
        self.show(response)
        return as_completion(response)

    def watching(self, run) -> dict:
        """`run(on_happening)` (a request, or following a response) with what happens shown as it
        arrives; its final response object."""
        try:
            return run(self._on_happening)
        finally:
            self._reasoning.drain()
            self._end_reasoning()
            self._text.drain()
            self._end_line()

    def _live_text(self) -> bool:
        # With a schema the answer is checked whole before anything is printed.
        return self.stream and self.fmt == "text" and self.schema is None

    def _on_happening(self, happening) -> None:
        if isinstance(happening, r.TextDelta) and self._live_text():
            self._reasoning.drain()
            self._end_reasoning()
            self._text.write(happening.text)
            self._text.flush()
            self._wrote = True
            self._live.append(happening.text)
            self._ends_with_newline = happening.text.endswith("\n")
        elif isinstance(happening, r.ReasoningDelta) and self.fmt == "text" and not self.invocation.quiet:
            if not self._reasoning_open:
                self.invocation.stderr.write("Reasoning: ")
                self._reasoning_open = self._reasoning_shown = True
            self._reasoning.write(happening.text)
            self._reasoning.flush()

    def notice(self, text: str) -> None:
        """A line for the user (a resumed stream) on a line of its own, not inside a streamed reasoning
        summary or, on a terminal, the answer."""
        self._reasoning.drain()
        self._end_reasoning()
        if self.invocation.stdout_tty:
            self._text.drain()
            self._end_line()
        self.invocation.notice(text)

    def _end_reasoning(self) -> None:
        if self._reasoning_open:
            self.invocation.stderr.write("\n")
            self.invocation.stderr.flush()
            self._reasoning_open = False

    def _end_line(self) -> None:
        if self._wrote and not self._ends_with_newline:
            self.invocation.stdout.write("\n")
            self.invocation.stdout.flush()
            self._ends_with_newline = True

    def show(self, response: dict) -> None:
        text = r.output_text(response)
        if self.schema is not None:
            check(text, self.schema)
        if self.fmt == "json":
            output.write(output.dumps(response), stream=self.invocation.stdout)
        elif self.fmt == "jsonl":
            if not self.stream:  # streamed, every event was printed as it came
                output.write_json_line(response, self.invocation.stdout)
        else:
            self._show_text(response, text)
        if response.get("status") == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason") or "no reason given"
            self.invocation.notice(f"The answer is incomplete ({reason}).")
        if self.usage:
            self.invocation.say(usage_line(response))

    def _show_text(self, response: dict, text: str) -> None:
        summary = r.reasoning_summary(response)
        if summary and not self._reasoning_shown and not self.invocation.quiet:
            self.invocation.say(f"Reasoning: {summary}")
        if text:  # what did not stream: all of it (no stream, a server that ignored it), or the rest of an
            # answer whose stream broke off before `responses follow` went on by polling
            shown = "".join(self._live)
            rest = text[len(shown):] if text.startswith(shown) else text
            if rest:
                output.write(rest.rstrip("\n"), stream=self.invocation.stdout)
        refused = r.refusal(response)
        if refused:
            output.write(f"Refused: {refused}", stream=self.invocation.stdout)
        for call in r.tool_calls(response):
            output.write(f"Tool call {call.name}({call.arguments}) [{call.call_id}]", stream=self.invocation.stdout)
        if r.tool_calls(response):
            self.invocation.notice("The model asked for tool calls; oaicli shows them and does not run them.")


def check(text: str, schema: dict) -> None:
    """Refuse (exit 5, nothing printed) an answer that is not JSON matching the schema."""
    try:
        value = json.loads(text)
    except ValueError:
        raise OaicliError("The answer is not JSON, so it does not match --schema; nothing was printed.",
                          exit_code=ExitCode.SERVER) from None
    found = schemas.problems(value, schema)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise OaicliError(f"The answer does not match --schema: {found[0]}{more}; nothing was printed.",
                          exit_code=ExitCode.SERVER)


def usage_line(response: dict) -> str:
    usage = response.get("usage")
    if not usage:
        return "Usage: the server did not report token usage."
    counts = r.usage_of(response)
    return (f"Usage: {counts.input_tokens} input + {counts.output_tokens} output "
            f"({counts.reasoning_tokens} reasoning) = {counts.total_tokens} tokens.")
