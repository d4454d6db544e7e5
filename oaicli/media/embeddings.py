"""The engine behind `oaicli embed`: stream inputs, batch them within the API's limits, send batches
concurrently over one client, and hand results to a writer in input order with a bounded window.

Vectors come as base64 by default (as the official SDKs ask: 4x smaller than float JSON, no float parsing)
and are decoded to float32 arrays at C speed; the writers print JSONL, JSON, CSV and .npy from those arrays
without a Python loop per float. orjson (required) prints each vector in one C call. numpy is optional:
with it float32 values print in their shortest round-trip form (as the API's own float JSON does); without
it the stdlib `array` module decodes and writes .npy at C speed too, and JSON/CSV print each float32 as the
shortest double equal to it (longer text, the same float32 values, about 1.2-1.6x slower).
"""

import array
import base64
import json
import math
import queue
import struct
import sys
import threading
from collections import deque
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from oaicli.core.errors import ApiError, InputError, NetworkError

try:
    import numpy
except ImportError:  # the stdlib fallback below; `Matrix.fast` tells the command to say so once
    numpy = None

MAX_INPUTS = 2048  # the API's limit of inputs per request
MAX_TOKENS = 300_000  # the API's limit of tokens summed over one request's inputs
NPY_HEADER = 128  # bytes reserved for the .npy header, rewritten once the row count is known
_LITTLE_ENDIAN = sys.byteorder == "little"
SLOWER_WITHOUT_NUMPY = ("numpy is not installed: embeddings are decoded and written more slowly, with longer "
                        "floats in JSON and CSV (install numpy, or oaicli[numpy], for the fast path).")


@dataclass
class Batch:
    start: int  # index of the first input
    texts: list[str]
    size: int  # bytes of input consumed, for the progress bar


def lines_of(stream, field: str | None, source: str) -> Iterator[tuple[str, int]]:
    """Each non-blank line of a binary stream (or a JSONL line's `field`) with its size in bytes, lazily.
    Blank lines before it count in its size, so the progress bar still reaches the file's size."""
    skipped = 0
    for number, raw in enumerate(stream, 1):
        try:
            # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first input
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InputError(f"{source} line {number} is not UTF-8 text.")
        if not text.strip():
            skipped += len(raw)
            continue
        if field:
            text = _field(text, field, source, number)
        yield text, skipped + len(raw)
        skipped = 0


def _field(line: str, field: str, source: str, number: int) -> str:
    try:
        value = json.loads(line)[field]
    except ValueError:
        raise InputError(f"{source} line {number} is not JSON (needed for --field {field}).")
    except (KeyError, TypeError, IndexError):
        raise InputError(f"{source} line {number} has no field {field!r}.")
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{source} line {number}: field {field!r} is not a non-empty string.")
    return value


def batches(inputs: Iterable[tuple[str, int]], max_inputs: int = MAX_INPUTS,
            max_tokens: int = MAX_TOKENS) -> Iterator[Batch]:
    """Group inputs into requests. Tokens are bounded by UTF-8 bytes (a token is at least one byte),
    a cheap estimate that never exceeds the API's cap."""
    texts: list[str] = []
    start = tokens = size = 0
    for text, consumed in inputs:
        cost = len(text.encode())
        if texts and (len(texts) >= max_inputs or tokens + cost > max_tokens):
            yield Batch(start, texts, size)
            start, texts, tokens, size = start + len(texts), [], 0, 0
        texts.append(text)
        tokens += cost
        size += consumed
    if texts:
        yield Batch(start, texts, size)


class Matrix:
    """One batch of vectors, all of one length: a numpy array (rows, dims), or without numpy a flat
    array('f' or 'd') and its row length."""

    fast = numpy is not None

    def __init__(self, values, rows: int, dims: int):
        self.values, self.rows, self.dims = values, rows, dims

    def row_json(self, index: int) -> bytes:
        """b"[f0,f1,...]": one C call per row. float32 prints as the shortest text that reads back to the
        same float32 (numpy) or double (fallback); float64 (float answers) as the server wrote it."""
        if numpy is not None:
            return orjson.dumps(self.values[index], option=orjson.OPT_SERIALIZE_NUMPY)
        return orjson.dumps(self.values[index * self.dims:(index + 1) * self.dims].tolist())

    def norms(self) -> list[float]:
        if numpy is not None:
            return numpy.linalg.norm(self.values.astype(numpy.float64), axis=1).tolist()
        return [math.hypot(*self.values[i * self.dims:(i + 1) * self.dims]) for i in range(self.rows)]

    def little_endian_bytes(self, dtype: str) -> bytes:
        """The rows as .npy data: '<f4' (float32) or '<f8', C order."""
        if numpy is not None:
            return numpy.ascontiguousarray(self.values, dtype="<f4" if dtype == "float32" else "<f8").tobytes()
        wanted = "f" if dtype == "float32" else "d"
        values = self.values if self.values.typecode == wanted else array.array(wanted, self.values)
        if not _LITTLE_ENDIAN:
            values = array.array(wanted, values)
            values.byteswap()
        return values.tobytes()


