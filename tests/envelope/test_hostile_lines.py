"""One bad line never stops `chat --envelope`: lone surrogates in any field, lines that are not UTF-8
under a real UTF-8 locale, and a proxy's HTML page in place of a stream, each one coded response while
the lines around it are answered. Real processes, as an upper application runs it."""

import json

import pytest

from oaicli.envelope.engine import Codes
from tests.conftest import run_process_bytes


def line(**pars) -> bytes:
    """A request line; `\\ud800` written as JSON's escape, as a client would send it."""
    return json.dumps({"version": "1.0.0", "pars": {"user_id": "u1", "question": "hi", **pars}}).encode() + b"\n"


def answers(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(out) for out in result.stdout.decode("utf-8").splitlines()]


SURROGATE_LINES = [line(user_id="\ud800"), line(group_id="g\udfff"), line(question_id="q\ud800"),
                   line(question="what is \ud83d?")]


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_lone_surrogates_and_invalid_utf8_get_their_own_codes_and_the_loop_goes_on(fake, concurrency):
    stdin = b"".join([line(question="first"), *SURROGATE_LINES, b'{"version":"1.0.0","pars":{"user_id":"u1",'
                      b'"question":"caf\xe9"}}\n', b"not json\n", line(user_id="u2", question="last")])
    result = run_process_bytes(b"chat", b"--envelope", b"--concurrency", concurrency.encode(), input=stdin)
    out = answers(result)
    codes = [o["code"] for o in out]
    assert sorted(codes) == sorted([Codes.OK, *[Codes.BAD_FIELD] * 4, Codes.NOT_JSON, Codes.NOT_JSON, Codes.OK])
    if concurrency == "1":  # in order
        assert codes == [0, 1003, 1003, 1003, 1003, 1001, 1001, 0]
    assert sorted(o["data"]["answer"] for o in out if o["code"] == 0) == ["echo: first", "echo: last"]
    messages = [o["msg"] for o in out if o["code"] == Codes.BAD_FIELD]
    assert sorted(m.split()[0] for m in messages) == ["pars.group_id", "pars.question", "pars.question_id",
                                                       "pars.user_id"]
    assert all("not valid Unicode" in m for m in messages)
    not_json = [o["msg"] for o in out if o["code"] == Codes.NOT_JSON]
    assert "the line is not valid UTF-8" in not_json and any(m.startswith("the line is not JSON") for m in not_json)
    assert "internal error" not in result.stdout.decode() and result.stderr == b""
    assert len(fake.calls("POST", "/v1/chat/completions")) == 2


def test_a_surrogate_id_is_never_echoed_back_but_the_readable_ids_are(fake):
    out = answers(run_process_bytes(b"chat", b"--envelope", input=line(user_id="u7", group_id="\ud800")))
    assert out[0]["code"] == Codes.BAD_FIELD and out[0]["data"] == {"user_id": "u7"}


# Python decodes stdin with surrogateescape under C.UTF-8, but strictly under an installed UTF-8 locale
# such as en_US.UTF-8 (which this machine may lack): PYTHONIOENCODING=utf-8:strict is that decoder.
@pytest.mark.parametrize("decoder", [{}, {"PYTHONIOENCODING": "utf-8:strict"}], ids=["C.UTF-8", "strict"])
def test_an_invalid_utf8_line_does_not_lose_the_good_lines_read_with_it(fake, decoder):
    # All in one read: the earlier and later good lines must be answered, whatever the decoder buffered.
    stdin = line(question="a") + b"\xff\xfe\xfd\n" + line(question="b") + b'{"version":"1.0.0","pars":{' \
        b'"user_id":"u1","question":"caf\xe9"}}\n' + line(question="c")
    out = answers(run_process_bytes(b"chat", b"--envelope", input=stdin, env=decoder))
    assert [o["code"] for o in out] == [0, 1001, 0, 1001, 0]
    assert [o["msg"] for o in out][1::2] == ["the line is not valid UTF-8"] * 2  # not "not JSON"
    assert [o["data"].get("answer") for o in out] == ["echo: a", None, "echo: b", None, "echo: c"]


def test_a_streamed_html_page_is_2002_and_the_loop_goes_on(fake):
    fake.state["stream_html"] = True
    stdin = line(question="a") + line(user_id="u2", question="b")
    out = answers(run_process_bytes(b"chat", b"--envelope", b"--stream", input=stdin))
    assert [o["code"] for o in out] == [Codes.UPSTREAM_FAILED, Codes.UPSTREAM_FAILED]
    assert "text/html" in out[0]["msg"] and "internal error" not in out[0]["msg"]
    fake.state["stream_html"] = False
    again = answers(run_process_bytes(b"chat", b"--envelope", b"--stream", input=line(question="a")))
    assert again[-1]["code"] == 0 and again[-1]["data"]["answer"] == "echo: a"  # nothing was saved before
    assert fake.calls("POST", "/v1/chat/completions")[-1].json()["messages"] == [{"role": "user", "content": "a"}]
