"""audio against Prism (both specs): multipart uploads and the speech request must validate."""

import json

import pytest

from tests.contract.conftest import assert_valid


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "talk.mp3"
    path.write_bytes(b"ID3" + bytes(2000))
    return path


def test_transcribe_validates(prism, clip):
    result = prism.run("audio", "transcribe", clip, "--prompt", "names", "--temperature", "0.3", "--language", "en")
    assert_valid(result)
    assert "text" in json.loads(result.stdout)


def test_transcribe_verbose_json_validates(prism, clip):
    result = prism.run("audio", "transcribe", clip, "--response-format", "verbose_json")
    assert_valid(result)


def test_translate_validates(prism, clip, tmp_path):
    result = prism.run("audio", "translate", clip, "-o", tmp_path / "out.json", "--temperature", "0")
    assert_valid(result)
    assert (tmp_path / "out.json").exists()


def test_speak_validates(prism, tmp_path):
    """Prism answers a valid speech request with the header `Transfer-Encoding: string` (the spec's
    placeholder), which no HTTP client can read; an invalid one gets a readable 422. So: no 422, and
    the only failure is that unreadable answer, with nothing written."""
    target = tmp_path / "hi.mp3"
    result = prism.run("audio", "speak", "hello", "-o", target, "--voice", "echo", "--speed", "1.25",
                       "-m", "tts-1-hd", "--max-retries", "0")
    assert "HTTP 422" not in result.stderr, result.stderr
    assert result.returncode == 0 or "Transfer-Encoding" in result.stderr, result.stderr
    assert target.exists() == (result.returncode == 0)


def test_invalid_speech_request_would_be_seen(prism_2023, tmp_path):
    """The check above is meaningful: Prism rejects a bad speech body readably (pcm is not in the 2023 enum)."""
    result = prism_2023.run("audio", "speak", "hello", "-o", tmp_path / "x.mp3", "--voice", "echo",
                            "--response-format", "pcm", "--max-retries", "0")
    assert result.returncode == 4
    assert "HTTP 422" in result.stderr and "response_format" in result.stderr
