"""The engine behind `oaicli embed`: stream inputs, batch them within the API's limits, send batches
concurrently over one client, and hand results to a writer in input order with a bounded window."""

import base64
import csv
import io
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
from pathlib import Path
from typing import Iterable, Iterator

from oaicli.core.errors import InputError, NetworkError

MAX_INPUTS = 2048  # the API's limit of inputs per request
MAX_TOKENS = 300_000  # the API's limit of tokens summed over one request's inputs
NPY_HEADER = 128  # bytes reserved for the .npy header, rewritten once the row count is known


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


def decode(embedding) -> list[float]:
    """A float list as is; a base64 string (little-endian float32) decoded to floats."""
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return embedding


def embed_batch(client, body: dict, batch: Batch) -> list[list[float]]:
    """One request (the client retries it); vectors returned in the batch's order, whatever the server's."""
    answer = client.post("/embeddings", json={**body, "input": batch.texts})
    data = sorted(answer.get("data", []), key=lambda item: item.get("index", 0))
    if len(data) != len(batch.texts):
        raise NetworkError(f"The server returned {len(data)} embeddings for a batch of {len(batch.texts)} inputs.")
    return [decode(item["embedding"]) for item in data]


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


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


# Writers: write(start, texts, vectors) per batch in order, then close() once at the end.

class JsonlWriter:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def write(self, start, texts, vectors):
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.stream.write("".join(dumps({"index": start + i, "input": text, "embedding": vector}) + "\n"
                                  for i, (text, vector) in enumerate(zip(texts, vectors))))
        self.stream.flush()

    def close(self):
        pass


class JsonWriter:
    """One valid JSON array, streamed item by item."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.first = True

    def write(self, start, texts, vectors):
        parts = []
        for i, (text, vector) in enumerate(zip(texts, vectors)):
            item = json.dumps({"index": start + i, "input": text, "embedding": vector}, ensure_ascii=False)
            parts.append(("[\n  " if self.first else ",\n  ") + item)
            self.first = False
        self.stream.write("".join(parts))
        self.stream.flush()

    def close(self):
        self.stream.write("[]\n" if self.first else "\n]\n")
        self.stream.flush()


class TableWriter:
    """Index, an input preview, dimensions and norm: the vectors themselves are not kept."""

    def __init__(self):
        self.rows = []

    def write(self, start, texts, vectors):
        self.rows.extend({"index": start + i, "input": text, "dimensions": len(vector),
                          "norm": f"{norm(vector):.4f}"} for i, (text, vector) in enumerate(zip(texts, vectors)))

    def close(self):
        from oaicli.output import writers as output
        output.write(output.table(self.rows, ["index", "input", "dimensions", "norm"]))


class NpyWriter:
    """A .npy file (format 1.0, little-endian float32 or float64, shape (rows, dims)) written by hand.

    The header is reserved first and rewritten with the final row count, so rows stream to disk."""

    def __init__(self, sink, dtype: str):
        self.sink = sink
        self.code = "f" if dtype == "float32" else "d"
        self.descr = "<f4" if dtype == "float32" else "<f8"
        self.rows = 0
        self.dims: int | None = None
        sink.write(b"\0" * NPY_HEADER)

    def write(self, start, texts, vectors):
        for vector in vectors:
            self._check(vector)
            self.sink.write(struct.pack(f"<{len(vector)}{self.code}", *vector))
        self.rows += len(vectors)

    def _check(self, vector):
        if self.dims is None:
            self.dims = len(vector)
        elif len(vector) != self.dims:
            raise InputError(f"Embeddings have different lengths ({self.dims} and {len(vector)}); "
                             "a .npy file needs one.")

    def close(self):
        self.sink.seek(0)
        self.sink.write(npy_header(self.descr, (self.rows, self.dims or 0)))


def npy_header(descr: str, shape: tuple[int, int]) -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape[0]}, {shape[1]}), }}"
    text = text.ljust(NPY_HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


class CsvWriter:
    """index, input, then one column per dimension."""

    def __init__(self, sink):
        self.text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
        self.csv = csv.writer(self.text)
        self.header = False

    def write(self, start, texts, vectors):
        for i, (text, vector) in enumerate(zip(texts, vectors)):
            if not self.header:
                self.csv.writerow(["index", "input", *(f"dim_{d}" for d in range(len(vector)))])
                self.header = True
            self.csv.writerow([start + i, text, *(repr(x) for x in vector)])

    def close(self):
        self.text.flush()
        self.text.detach()  # the atomic writer owns the file and closes it


def file_writer(path: Path, sink, dtype: str):
    if path.suffix.lower() == ".npy":
        return NpyWriter(sink, dtype)
    return CsvWriter(sink)