def decode(items: list) -> Matrix:
    """The `embedding` fields of one answer, in order: base64 strings (little-endian float32) or float lists.

    A server may answer float lists although base64 was asked (several compatible servers ignore
    encoding_format), so both are accepted whatever was requested. ValueError when the answer mixes them
    or its vectors differ in length."""
    if not items:
        return Matrix(numpy.zeros((0, 0), dtype=numpy.float32) if numpy is not None else array.array("f"), 0, 0)
    if all(isinstance(item, str) for item in items):
        # One b64decode per vector: joining the strings first is only valid when none has padding.
        pieces = list(map(base64.b64decode, items))
        dims = _one_length(len(piece) // 4 for piece in pieces)
        raw = b"".join(pieces)
        if numpy is not None:
            return Matrix(numpy.frombuffer(raw, dtype="<f4").reshape(len(items), dims), len(items), dims)
        values = array.array("f", raw)
        if not _LITTLE_ENDIAN:
            values.byteswap()
        return Matrix(values, len(items), dims)
    if any(isinstance(item, str) or not isinstance(item, list) for item in items):
        raise ValueError("base64 and float vectors are mixed in one answer")
    dims = _one_length(map(len, items))
    # Float JSON: kept as float64, so each number prints back as the server wrote it.
    if numpy is not None:
        return Matrix(numpy.array(items, dtype=numpy.float64).reshape(len(items), dims), len(items), dims)
    return Matrix(array.array("d", chain.from_iterable(items)), len(items), dims)


def _one_length(lengths) -> int:
    found = set(lengths)
    if len(found) != 1:
        raise ValueError(f"its vectors have different lengths ({', '.join(map(str, sorted(found)))})")
    return found.pop()


def embed_batch(client, body: dict, batch: Batch) -> Matrix:
    """One request (the client retries it); vectors returned in the batch's order, whatever the server's.

    A server that refuses base64 (some OpenAI-compatible servers only send floats) is asked again with
    float, and `body` is changed so every later batch of the run asks for float at once; the output is
    the same values either way."""
    try:
        answer = client.post("/embeddings", json={**body, "input": batch.texts})
    except ApiError as exc:
        if body.get("encoding_format") != "base64" or not _refuses_base64(exc):
            raise
        body["encoding_format"] = "float"  # one dict item set: other workers see the old value or the new
        answer = client.post("/embeddings", json={**body, "input": batch.texts})
    data = sorted(answer.get("data", []), key=lambda item: item.get("index", 0))
    if len(data) != len(batch.texts):
        raise NetworkError(f"The server returned {len(data)} embeddings for a batch of {len(batch.texts)} inputs.")
    return read_vectors([item["embedding"] for item in data])


def _refuses_base64(error: ApiError) -> bool:
    said = f"{error.param or ''} {error.message}".lower()
    return error.status in (400, 422) and ("encoding_format" in said or "base64" in said)


def read_vectors(items: list) -> Matrix:
    """decode() for an API answer: what cannot be read is the server's fault (exit 5), not a crash."""
    try:
        return decode(items)
    except (ValueError, TypeError) as exc:  # TypeError: a float list holding something else
        raise NetworkError(f"The server's embeddings cannot be read: {exc}.")


def run(client, body: dict, source: Iterable[Batch], writer, concurrency: int, bar) -> int:
    """Send batches with up to `concurrency` in flight; write each in input order as soon as it and
    all before it are done. At most 2 x concurrency batches are held, so memory stays flat."""
    window: deque = deque()
    count = 0
    workers = Workers(concurrency, lambda batch: embed_batch(client, body, batch))
    try:
        for batch in source:
            window.append((batch, workers.submit(batch)))
            if len(window) >= 2 * concurrency:
                count += _drain_one(window, writer, bar)
        while window:
            count += _drain_one(window, writer, bar)
    except KeyboardInterrupt:
        workers.stop([future for _, future in window], wait=False)  # Ctrl-C exits at once
        raise
    except BaseException:
        # A failed batch or a closed pipe: queued batches are dropped, and the requests already in
        # flight finish before the caller closes the shared client under them (no retry noise).
        workers.stop([future for _, future in window], wait=True)
        raise
    workers.stop([], wait=False)
    return count


class Workers:
    """Threads that run jobs in the order submitted. Unlike ThreadPoolExecutor's they are daemons,
    which the process does not wait for at exit: after Ctrl-C it need not sit out the requests in
    flight, each of which may take up to --timeout (600 s by default) and its retries."""

    def __init__(self, count: int, job):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._job = job
        self._count = count
        for _ in range(count):
            threading.Thread(target=self._work, name="embed", daemon=True).start()

    def submit(self, item) -> Future:
        future: Future = Future()
        self._jobs.put((item, future))
        return future

    def stop(self, pending: list[Future], wait: bool) -> None:
        """Cancel the pending jobs not yet started (optionally waiting for those running) and end the threads."""
        for future in pending:
            future.cancel()
        for _ in range(self._count):
            self._jobs.put((None, None))
        if wait:
            futures_wait(pending)

    def _work(self) -> None:
        while True:
            item, future = self._jobs.get()
            if future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._job(item))
            except BaseException as exc:  # handed to the main thread, which raises it
                future.set_exception(exc)


