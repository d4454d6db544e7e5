"""Local side of `oaicli audio`: checks before upload, and streaming transcripts and speech to their sinks."""

import json
from pathlib import Path

import httpx

from oaicli.api.client import copy_body
from oaicli.api.uploads import ProgressReader
from oaicli.core.errors import InputError, NetworkError
from oaicli.core.inputs import input_file
from oaicli.core.mime import mime_type
from oaicli.output.files import download_target
from oaicli.output.progress import progress_bar

AUDIO_EXTENSIONS = ("mp3", "mp4", "mpeg", "mpga", "m4a", "wav", "webm")
MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_SPEECH_CHARS = 4096
TEXT_FORMATS = ("text", "srt", "vtt")  # plain text the API sends as it goes: printed as it arrives
ISO_639_1 = set("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el
en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu
ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na
nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so
sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
""".split())


def check_upload(name: str) -> Path:
    path = input_file(name, "Audio file")
    extension = path.suffix.lower().lstrip(".")
    if extension not in AUDIO_EXTENSIONS:
        raise InputError(f"{name}: .{extension or '(none)'} files are not accepted; use one of "
                         f"{', '.join(AUDIO_EXTENSIONS)}.")
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        raise InputError(f"{name} is {size / 1048576:.1f} MB; the API takes at most 25 MB.",
                         "Split or compress it first (e.g. ffmpeg -i in.wav -b:a 64k out.mp3).")
    return path


def check_language(code: str) -> str:
    """The code in lower case, as the API expects it (`EN` is accepted and sent as `en`)."""
    if code.lower() not in ISO_639_1:
        raise InputError(f"--language {code!r} is not an ISO-639-1 code (two letters, such as en, de or ja).")
    return code.lower()


def check_speech_text(text: str, stdin) -> str:
    """TEXT, or `stdin` read whole when TEXT is `-`; refused when empty or over the API's limit."""
    if text == "-":
        text = stdin.read()
    if not text.strip():
        raise InputError("Nothing to say: TEXT is empty.")
    if len(text) > MAX_SPEECH_CHARS:
        raise InputError(f"TEXT is {len(text)} characters; the API takes at most {MAX_SPEECH_CHARS}.")
    return text


def transcribe(api, path: str, source: Path, fields: dict, output: str | None) -> None:
    """Upload (streamed from disk), then print or save the answer as it arrives."""
    with open(source, "rb") as handle, progress_bar(source.stat().st_size, "Uploading") as bar:
        files = {"file": (source.name, ProgressReader(handle, bar), mime_type(source))}
        response = api.send("POST", path, data=fields, files=files)
    try:
        if output:
            _save(response, Path(output))
        elif fields["response_format"] in TEXT_FORMATS:
            _print_as_it_comes(response)
        else:
            _render(json.loads(response.read() or b"{}"), fields["response_format"])
    except httpx.TransportError as exc:
        raise NetworkError(f"The connection dropped while reading the transcript: {exc}.",
                           "Nothing was saved; try again.") from exc
    finally:
        response.close()


def _save(response: httpx.Response, output: Path) -> None:
    from oaicli.output import writers as out
    from oaicli.output.files import atomic_writer
    with atomic_writer(output) as sink:
        copy_body(response, sink)
    out.notice(f"Saved to {output}.")


def _print_as_it_comes(response: httpx.Response) -> None:
    from oaicli.output import writers as output
    for text in response.iter_text():
        output.write(text, newline=False)


def _render(answer: dict, response_format: str) -> None:
    from oaicli.output import writers as output
    fmt = output.resolve_format()
    if fmt in ("json", "jsonl"):
        return output.render_object(answer, fmt=fmt)
    if response_format == "verbose_json" and answer.get("segments"):
        return output.write(output.table(answer["segments"], ["id", "start", "end", "text"]))
    output.write(answer.get("text", ""))


def speak(api, body: dict, output: str) -> None:
    """Stream the audio to a file written atomically (or to stdout for -), with a byte progress bar."""
    from oaicli.output import writers as out
    destination = None if output == "-" else Path(output)
    with progress_bar(None, "Speech") as bar, download_target(destination) as sink:
        written = api.download("/audio/speech", sink, bar, method="POST", json=body, what="audio stream",
                               where=destination)
    if destination is not None:
        out.notice(f"Saved {written} bytes of {body['response_format']} to {output}.")
