"""Batch results: the output and error files merged into one JSONL in the order of the input's custom_ids,
by streaming, and counted by status for the table view.

How memory stays flat: the output and error files are scanned once, as they download (LineIndexer),
to index each custom_id to where its line lies (file, byte offset, length), holding no bodies; then the
input file is streamed and each request's line is read back by offset and turned into one result line.
Peak memory is the index (about 220 bytes per request, 11 MB for 50,000), the set of custom_ids
written, one line, a download chunk, and the 256 KiB of result lines waiting to be written. Sorting by the order encoded in custom_ids would
also work, but only for files this tool built; the index works for any.

Each merged line is `{"custom_id", "status", "response"}` for a request that succeeded (the API's
answer body, as the non-batch request would have returned it), `{"custom_id", "status", "error"}`
for one that failed (with `status_code` when the server answered), and status `missing` for a request
in neither file (a batch cancelled or expired before running it).

How it stays fast (the whole command's goal is 50,000 lines/s; benchmarks/README.md): a succeeded
request's body is copied into the result as the server wrote it, not parsed and encoded again
(encoding was 40% of the time). The body is still parsed once (orjson, in C), which proves the copied
bytes are exactly one JSON value, and the line around it is parsed with the body left out, which proves
it is the answer of this custom_id with a 2xx status; any line that does not fit that shape takes the
plain path (parse it all, build the result, encode it). Lines are read back with one pread each (no
seek) and written out 256 KiB at a time.
"""

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import orjson

