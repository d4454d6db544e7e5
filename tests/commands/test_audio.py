"""oaicli audio against the loopback fake: uploads, every response format, saving, checks, and speech."""

import json

import pytest

from oaicli.core.errors import ExitCode
from tests.fake.audio import SPEECH_BYTES, speech_bytes, transcript
from tests.fake.server import Request, Scripted


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "talk.mp3"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def form(fake, path):
    call = fake.calls("POST", path)[-1]
    request = Request.__new__(Request)
    request.headers, request._body = call.headers, call.body
    return request.multipart()


def test_transcribe_uploads_the_file_and_fields(fake, invoke, clip):
    result = invoke("audio", "transcribe", clip, "--prompt", "names: Ada", "--temperature", "0.2",
                    "--language", "en", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == transcript("talk.mp3", 10240, "transcribe") + " prompted names: Ada\n"
    sent = form(fake, "/v1/audio/transcriptions")
    assert sent["file"] == ("talk.mp3", clip.read_bytes(), "audio/mpeg")
    assert {k: sent[k] for k in ("model", "prompt", "temperature", "language", "response_format")} == {
        "model": "whisper-1", "prompt": "names: Ada", "temperature": "0.2", "language": "en",
        "response_format": "json"}


def test_json_goes_through_the_output_layer(fake, invoke, clip):
    result = invoke("audio", "transcribe", clip, "--format", "json")
    assert json.loads(result.stdout) == {"text": transcript("talk.mp3", 10240, "transcribe")}


def test_verbose_json_table_of_segments(fake, invoke, clip):
    result = invoke("audio", "transcribe", clip, "--response-format", "verbose_json", "--format", "table")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "start", "end", "text"]
    assert lines[2].split()[:3] == ["0", "0.0", "1.5"]


@pytest.mark.parametrize("kind,first", [("srt", "1\n00:00:00,000 --> 00:00:01,000\ntranslate\n"),
                                        ("vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\ntranslate\n")])
def test_subtitles_are_printed_verbatim(fake, invoke, clip, kind, first):
    result = invoke("audio", "translate", clip, "--response-format", kind)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(first) and "bytes)\n" in result.stdout
    assert "language" not in form(fake, "/v1/audio/translations")


def test_text_is_printed_as_it_arrives(fake, clip):
    """A real process on a pipe: the first cue shows up before the server has sent the last."""
    import subprocess
    import sys
    fake.state["audio_chunk_delay"] = 0.4
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "audio", "transcribe", str(clip),
                                "--response-format", "srt"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    assert first == b"1\n"
    assert process.poll() is None  # still streaming: later cues are not sent yet
    rest = process.stdout.read()
    assert process.wait(30) == 0 and b"bytes)" in rest


