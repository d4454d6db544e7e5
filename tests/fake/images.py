"""Fake /v1/images: generations, edits and variations, answering with real PNG bytes (base64 or a URL).

Each image's bytes are `image_bytes(prompt, index)` (or `state["image_size"]` bytes when set, for
benchmarks), so tests can check saved files byte for byte. URLs point at a public (unauthenticated)
route, like OpenAI's CDN, which must never see the API key; `state["cdn_drop_at"]` makes it break off."""

import base64
import hashlib
import struct
import time
import zlib

IMAGE_PATH = "/cdn/images/"


def make_png(width: int, height: int, colour_type: int = 6, trns: bool = False, pad: int = 0) -> bytes:
    """A valid PNG of one colour: enough for header checks; `pad` adds an ancillary chunk to grow it."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    rows = b"".join(b"\x00" + b"\x80" * (width * channels) for _ in range(height))
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if colour_type == 3:
        chunks.append(_chunk(b"PLTE", b"\x80\x80\x80" * 256))
    if trns:
        chunks.append(_chunk(b"tRNS", b"\x00" if colour_type == 3 else b"\x00\x00" * (3 if colour_type == 2 else 1)))
    if pad:
        chunks.append(_chunk(b"zzPd", b"\x00" * pad))
    chunks.append(_chunk(b"IDAT", zlib.compress(rows)))
    chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_bytes(prompt: str, index: int, size: int | None = None) -> bytes:
    """Deterministic bytes per (prompt, index): a small PNG, or `size` bytes when benchmarking."""
    seed = hashlib.sha256(f"{prompt}\0{index}".encode()).digest()
    if size:
        return (seed * (size // len(seed) + 1))[:size]
    return make_png(2, 2) + seed  # trailing bytes after IEND keep each image distinct


def install(server):
    server.state.setdefault("images", {})

    encoded = {}  # benchmarks ask for the same large images again and again

    def b64(prompt: str, index: int, content: bytes) -> str:
        key = (prompt, index, len(content))
        if key not in encoded:
            encoded[key] = base64.b64encode(content).decode()
        return encoded[key]

    def answer(request, reply, prompt: str, n: int, response_format: str):
        data = []
        for index in range(n):
            content = image_bytes(prompt, index, server.state.get("image_size"))
            item = {"revised_prompt": prompt} if prompt else {}
            if response_format == "b64_json":
                item["b64_json"] = b64(prompt, index, content)
            else:
                name = f"img-{hashlib.sha256(content).hexdigest()[:16]}.png"
                server.state["images"][name] = content
                host = request.headers.get("host")
                item["url"] = f"http://{host}{IMAGE_PATH}{name}"
            data.append(item)
        reply.json({"created": int(time.time()), "data": data})

    @server.route("POST", "/v1/images/generations")
    def generations(request, reply):
        body = request.json()
        answer(request, reply, body["prompt"], int(body.get("n") or 1),
               body.get("response_format") or ("b64_json" if str(body.get("model", "")).startswith("gpt-image")
                                               else "url"))

    @server.route("POST", "/v1/images/edits")
    def edits(request, reply):
        form = request.multipart()
        answer(request, reply, form.get("prompt", ""), int(form.get("n") or 1), form.get("response_format") or "url")

    @server.route("POST", "/v1/images/variations")
    def variations(request, reply):
        form = request.multipart()
        answer(request, reply, "variation", int(form.get("n") or 1), form.get("response_format") or "url")

    def cdn(request, reply):
        content = server.state["images"].get(request.match["name"])
        if content is None:
            return reply.raw(404, b"no such image")
        if server.state.get("cdn_drop_at") is not None:  # every download breaks off after that many bytes
            return reply.stream_bytes(len(content), "image/png", drop_at=server.state["cdn_drop_at"], chunk=content)
        reply.raw(200, content, "image/png")

    cdn.public = True
    server.route("GET", IMAGE_PATH[:-1] + "/(?P<name>[^/]+)")(cdn)