def _drain_one(window: deque, writer, bar) -> int:
    batch, future = window.popleft()
    writer.write(batch.start, batch.texts, future.result())
    bar.update(batch.size)
    return len(batch.texts)


# Writers: write(start, texts, matrix) per batch in input order, then close() once at the end. The text
# writers take a binary stream and build one bytes object per batch, written at once.

class JsonlWriter:
    """{"index", "input", "embedding"} per line."""

    def __init__(self, sink):
        self.sink = sink

    def write(self, start: int, texts: list[str], matrix: Matrix) -> None:
        self.sink.write(b"".join(_item(start + i, text, matrix, i) + b"\n" for i, text in enumerate(texts)))
        self.sink.flush()

    def close(self) -> None:
        pass


class JsonWriter:
    """One valid JSON array, streamed item by item (one item per line)."""

    def __init__(self, sink):
        self.sink = sink
        self.first = True

    def write(self, start: int, texts: list[str], matrix: Matrix) -> None:
        parts = []
        for i, text in enumerate(texts):
            parts.append(b"[\n  " if self.first else b",\n  ")
            parts.append(_item(start + i, text, matrix, i))
            self.first = False
        self.sink.write(b"".join(parts))
        self.sink.flush()

    def close(self) -> None:
        self.sink.write(b"[]\n" if self.first else b"\n]\n")
        self.sink.flush()


def _item(index: int, text: str, matrix: Matrix, row: int) -> bytes:
    # Spliced rather than dumped as a dict: the row is already JSON, made by one C call.
    return b'{"index":%d,"input":%b,"embedding":%b}' % (index, orjson.dumps(text), matrix.row_json(row))


class TableWriter:
    """Index, an input preview, dimensions and norm: the vectors themselves are not kept. `render(rows)`
    shows the rows at the end."""

    def __init__(self, render):
        self.render = render
        self.rows = []

    def write(self, start: int, texts: list[str], matrix: Matrix) -> None:
        self.rows.extend({"index": start + i, "input": text, "dimensions": matrix.dims, "norm": f"{norm:.4f}"}
                         for i, (text, norm) in enumerate(zip(texts, matrix.norms())))

    def close(self) -> None:
        self.render(self.rows)


class NpyWriter:
    """A .npy file (format 1.0, little-endian float32 or float64, shape (rows, dims)) written by hand.

    The header is reserved first and rewritten with the final row count, so rows stream to disk."""

    def __init__(self, sink, dtype: str):
        self.sink, self.dtype = sink, dtype
        self.rows = 0
        self.dims: int | None = None
        sink.write(b"\0" * NPY_HEADER)

    def write(self, start: int, texts: list[str], matrix: Matrix) -> None:
        if self.dims is None:
            self.dims = matrix.dims
        elif matrix.rows and matrix.dims != self.dims:
            raise InputError(f"Embeddings have different lengths ({self.dims} and {matrix.dims}); "
                             "a .npy file needs one.")
        self.sink.write(matrix.little_endian_bytes(self.dtype))
        self.rows += matrix.rows

    def close(self) -> None:
        self.sink.seek(0)
        self.sink.write(npy_header("<f4" if self.dtype == "float32" else "<f8", (self.rows, self.dims or 0)))


def npy_header(descr: str, shape: tuple[int, int]) -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape[0]}, {shape[1]}), }}"
    text = text.ljust(NPY_HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


class CsvWriter:
    """index, input, then one column per dimension; the input quoted as the csv module does (RFC 4180)."""

    def __init__(self, sink):
        self.sink = sink
        self.header = False

    def write(self, start: int, texts: list[str], matrix: Matrix) -> None:
        parts = []
        if not self.header:
            parts.append(b"index,input," + ",".join(f"dim_{d}" for d in range(matrix.dims)).encode() + b"\r\n")
            self.header = True
        for i, text in enumerate(texts):
            # orjson's b"[a,b,...]" without its brackets is the row's CSV fields: numbers need no quoting.
            parts.append(b"%d,%s,%s\r\n" % (start + i, _csv_field(text), matrix.row_json(i)[1:-1]))
        self.sink.write(b"".join(parts))

    def close(self) -> None:
        self.sink.flush()


def _csv_field(text: str) -> bytes:
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text.encode()


def file_writer(path: Path, sink, dtype: str):
    if path.suffix.lower() == ".npy":
        return NpyWriter(sink, dtype)
    return CsvWriter(sink)