def test_output_file_is_saved_atomically(fake, invoke, clip, tmp_path):
    target = tmp_path / "t.vtt"
    result = invoke("audio", "transcribe", clip, "--response-format", "vtt", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text().startswith("WEBVTT\n") and "Saved to" in result.stderr


def test_upload_retry_sends_the_whole_file_again(fake, invoke, clip):
    fake.queue("POST", "/v1/audio/transcriptions", Scripted(status=502, raw=b"bad gateway"))
    result = invoke("audio", "transcribe", clip, "--response-format", "text")
    assert result.exit_code == 0, result.stderr
    assert len(fake.calls("POST", "/v1/audio/transcriptions")) == 2
    assert form(fake, "/v1/audio/transcriptions")["file"][1] == clip.read_bytes()


@pytest.mark.parametrize("name,size,message", [
    ("talk.ogg", 10, "{p}: .ogg files are not accepted; use one of mp3, mp4, mpeg, mpga, m4a, wav, webm."),
    ("talk", 10, "{p}: .(none) files are not accepted; use one of mp3, mp4, mpeg, mpga, m4a, wav, webm."),
    ("big.wav", 25 * 1024 * 1024 + 1, "{p} is 25.0 MB; the API takes at most 25 MB. Split or compress it first "
                                      "(e.g. ffmpeg -i in.wav -b:a 64k out.mp3)."),
])
def test_upload_checks(fake, invoke, tmp_path, name, size, message):
    path = tmp_path / name
    with open(path, "wb") as handle:
        handle.truncate(size)
    result = invoke("audio", "transcribe", path)
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: " + message.format(p=path)
    assert not fake.calls()


def test_exactly_25_mb_is_accepted(fake, invoke, tmp_path):
    path = tmp_path / "edge.wav"
    with open(path, "wb") as handle:
        handle.truncate(25 * 1024 * 1024)
    result = invoke("audio", "translate", path, "--response-format", "text")
    assert result.exit_code == 0, result.stderr
    assert "(26214400 bytes)" in result.stdout


def test_missing_file(fake, invoke, tmp_path):
    result = invoke("audio", "translate", tmp_path / "none.mp3")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == f"Error: Audio file not found: {tmp_path / 'none.mp3'}."


def test_language_is_sent_in_lower_case(fake, invoke, clip):
    result = invoke("audio", "transcribe", clip, "--language", "DE", "--response-format", "text")
    assert result.exit_code == 0, result.stderr
    assert form(fake, "/v1/audio/transcriptions")["language"] == "de"


def test_language_must_be_iso_639_1(fake, invoke, clip):
    result = invoke("audio", "transcribe", clip, "--language", "english")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == ("Error: --language 'english' is not an ISO-639-1 code "
                                      "(two letters, such as en, de or ja).")
    assert not fake.calls()


# speak

def test_speak_streams_to_a_file_byte_for_byte(fake, invoke, tmp_path):
    target = tmp_path / "hello.flac"
    result = invoke("audio", "speak", "hello there", "-o", target, "--voice", "nova", "--speed", "1.5")
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == speech_bytes("nova", "hello there")
    assert fake.calls("POST", "/v1/audio/speech")[0].json() == {
        "model": "tts-1", "input": "hello there", "voice": "nova", "response_format": "flac", "speed": 1.5}
    assert f"Saved {SPEECH_BYTES} bytes of flac to" in result.stderr


def test_speak_to_stdout(fake, invoke):
    fake.state["speech_size"] = 1000
    result = invoke("audio", "speak", "hi", "-o", "-", "--response-format", "opus", "-m", "tts-1-hd")
    assert result.stdout_bytes == speech_bytes("alloy", "hi", 1000)
    assert fake.calls("POST", "/v1/audio/speech")[0].json()["response_format"] == "opus"


def test_speak_drop_leaves_no_file(fake, invoke, tmp_path):
    fake.state["speech_drop_at"] = 100_000
    target = tmp_path / "x.mp3"
    result = invoke("audio", "speak", "hi", "-o", target)
    assert result.exit_code == ExitCode.SERVER
    assert "The audio stream broke off" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_speak_checks_text_and_speed(fake, invoke, tmp_path):
    long = invoke("audio", "speak", "x" * 4097, "-o", tmp_path / "a.mp3")
    assert long.exit_code == ExitCode.REQUEST
    assert long.stderr.strip() == "Error: TEXT is 4097 characters; the API takes at most 4096."
    slow = invoke("audio", "speak", "x", "-o", tmp_path / "a.mp3", "--speed", "0.1")
    assert slow.exit_code == ExitCode.USAGE and "0.25<=x<=4.0" in slow.stderr
    assert not fake.calls()


def test_speak_reads_stdin(fake, invoke, tmp_path):
    result = invoke("audio", "speak", "-", "-o", tmp_path / "a.mp3", input="from a pipe")
    assert result.exit_code == 0, result.stderr
    assert fake.calls("POST", "/v1/audio/speech")[0].json()["input"] == "from a pipe"


@pytest.mark.parametrize("args", [["transcribe", "{clip}", "-o", "{t}/afile/t.txt"],
                                  ["speak", "hi", "-o", "{t}/afile/a.mp3"]])
def test_an_unusable_output_folder_fails_before_the_request(fake, invoke, clip, tmp_path, args):
    (tmp_path / "afile").write_bytes(b"")
    result = invoke("audio", *[a.format(clip=clip, t=tmp_path) for a in args])
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == f"Error: Cannot save into {tmp_path}/afile: {tmp_path}/afile is a file, " \
                                    "not a folder."
    assert not fake.calls()


def test_speech_bar_on_a_terminal_and_not_in_a_pipe(fake, invoke, tmp_path):
    from tests.terminal import run_tty
    shown = run_tty("audio", "speak", "hi", "-o", tmp_path / "a.mp3")
    assert shown.returncode == 0, shown.output
    assert "Speech: 100%" in shown.output and (tmp_path / "a.mp3").read_bytes() == speech_bytes("alloy", "hi")
    piped = invoke("audio", "speak", "hi", "-o", tmp_path / "b.mp3")
    assert "Speech" not in piped.stderr and piped.stderr.startswith("Saved ")
