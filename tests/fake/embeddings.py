"""Fake /v1/embeddings: realistic vectors (1,536 float32 values by default, up to 4,096 with `dimensions`)
deterministic per input text, in float JSON (shortest float32 text, as OpenAI prints it) or base64.

Drop-in replacement for tests/fake/embeddings.py. Cheap at any size: every vector is a slice of one pool
of values made once, whose JSON text and float32 bytes are made once too, so an answer of 100 x 1,536
floats is a few string slices, not 150,000 float formats. The first value of each vector comes from the
whole CRC-32 of the text, so two texts whose slices start at the same place still get different vectors.

`vector_for(text, dims)` is what a float answer carries (the floats json.loads gives back); the float32
values that base64 carries are those rounded to float32 (struct "<f"). `state["embedding_dims"]` changes
the default size; `state["embedding_delays"]` maps a batch's first input to seconds to wait, so tests can
make batches finish out of order; `state["embedding_latency"] = [base, per_input]` (seconds) makes every
answer take as long as a real server's would (benchmarks: the time grows with the batch, as the API's does)."""

import base64
import json
import random
import struct
import threading
import time
import zlib

DEFAULT_DIMS = 1536
MAX_DIMS = 4096
POOL_STARTS = 16384  # distinct slice starts; the pool holds POOL_STARTS + MAX_DIMS values

_pool = None
_pool_lock = threading.Lock()


class _Pool:
    def __init__(self):
        rng = random.Random(1536)
        size = POOL_STARTS + MAX_DIMS
        # Unit-norm-ish at 1,536 dims, like text-embedding-3-small: values of a few hundredths.
        raw = struct.pack(f"<{size}f", *(rng.gauss(0.0, 1 / 1536 ** 0.5) for _ in range(size)))
        self.bytes = raw
        values = struct.unpack(f"<{size}f", raw)
        texts = [shortest_float32_text(v) for v in values]
        self.text = ",".join(texts)
        self.starts = [0] * (size + 1)  # self.text[starts[i]:starts[j] - 1] is values i..j-1 joined by commas
        position = 0
        for i, text in enumerate(texts):
            self.starts[i] = position
            position += len(text) + 1
        self.starts[size] = position


def _the_pool() -> _Pool:
    global _pool
    with _pool_lock:  # built on first use (about 0.1 s), once, whatever the number of handler threads
        if _pool is None:
            _pool = _Pool()
    return _pool


def shortest_float32_text(value: float) -> str:
    """The shortest decimal that reads back (as float32) to this float32 value."""
    for digits in range(1, 10):  # 9 significant digits always suffice for float32
        text = f"{value:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == value:
            return text
    raise AssertionError("unreachable")


def _parts(text: str, dims: int) -> tuple[float, int]:
    """The vector's own first value (exact in float32) and where the rest starts in the pool."""
    seed = zlib.crc32(text.encode())
    first = ((seed >> 8) - (1 << 23)) / (1 << 29)  # 24 bits of the CRC, within +-1/64: exact as float32
    return first, seed % POOL_STARTS


def vector_json(text: str, dims: int) -> str:
    pool = _the_pool()
    first, offset = _parts(text, dims)
    rest = pool.text[pool.starts[offset]:pool.starts[offset + dims - 1] - 1] if dims > 1 else ""
    return f"[{shortest_float32_text(first)}{',' if rest else ''}{rest}]"


def vector_base64(text: str, dims: int) -> str:
    pool = _the_pool()
    first, offset = _parts(text, dims)
    return base64.b64encode(struct.pack("<f", first) + pool.bytes[4 * offset:4 * (offset + dims - 1)]).decode()


def vector_for(text: str, dims: int = DEFAULT_DIMS) -> list[float]:
    """The floats a float answer carries for `text` (as json.loads reads them)."""
    return json.loads(vector_json(text, dims))


def install(server):
    @server.route("POST", "/v1/embeddings")
    def embeddings(request, reply):
        body = request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not inputs or any(isinstance(text, str) and not text for text in inputs):
            return reply.error(400, "'$.input' is invalid: empty strings are not allowed.", param="input")
        if len(inputs) > 2048:
            return reply.error(400, "'$.input' is too long: at most 2048 inputs per request.", param="input")
        dims = int(body.get("dimensions") or server.state.get("embedding_dims") or DEFAULT_DIMS)
        if not 1 <= dims <= MAX_DIMS:
            return reply.error(400, f"'$.dimensions' must be between 1 and {MAX_DIMS}.", param="dimensions")
        base, per_input = server.state.get("embedding_latency") or (0, 0)
        time.sleep(server.state.get("embedding_delays", {}).get(inputs[0], 0) + base + per_input * len(inputs))
        encode = (lambda t: '"' + vector_base64(t, dims) + '"') if body.get("encoding_format") == "base64" \
            else (lambda t: vector_json(t, dims))
        # The answer is assembled as text: the vectors are already JSON, and re-encoding them is the cost
        # this fake exists to avoid.
        items = ",".join('{"object":"embedding","index":%d,"embedding":%s}'
                         % (index, encode(text if isinstance(text, str) else repr(text)))
                         for index, text in enumerate(inputs))
        tokens = sum(len(str(text).split()) for text in inputs)
        tail = json.dumps({"model": body.get("model"), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        reply.raw(200, ('{"object":"list","data":[' + items + "]," + tail[1:]).encode(), "application/json")
