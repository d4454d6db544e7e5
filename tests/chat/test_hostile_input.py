"""Text that is not UTF-8 (arguments, stdin) and a proxy's HTML page answering a stream: one line saying
what is wrong and a documented exit code, never "unexpected UnicodeEncodeError" or an unguarded parse."""

import pytest

from tests.conftest import run_process_bytes

NOT_UTF8 = b"\xff\xfe"


@pytest.mark.parametrize("args, stdin, what", [
    ([b"chat", NOT_UTF8], None, b"The prompt argument is not valid UTF-8"),
    ([b"chat", b"-"], NOT_UTF8 + b" binary\n", b"Standard input is not valid UTF-8"),
    ([b"chat", b"summarize:"], b"\x89PNG\r\n\x1a\n" + NOT_UTF8, b"Standard input is not valid UTF-8"),
    ([b"complete", b"story " + NOT_UTF8], None, b"The prompt argument is not valid UTF-8"),
    ([b"embed", b"word " + NOT_UTF8], None, b"not valid UTF-8"),
    ([b"moderate", NOT_UTF8], None, b"not valid UTF-8"),
])
def test_text_that_is_not_utf8_is_bad_input_exit_4_and_nothing_is_sent(fake, args, stdin, what):
    result = run_process_bytes(*args, input=stdin)
    assert result.returncode == 4, result.stderr
    assert what in result.stderr and b"unexpected" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == b""
    assert fake.calls("POST") == []


def test_a_non_ascii_key_is_a_config_error_exit_3(fake):
    result = run_process_bytes(b"--api-key", "sk-ключ-0123456789abcdef".encode(), b"chat", b"hi")
    assert result.returncode == 3, result.stderr
    assert b"non-ASCII character" in result.stderr and "ключ".encode() not in result.stderr
    assert fake.requests == []


def test_a_streamed_chat_answered_with_html_exits_5_and_saves_nothing(fake, invoke):
    fake.state["stream_html"] = True
    result = invoke("chat", "--session", "trip", "hi")
    assert result.exit_code == 5, result.output
    assert "text/html" in result.stderr and "not saved; session 'trip' is unchanged" in result.stderr
    assert "unexpected" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert invoke("sessions", "show", "trip").exit_code != 0  # never created


@pytest.mark.parametrize("args", [("chat", "hi"), ("complete", "Once upon a time")])
def test_a_streamed_answer_that_is_html_is_a_server_failure(fake, invoke, args):
    fake.state["stream_html"] = True
    result = invoke(*args)
    assert result.exit_code == 5 and "text/html, not an event stream" in result.stderr
    assert result.stdout == ""


def test_the_interactive_loop_refuses_a_line_that_is_not_utf8_and_goes_on(fake):
    result = run_process_bytes(b"chat", b"-i", input=b"first\n" + NOT_UTF8 + b"\nlast\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ["echo: first", "echo: last"]
    assert b"That line is not valid UTF-8" in result.stderr
    assert [c.json()["messages"][-1]["content"] for c in fake.calls("POST", "/v1/chat/completions")] == \
        ["first", "last"]
