"""Batch request files: check every line locally before anything is uploaded, and build them from prompts
or embedding inputs with custom_ids that encode each request's place.

The checker reads a binary stream one line at a time (never the whole file, never more than one line
of at most `max_line_bytes`), so a 200 MB file costs a line's worth of memory plus the custom_ids seen.
"""

import json
from dataclasses import dataclass, field
from typing import Iterable, Iterator

# The endpoints the Batch API runs (CreateBatchRequest.endpoint in OpenAI's spec) and the body fields
# each needs; a tuple inside means "one of these".
ENDPOINTS = {
    "/v1/responses": ("model", "input"),
    "/v1/chat/completions": ("model", "messages"),
    "/v1/embeddings": ("model", "input"),
    "/v1/completions": ("model", "prompt"),
    "/v1/moderations": ("input",),
    "/v1/images/generations": ("prompt",),
    "/v1/images/edits": ("prompt", ("image", "images")),
    "/v1/videos": ("prompt",),
}
MAX_REQUESTS = 50_000  # per batch file (the API's documented limit)
MAX_FILE_BYTES = 200 * 1024 * 1024  # per batch file
MAX_EMBEDDING_INPUTS = 50_000  # summed over every request of an /v1/embeddings batch
# The API documents no per-line limit; a line this long is almost surely a file with a missing newline,
# and refusing it bounds the memory the check needs. Inline base64 images fit well under it.
MAX_LINE_BYTES = 64 * 1024 * 1024
MAX_REPORTED = 20  # problems listed one by one; the rest are counted
LINE_KEYS = ("custom_id", "method", "url", "body")


@dataclass
class Problem:
    line: int | None  # None: the file as a whole (the endpoint, its size)
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


@dataclass
class Report:
    endpoint: str | None = None
    lines: int = 0
    bytes: int = 0
    embedding_inputs: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, line: int | None, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(Problem(line, message))

    def summary(self) -> str:
        """One line for stderr: how many problems, and where the first is."""
        if self.ok:
            return f"{self.lines} requests for {self.endpoint}, {self.bytes} bytes: all lines are valid."
        more = self.problem_count - len(self.problems)
        return (f"{self.problem_count} problem(s) in the batch file, nothing was uploaded; first: {self.problems[0]}"
                + (f" (and {more} not listed)" if more > 0 else ""))


def validate(stream, endpoint: str | None = None, *, max_line_bytes: int = MAX_LINE_BYTES,
             max_requests: int = MAX_REQUESTS, max_file_bytes: int = MAX_FILE_BYTES) -> Report:
    """Check every line of a binary stream; each problem is recorded with its line number.

    Without `endpoint`, the first line's url decides it, and every other line must match it."""
    report = Report(endpoint=endpoint)
    if endpoint is not None and endpoint not in ENDPOINTS:
        report.add(None, f"{endpoint} is not an endpoint the Batch API runs; use one of {', '.join(ENDPOINTS)}.")
    seen: dict[str, int] = {}
    for number, raw in enumerate(_lines(stream, max_line_bytes), 1):
        report.lines = number
        report.bytes += raw.size
        if number == max_requests + 1:
            report.add(number, f"a batch holds at most {max_requests:,} requests; this file has more.")
        if report.bytes > max_file_bytes and report.bytes - raw.size <= max_file_bytes:
            report.add(number, f"the file passes {max_file_bytes // (1024 * 1024)} MB here, the most a batch takes.")
        for message in _line_problems(raw, number, report, seen, max_line_bytes):
            report.add(number, message)
    if report.lines == 0:
        report.add(None, "the batch file holds no requests.")
    if report.embedding_inputs > MAX_EMBEDDING_INPUTS:
        report.add(None, f"the requests hold {report.embedding_inputs:,} embedding inputs; "
                         f"an embeddings batch takes at most {MAX_EMBEDDING_INPUTS:,}.")
    return report


@dataclass
class RawLine:
    data: bytes | None  # None when the line was too long to keep
    size: int


def _lines(stream, max_line_bytes: int) -> Iterator[RawLine]:
    """Lines of a binary stream without their end; a line longer than the limit is skipped in pieces."""
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        size = len(chunk)
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(min(max_line_bytes + 1, 1 << 20))
                size += len(chunk)
            yield RawLine(None, size)
        else:
            yield RawLine(chunk.rstrip(b"\r\n"), size)


