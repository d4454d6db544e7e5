"""How one answer is shown: deltas written as they arrive (one labelled block per choice when n > 1), the response
object as JSON, or each chunk as a JSON line; the usage line on stderr."""

from oaicli.api.completions import Requester, answer_of
from oaicli.core.errors import RedactingWriter
from oaicli.output import writers as output


class Printer:
    """Writes deltas to a text stream as they arrive and flushes each one.

    With n > 1 (labelled) servers interleave the choices' tokens; printed as they come that is one
    labelled line per token. So the first choice to speak is shown live and the others are kept,
    each printed as one labelled block when the answer ends."""

    def __init__(self, stream, labelled: bool = False, strip_leading: bool = False):
        self.stream = stream
        self.labelled = labelled
        self.live: int | None = None
        self.held: dict[int, list[str]] = {}
        self.wrote = False
        self.ends_with_newline = True
        # A transcript answer starts with the space after "Assistant:"; drop it (per choice).
        self.stripping = set() if strip_leading else None

    def __call__(self, pieces) -> None:
        for index, text in pieces:
            if self.stripping is not None and index not in self.stripping:
                text = text.lstrip()
                if not text:
                    continue
                self.stripping.add(index)
            if self.live is None:
                self.live = index
                if self.labelled:
                    self._write(f"[{index}] ")
            if index == self.live:
                self._write(text)
            else:
                self.held.setdefault(index, []).append(text)
        self.stream.flush()

    def _write(self, text: str) -> None:
        if text:
            self.stream.write(text)
            self.wrote = True
            self.ends_with_newline = text.endswith("\n")

    def finish(self) -> None:
        """Print the held choices, one block each, and end the answer on a line of its own."""
        for index in sorted(self.held):
            self._write(("" if self.ends_with_newline else "\n") + f"[{index}] " + "".join(self.held.pop(index)))
        if self.wrote and not self.ends_with_newline:
            self.stream.write("\n")
            self.ends_with_newline = True
        self.stream.flush()


class AnswerDisplay:
    """Streams or waits for one answer and shows it: text (deltas flushed as they come, one labelled
    block per choice when n > 1), json (the response object, assembled when streamed) or jsonl (each chunk)."""

    def __init__(self, invocation, fmt: str, opts, strip_leading: bool = False, keep_usage: bool = False):
        self.invocation = invocation
        self.fmt = fmt
        self.stream = opts["stream"] is not False
        self.usage = opts["usage"]
        self.labelled = (opts.get("n") or 1) > 1
        self.strip_leading = strip_leading
        self.want_usage = bool(opts["usage"] or fmt != "text" or keep_usage)

    def send(self, requester: Requester, body: dict) -> dict:
        if self.stream:
            body["stream"] = True
            if self.want_usage:
                body["stream_options"] = {"include_usage": True}
        # A server may echo the key in an answer, even split across two deltas: masked all the same.
        stdout = RedactingWriter(self.invocation.stdout)
        printer = Printer(stdout, labelled=self.labelled, strip_leading=self.strip_leading)
        on_event = self._on_event(printer) if self.stream else None
        try:
            response = requester(body, on_event)
        except Exception:
            printer.finish()  # end a half-written answer's line, so the error line starts on its own
            stdout.drain()
            raise
        self.show(response, printer)
        stdout.drain()
        return response

    def _on_event(self, printer: Printer):
        if self.fmt == "jsonl":
            return lambda event, pieces: output.write_json_line(event, self.invocation.stdout)
        if self.fmt == "json":
            return None
        return lambda event, pieces: printer(pieces) if pieces else None

    def show(self, response: dict, printer: Printer) -> None:
        if self.fmt == "json":
            output.write(output.dumps(response), stream=self.invocation.stdout)
        elif self.fmt == "jsonl" and not self.stream:
            output.write_json_line(response, self.invocation.stdout)
        elif self.fmt == "text" and not self.stream:
            printer([(c.get("index", 0), answer_of(response, c.get("index", 0)))
                     for c in response.get("choices") or ()])
        printer.finish()
        if self.usage:
            self.invocation.say(usage_line(response.get("usage")))


def usage_line(usage: dict | None) -> str:
    if not usage:
        return "Usage: the server did not report token usage."
    return (f"Usage: {usage.get('prompt_tokens', '?')} prompt + {usage.get('completion_tokens', '?')} completion "
            f"= {usage.get('total_tokens', '?')} tokens.")
