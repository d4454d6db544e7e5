"""Fake /v1/embeddings: deterministic vectors per input text (`vector_for`), float or base64.

The default dimension is small (16) so tests and benchmarks measure the client, not JSON size;
`dimensions` in the request, or `state["embedding_dims"]`, changes it. `state["embedding_delays"]`
maps a batch's first input to seconds to wait, so tests can make batches finish out of order."""

import base64
import struct
import time
import zlib

DEFAULT_DIMS = 16


def vector_for(text: str, dims: int = DEFAULT_DIMS) -> list[float]:
    seed = zlib.crc32(text.encode())
    return [((seed + i * 7919) % 2000 - 1000) / 1000 for i in range(dims)]


def install(server):
    @server.route("POST", "/v1/embeddings")
    def embeddings(request, reply):
        body = request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not inputs or any(isinstance(text, str) and not text for text in inputs):
            return reply.error(400, "'$.input' is invalid: empty strings are not allowed.", param="input")
        if len(inputs) > 2048:
            return reply.error(400, "'$.input' is too long: at most 2048 inputs per request.", param="input")
        time.sleep(server.state.get("embedding_delays", {}).get(inputs[0], 0))
        dims = int(body.get("dimensions") or server.state.get("embedding_dims") or DEFAULT_DIMS)
        data = []
        for index, text in enumerate(inputs):
            vector = vector_for(text if isinstance(text, str) else repr(text), dims)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(str(text).split()) for text in inputs)
        reply.json({"object": "list", "data": data, "model": body.get("model"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
