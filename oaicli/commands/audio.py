"""`oaicli audio`: transcribe and translate audio files, and speak text (/v1/audio)."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command

SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


@click.group()
def audio():
    """Transcribe or translate speech, and turn text into speech.

    \b
    Example:
      oaicli audio transcribe meeting.m4a --response-format srt -o meeting.srt
    """


def _transcript_options(func):
    for option in reversed([
        click.option("-m", "--model", help="Speech-to-text model (default whisper-1)."),
        click.option("--prompt", help="Text to guide the style, or the previous segment's transcript."),
        click.option("--response-format", type=click.Choice(["json", "text", "srt", "verbose_json", "vtt"]),
                     default="json", show_default=True, help="What the API returns."),
        click.option("--temperature", type=click.FloatRange(0, 1), help="Sampling temperature, 0 to 1."),
        click.option("-o", "--output", type=click.Path(dir_okay=False),
                     help="Save the transcript to FILE (written atomically) instead of printing it."),
    ]):
        func = option(func)
    return func


@command(audio, "transcribe")
@click.argument("file", metavar="FILE")
@_transcript_options
@click.option("--language", help="The audio's language as an ISO-639-1 code (en, de, ja ...).")
def transcribe(file, model, prompt, response_format, temperature, output, language):
    """Transcribe an audio file (/v1/audio/transcriptions).

    FILE must be mp3, mp4, mpeg, mpga, m4a, wav or webm, at most 25 MB. text, srt and vtt
    are printed as they arrive; json prints the text (or the JSON with --format json);
    verbose_json a table of segments.

    \b
    Example:
      oaicli audio transcribe interview.mp3 --language en --response-format vtt
    """
    from oaicli.media import audio as audio_files
    if language:
        language = audio_files.check_language(language)
    _run("/audio/transcriptions", file, model, prompt, response_format, temperature, output, language=language)


@command(audio, "translate")
@click.argument("file", metavar="FILE")
@_transcript_options
def translate(file, model, prompt, response_format, temperature, output):
    """Translate speech in an audio file into English text (/v1/audio/translations).

    \b
    Example:
      oaicli audio translate rede.mp3 --response-format text
    """
    _run("/audio/translations", file, model, prompt, response_format, temperature, output)


def _run(path, file, model, prompt, response_format, temperature, output, **extra):
    from oaicli.media import audio as audio_files
    source = audio_files.check_upload(file)
    _ready(output)
    fields = {"model": model or invocation.current().settings.default_model("audio"), "prompt": prompt,
              "response_format": response_format, "temperature": temperature, **extra}
    fields = {key: str(value) for key, value in fields.items() if value is not None}
    audio_files.transcribe(invocation.current().client(), path, source, fields, output)


@command(audio, "speak")
@click.argument("text")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Audio file to write (- for standard output); its extension picks the format.")
@click.option("-m", "--model", help="Text-to-speech model (default tts-1; tts-1-hd, gpt-4o-mini-tts ...).")
@click.option("--voice", default="alloy", show_default=True,
              help="Voice: alloy, echo, fable, onyx, nova, shimmer (and more on newer models).")
@click.option("--response-format", type=click.Choice(SPEECH_FORMATS),
              help="Audio format (default from the -o extension, else mp3).")
@click.option("--speed", type=click.FloatRange(0.25, 4.0), help="Speaking speed, 0.25 to 4.0 (default 1.0).")
def speak(text, output, model, voice, response_format, speed):
    """Turn TEXT (or - for standard input) into speech, streamed to a file (/v1/audio/speech).

    \b
    Example:
      oaicli audio speak "Your build is ready." --voice nova -o ready.mp3
    """
    from oaicli.media import audio as audio_files
    text = audio_files.check_speech_text(text, invocation.current().stdin)
    _ready(None if output == "-" else output)
    body = {"model": model or invocation.current().settings.default_model("speak"), "input": text, "voice": voice,
            "response_format": response_format or _format_for(output)}
    if speed is not None:
        body["speed"] = speed
    audio_files.speak(invocation.current().client(), body, output)


def _format_for(output: str) -> str:
    """The speech format named by the output's extension, else mp3 (also for standard output)."""
    from pathlib import Path
    extension = Path(output).suffix.lower().lstrip(".")
    return extension if extension in SPEECH_FORMATS else "mp3"


def _ready(output) -> None:
    """An output folder we cannot write fails before the upload and the paid request."""
    if output:
        from pathlib import Path

        from oaicli.output.files import ready_file
        ready_file(Path(output))