def _line_problems(raw: RawLine, number: int, report: Report, seen: dict, max_line_bytes: int) -> list[str]:
    if raw.data is None:
        return [f"the line is {raw.size:,} bytes, over the {max_line_bytes:,}-byte limit for one request."]
    if not raw.data.strip():
        return ["the line is blank; every line must be one request."]
    try:
        text = raw.data.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return [f"the line is not UTF-8 text (byte {exc.start + 1})."]
    try:
        request = json.loads(text)
    except ValueError as exc:
        return [f"the line is not JSON ({exc.msg} at column {exc.colno})."]
    if not isinstance(request, dict):
        return ["the line is not a JSON object with custom_id, method, url and body."]
    return _request_problems(request, number, report, seen)


def _request_problems(request: dict, number: int, report: Report, seen: dict) -> list[str]:
    problems = [f"{key} is missing." for key in LINE_KEYS if key not in request]
    custom_id = request.get("custom_id")
    if "custom_id" in request and (not isinstance(custom_id, str) or not custom_id):
        problems.append("custom_id must be a non-empty string.")
    elif isinstance(custom_id, str):
        if custom_id in seen:
            problems.append(f"custom_id {custom_id!r} repeats line {seen[custom_id]}; each must be unique.")
        else:
            seen[custom_id] = number
    if "method" in request and request["method"] != "POST":
        problems.append(f"method is {request['method']!r}; batch requests use POST.")
    if "url" in request:
        problems += _url_problems(request["url"], report)
    if "body" in request:
        problems += _body_problems(request["body"], request.get("url"), report)
    return problems


def _url_problems(url, report: Report) -> list[str]:
    if url not in ENDPOINTS:
        return [f"url {url!r} is not an endpoint the Batch API runs ({', '.join(ENDPOINTS)})."]
    if report.endpoint is None:
        report.endpoint = url
    elif url != report.endpoint:
        return [f"url {url} does not match the batch's endpoint {report.endpoint}; one batch runs one endpoint."]
    return []


def _body_problems(body, url, report: Report) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object."]
    problems = []
    for required in ENDPOINTS.get(url, ()):
        names = required if isinstance(required, tuple) else (required,)
        if not any(name in body for name in names):
            problems.append(f"body has no {' or '.join(names)} (required by {url}).")
    if body.get("stream"):
        problems.append("body asks for stream; batch requests cannot stream.")
    if url == "/v1/embeddings" and "input" in body:
        report.embedding_inputs += len(body["input"]) if isinstance(body["input"], list) else 1
    return problems


# ----- building request files -----

def custom_id(prefix: str, index: int) -> str:
    """Zero-padded, so the ids sort in request order as text too (a batch holds at most 50,000)."""
    return f"{prefix}-{index:06d}"


def index_of(custom_id_value: str) -> int | None:
    """The request's place from a custom_id this module made; None for any other id."""
    _, _, digits = custom_id_value.rpartition("-")
    return int(digits) if digits.isdigit() else None


def request_line(custom_id_value: str, url: str, body: dict) -> bytes:
    """One JSONL line (with its newline) of a batch file."""
    line = {"custom_id": custom_id_value, "method": "POST", "url": url, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class InputError(ValueError):
    """A prompts line that cannot become a request; `line` is its number."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


def chat_requests(lines: Iterable[bytes], model: str, *, system: str | None = None,
                  options: dict | None = None) -> Iterator[bytes]:
    """Batch lines for /v1/chat/completions from a prompts file: each line a JSON string (one user
    prompt, after `system` when given) or a JSON array of messages. Blank lines are skipped, and
    custom_ids number the requests in order (`chat-000000`, ...)."""
    index = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        messages = _messages(raw, number, system)
        yield request_line(custom_id("chat", index), "/v1/chat/completions",
                           {"model": model, "messages": messages, **(options or {})})
        index += 1


def _messages(raw: bytes, number: int, system: str | None) -> list[dict]:
    try:
        value = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
    except UnicodeDecodeError:
        raise InputError(number, "the line is not UTF-8 text.") from None
    except ValueError:
        raise InputError(number, 'the line is not JSON; write a prompt as a JSON string ("...") '
                                 "or a conversation as an array of messages.") from None
    if isinstance(value, str) and value.strip():
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    raise InputError(number, "expected a non-empty prompt string or an array of messages with roles.")


def embedding_requests(batches: Iterable[list[str]], model: str, *,
                       options: dict | None = None) -> Iterator[bytes]:
    """Batch lines for /v1/embeddings, one per group of inputs (grouped as `embed` groups them for its
    own requests); custom_ids number the groups, so the vectors come back in input order."""
    total = 0
    for index, texts in enumerate(batches):
        total += len(texts)
        if total > MAX_EMBEDDING_INPUTS:
            raise InputError(total, f"an embeddings batch takes at most {MAX_EMBEDDING_INPUTS:,} inputs.")
        yield request_line(custom_id("embed", index), "/v1/embeddings",
                           {"model": model, "input": list(texts), **(options or {})})
