"""Exit codes, the error types every layer raises, and redaction of secrets."""

import enum
import re


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # anything not covered below
    USAGE = 2  # Click's own code for bad arguments
    AUTH = 3  # no key, or a key the API refuses (401, 403)
    REQUEST = 4  # any other request the API rejects (other 4xx), or bad local input
    SERVER = 5  # server or network failure after retries, or a broken stream
    JOB_FAILED = 6  # a followed job ended in failure
    JOB_CANCELLED = 7  # a followed job was cancelled
    TIMEOUT = 8  # a wait or follow gave up after --timeout
    FLAGGED = 9  # moderation flagged the input
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM (128 + 15, as shells report it): a cancelled CI job


_secrets: dict[str, str] = {}  # each form a secret can take in text -> its mask, longest form first
_starts: str = ""  # the first characters of the forms: text without any of them cannot hold one


def register_secret(value: str | None) -> None:
    """Remember a value that must never be printed (an API key, a serve token), in every form it can
    take in an error text: as given, with its whitespace folded, escaped as Python's repr of str and
    bytes shows it (header errors), as JSON escapes it (a server echoing it), and URL-encoded."""
    global _starts
    if not value or len(value) < 4:
        return
    forms = {**_secrets, **{form: mask(value) for form in _forms(value) if len(form) >= 4 and form not in _secrets}}
    _secrets.clear()
    _secrets.update(sorted(forms.items(), key=lambda item: -len(item[0])))  # a longer form holds a shorter
    _starts = "".join({form[0] for form in _secrets})


def _forms(value: str) -> set[str]:
    import json
    from urllib.parse import quote, quote_plus
    encoded = value.encode("utf-8", errors="surrogateescape")  # argv bytes that were not UTF-8 come back
    return {value, " ".join(value.split()), repr(value)[1:-1], repr(encoded)[2:-1], json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1], quote(encoded, safe=""), quote_plus(encoded, safe=""),
            encoded.decode("latin-1")}  # bytes shown as latin-1 text, as HTTP libraries do


def mask(secret: str | None) -> str:
    """A secret as it may be shown: its first 3 and last 4 characters, escaped (a line break in them
    prints as a backslash and n, never as itself)."""
    if not secret:
        return ""
    if len(secret) <= 12:
        return "*" * len(secret)
    return f"{secret[:3]}...{secret[-4:]}".encode("unicode_escape").decode("ascii")


# What an OpenAI key looks like: sk- (sk-proj-, sk-svcacct-, sk-admin-...) and 20 or more key characters.
KEY_LIKE = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}")


def mask_key_like(text: str) -> str:
    """`text` with anything shaped like an OpenAI key masked, configured or not (for Click's usage errors,
    which quote the command line as typed: a key pasted as a stray argument would be printed)."""
    return KEY_LIKE.sub(lambda match: mask(match.group()), text)


def redact(text: str) -> str:
    """`text` with every registered secret, in each of its forms, replaced by its mask."""
    for form, shown in _secrets.items():
        if form in text:
            text = text.replace(form, shown)
    return text


class PieceRedactor:
    """Redacts text that arrives in pieces (a streamed answer), so that a secret split across two pieces
    is masked too. Only a tail that could be the start of a secret is held back, until the next piece
    or `drain()`; any other text passes at once."""

    def __init__(self):
        self.tail = ""

    def feed(self, text: str) -> str:
        text = self.tail + text
        if not any(first in text for first in _starts):  # most deltas: nothing a secret could begin with
            self.tail = ""
            return text
        text = redact(text)
        keep = _unfinished(text)
        self.tail = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def drain(self) -> str:
        """The text held back, once the last piece has come."""
        text, self.tail = self.tail, ""
        return text


class RedactingWriter:
    """A text stream whose writes go through a PieceRedactor (for a printer of streamed answers)."""

    def __init__(self, stream):
        self.stream = stream
        self.redactor = PieceRedactor()

    def write(self, text: str) -> None:
        self.stream.write(self.redactor.feed(text))

    def flush(self) -> None:
        self.stream.flush()

    def drain(self) -> None:
        self.stream.write(self.redactor.drain())
        self.stream.flush()


def _unfinished(text: str) -> int:
    """The length of the longest end of `text` that some secret's form starts with. Only the places
    where a form's first character stands are tried (a streamed answer's deltas are a few characters)."""
    earliest = len(text)
    for first in _starts:
        at = text.find(first, max(0, len(text) - len(next(iter(_secrets))) + 1))
        while at != -1 and at < earliest:
            if any(form.startswith(text[at:]) for form in _secrets):
                earliest = at
                break
            at = text.find(first, at + 1)
    return len(text) - earliest


class OaicliError(Exception):
    """An error the user can act on: printed as one line, mapped to an exit code."""

    exit_code = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        line = f"Error: {self.message}"
        if self.hint:
            line += f" {self.hint}"
        return redact(" ".join(line.split()))


class ConfigError(OaicliError):
    exit_code = ExitCode.AUTH


class InputError(OaicliError):
    """Bad local input found before any request: a missing file, a wrong format."""

    exit_code = ExitCode.REQUEST


class NetworkError(OaicliError):
    exit_code = ExitCode.SERVER


class StreamError(NetworkError):
    """A response stream that broke or ended without its terminator."""


_HINTS = {
    401: "Check your API key and organization (`oaicli config show`).",
    403: "Your key or organization may lack access to this resource (`oaicli config show`).",
}


class ApiError(OaicliError):
    """A non-2xx answer, keeping what the API said about it."""

    def __init__(self, status: int, message: str, type: str | None = None,
                 code: str | None = None, request_id: str | None = None,
                 param: str | None = None, hint: str | None = None):
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        super().__init__(message, hint or self._default_hint(), self._exit_code_for(status))

    def _default_hint(self) -> str | None:
        if self.status == 429:
            if self.code == "insufficient_quota" or self.type == "insufficient_quota":
                return "Your quota is used up: check your plan and billing; retrying will not help."
            return "Rate limited: wait and try again, or raise --max-retries."
        if self.status >= 500:
            return "The server failed; try again later."
        return _HINTS.get(self.status)

    @staticmethod
    def _exit_code_for(status: int) -> ExitCode:
        if status in (401, 403):
            return ExitCode.AUTH
        if 400 <= status < 500 and status not in (408, 429):
            return ExitCode.REQUEST
        return ExitCode.SERVER

    def one_line(self) -> str:
        label = ", ".join(part for part in (self.type, f"HTTP {self.status}") if part)
        line = f"Error: {self.message} ({label})"
        if self.hint:
            line += f". {self.hint}"
        return redact(" ".join(line.split()))
