"""Fake /v1/audio: transcriptions and translations (every response format) and speech (streamed bytes)."""

import time

SPEECH_BYTES = 3 * (1 << 20) + 17


def transcript(filename: str, size: int, task: str) -> str:
    return f"{task} of {filename} ({size} bytes)"


def speech_bytes(voice: str, text: str, size: int = SPEECH_BYTES) -> bytes:
    unit = f"{voice}:{text}|".encode()
    return (unit * (size // len(unit) + 1))[:size]


def _subtitles(text: str, kind: str) -> list[str]:
    """Cue by cue, so the client can be seen printing each as it arrives."""
    words = text.split()
    stamp = (lambda s: f"00:00:{s:02d},000") if kind == "srt" else (lambda s: f"00:00:{s:02d}.000")
    cues = [f"{i + 1}\n{stamp(i)} --> {stamp(i + 1)}\n{word}\n\n" for i, word in enumerate(words)]
    return cues if kind == "srt" else ["WEBVTT\n\n"] + [c.split("\n", 1)[1] for c in cues]


def install(server):
    def handle(request, reply, task: str):
        form = request.multipart()
        filename, content, _ = form["file"]
        text = transcript(filename, len(content), task)
        if form.get("prompt"):
            text += f" prompted {form['prompt']}"
        kind = form.get("response_format", "json")
        if kind == "json":
            return reply.json({"text": text})
        if kind == "verbose_json":
            return reply.json({"task": task, "language": form.get("language", "english"), "duration": 1.5,
                               "text": text, "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": text}]})
        pieces = [text + "\n"] if kind == "text" else _subtitles(text, kind)
        delay = server.state.get("audio_chunk_delay", 0.0)
        reply._head(200, "text/plain; charset=utf-8", sum(len(p.encode()) for p in pieces))
        for piece in pieces:
            reply._handler.wfile.write(piece.encode())
            reply._handler.wfile.flush()
            if delay:
                time.sleep(delay)

    @server.route("POST", "/v1/audio/transcriptions")
    def transcriptions(request, reply):
        handle(request, reply, "transcribe")

    @server.route("POST", "/v1/audio/translations")
    def translations(request, reply):
        handle(request, reply, "translate")

    @server.route("POST", "/v1/audio/speech")
    def speech(request, reply):
        body = request.json()
        content = speech_bytes(body["voice"], body["input"], server.state.get("speech_size", SPEECH_BYTES))
        drop_at = server.state.get("speech_drop_at")
        reply._head(200, "audio/mpeg", len(content))
        if drop_at is not None:
            reply._handler.wfile.write(content[:drop_at])
            return reply.drop()
        reply._handler.wfile.write(content)