STATUSES = ("completed", "failed", "missing")
# The custom_id is read with a pattern instead of parsing the whole line: output lines put it before
# the body ({"id", "custom_id", "response", "error"}), so indexing costs one short match per line. The
# pattern matches from the line's start only while no object or array has opened, and only a key that
# follows the `{` or a `,`: then it is a top-level key (inside a JSON string every quote is escaped, so
# `"custom_id"` cannot appear there with its closing quote bare). Any other line is parsed in full.
CUSTOM_ID = re.compile(rb'\s*\{(?:[^{\[]*?,)?\s*"custom_id"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
RESPONSE_KEY = re.compile(rb'"response"\s*:\s*\{')
BODY_KEY = re.compile(rb'"body"\s*:\s*')
# Result lines go to the sink in pieces of this size: one write per line cost more than building them.
WRITE_SIZE = 1 << 18
READ_SIZE = 1 << 18


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    not_in_input: int = 0  # results whose custom_id the input file lacks (written last)
    input_gone: str | None = None  # the input file's id when the API no longer has it (no input order)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def rows(self) -> list[dict]:
        """The table view: one row per status, then the total."""
        rows = [{"status": status, "requests": self.counts.get(status, 0)} for status in STATUSES]
        return rows + [{"status": "total", "requests": self.total}]


def custom_id_of(line: bytes) -> str | None:
    match = CUSTOM_ID.match(line)
    if match is None:
        return _parsed_custom_id(line)
    value = match.group(1)
    return json.loads(b'"' + value + b'"') if b"\\" in value else value.decode()


def _parsed_custom_id(line: bytes) -> str | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value.get("custom_id") if isinstance(value, dict) else None


class LineIndexer:
    """Records custom_id -> (source, offset, length) for each line of the bytes written to it, the first
    copy winning, holding only the unfinished last line. With `copy_to` it also writes them there, so a
    download is indexed as it arrives (no second pass over the file)."""

    def __init__(self, index: dict, source: int, copy_to=None):
        self.index, self.source, self.copy_to = index, source, copy_to
        self.offset = 0  # where the unfinished line starts
        # The unfinished line's pieces, joined once it ends: adding each chunk to one bytes object would
        # copy a line that spans many chunks over and over.
        self.rest: list[bytes] = []

    def write(self, chunk: bytes) -> int:
        if self.copy_to is not None:
            self.copy_to.write(chunk)
        lines = chunk.split(b"\n")
        if len(lines) == 1:  # no line ends in this chunk
            self.rest.append(chunk)
            return len(chunk)
        if self.rest:
            self.rest.append(lines[0])
            lines[0] = b"".join(self.rest)
            self.rest = []
        last = lines.pop()
        if last:
            self.rest.append(last)
        for line in lines:
            self._add(line, len(line) + 1)
        return len(chunk)

    def flush(self) -> None:
        if self.copy_to is not None:
            self.copy_to.flush()

    def finish(self) -> None:
        """Index the last line when the file does not end with a newline."""
        last = b"".join(self.rest)
        self._add(last, len(last))
        self.rest = []

    def _add(self, line: bytes, length: int) -> None:
        custom_id = custom_id_of(line) if line.strip() else None
        if custom_id is not None and custom_id not in self.index:
            self.index[custom_id] = (self.source, self.offset, length)
        self.offset += length


def index_lines(handle, source: int, index: dict) -> None:
    """Index every line of a binary file already on disk (or in memory)."""
    indexer = LineIndexer(index, source)
    for chunk in iter(lambda: handle.read(READ_SIZE), b""):
        indexer.write(chunk)
    indexer.finish()


def merge(input_file, output_file, error_file, sink) -> Summary:
    """Index the output and error files (either may be None), then merge_indexed()."""
    index: dict[str, tuple[int, int, int]] = {}
    for number, handle in enumerate((output_file, error_file)):
        if handle is not None:
            index_lines(handle, number, index)
    return merge_indexed(input_file, [output_file, error_file], index, sink)


def merge_indexed(input_file, sources: list, index: dict, sink) -> Summary:
    """Write one result line per input request to the binary `sink`, in input order, whole lines per
    write. `index` maps custom_ids to lines of `sources` (seekable binary files, or None), as
    LineIndexer builds it.

    `input_file` is iterated line by line."""
    readers = [line_reader(handle) if handle is not None else None for handle in sources]
    summary, pending = Summary(), _Pending(sink)
    used = set()
    for line in input_file:
        custom_id = custom_id_of(line) if line.strip() else None
        if custom_id is not None:
            # get, not pop: a custom_id twice in the input (the API refuses that, other servers may not)
            # gets its result twice, one line per request, instead of "missing" the second time.
            pending.add(result_for(custom_id, index.get(custom_id), readers), summary)
            used.add(custom_id)
    for custom_id, where in index.items():  # answers to requests the input lacks: kept, not lost
        if custom_id not in used:
            summary.not_in_input += 1
            pending.add(result_for(custom_id, where, readers), summary)
    pending.flush()
    return summary


class _Pending:
    """Result lines gathered into WRITE_SIZE pieces before they go to the sink."""

    def __init__(self, sink):
        self.sink = sink
        self.lines: list[bytes] = []
        self.size = 0

    def add(self, result: tuple[str, bytes], summary: Summary) -> None:
        summary.counts[result[0]] += 1
        self.lines.append(result[1])
        self.size += len(result[1])
        if self.size >= WRITE_SIZE:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.sink.write(b"".join(self.lines))
            self.lines, self.size = [], 0


def line_reader(handle):
    """A function (offset, length) -> bytes over a binary file: pread, one system call and no seek, when
    it has a descriptor (the downloaded temporary files); seek and read otherwise (in-memory files, and
    Windows, which has no pread)."""
    descriptor = _descriptor(handle) if hasattr(os, "pread") else None
    if descriptor is None:
        def read(offset: int, length: int) -> bytes:
            handle.seek(offset)
            return handle.read(length)
        return read
    handle.flush()  # what the download wrote must be in the file before pread sees it
    return lambda offset, length: os.pread(descriptor, length, offset)


def _descriptor(handle) -> int | None:
    try:
        return handle.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def encoded(result: dict) -> bytes:
    try:
        return orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer beyond 64 bits, which orjson refuses and json keeps
        return json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def parsed(line: bytes):
    """One JSON value: orjson, or json for what orjson refuses (integers beyond 64 bits); ValueError
    when it is not JSON at all."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def result_for(custom_id: str, where, readers) -> tuple[str, bytes]:
    """The status and the merged line (bytes, with its newline) of one request."""
    if where is None:
        return "missing", encoded({"custom_id": custom_id, "status": "missing", "error": {
            "code": "missing", "message": "the batch returned no result for this request"}})
    source, offset, length = where
    line = readers[source](offset, length)
    merged = completed_line(custom_id, line)
    if merged is not None:
        return "completed", merged
    try:
        value = parsed(line)
    except ValueError:
        value = None
    # A line that names the custom_id but is not a JSON object costs this request, not the whole merge.
    result = result_of(custom_id, value) if isinstance(value, dict) else {
        "custom_id": custom_id, "status": "failed",
        "error": {"code": "unreadable_result", "message": "the batch's result line for this request is not JSON"}}
    return result["status"], encoded(result)


def completed_line(custom_id: str, line: bytes) -> bytes | None:
    """The merged line of a succeeded request with its body copied verbatim; None when `line` is not
    one (a failure, another shape), for the plain path to handle.

    The body is taken to end just before the `}` that closes "response", found from the line's end:
    the Batch API writes {..., "response": {..., "body": {...}}, "error": null}. Both parses below
    prove that split right, so a line laid out otherwise only falls to the plain path."""
    anchor = RESPONSE_KEY.search(line)
    key = BODY_KEY.search(line, anchor.end()) if anchor else None
    if key is None:
        return None
    start = key.end()
    error_key = line.rfind(b'"error"', start)
    end = line.rfind(b"}", start, line.rfind(b"}", start, error_key)) + 1 if error_key > 0 else 0
    if end <= start:
        return None
    body_text = line[start:end]
    try:
        body = orjson.loads(body_text)
        around = orjson.loads(line[:start] + b"null" + line[end:])
    except orjson.JSONDecodeError:
        return None
    response = around.get("response") if isinstance(around, dict) else None
    if (not isinstance(body, dict) or not isinstance(response, dict) or "body" not in response
            or response["body"] is not None or around.get("error") or around.get("custom_id") != custom_id
            or not _succeeded(response.get("status_code"))):
        return None
    return b'{"custom_id":%b,"status":"completed","response":%b}\n' % (orjson.dumps(custom_id), body_text)


def _succeeded(status_code) -> bool:
    return isinstance(status_code, int) and 200 <= status_code < 300


def result_of(custom_id: str, line: dict) -> dict:
    """One output or error file line as a result: the answer's body, or the error and its status code."""
    response = line.get("response") or {}
    status_code = response.get("status_code")
    body = response.get("body")
    if not line.get("error") and _succeeded(status_code):
        return {"custom_id": custom_id, "status": "completed", "response": body}
    error = line.get("error") or (body.get("error") if isinstance(body, dict) else None) or \
        {"message": f"the request failed with HTTP {status_code}"}
    result = {"custom_id": custom_id, "status": "failed", "error": error}
    if status_code is not None:
        result["status_code"] = status_code
    return result


def summarize(merged_file) -> Summary:
    """Counts by status of an already merged results file (binary, line by line)."""
    summary = Summary()
    for line in merged_file:
        if line.strip():
            summary.counts[json.loads(line).get("status", "missing")] += 1
    return summary
