"""`oaicli responses follow ID` against the loopback fake: a running response is read from its stream
(GET /responses/{id}?stream=true), resumed with starting_after after a drop, polled when the server will
not stream it; the answer reaches stdout only when the response completed (in a pipe), and each way a
response ends has its exit code."""

import json

import pytest

from tests.conftest import TEST_KEY
from tests.terminal import run_tty


def background(invoke, question: str) -> str:
    response_id = invoke("chat", "--api", "responses", "--background", question).stdout.strip()
    assert response_id.startswith("resp_")
    return response_id


def streamed_gets(fake, response_id: str) -> list[dict]:
    return [call.query for call in fake.calls("GET", f"/v1/responses/{response_id}") if call.query.get("stream")]


def test_a_running_response_is_read_from_its_stream(invoke, fake):
    response_id = background(invoke, "one two three")
    result = invoke("responses", "follow", response_id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: one two three\n"
    assert streamed_gets(fake, response_id) == [{"stream": "true"}]  # from its first event
    assert len(fake.calls("GET", f"/v1/responses/{response_id}")) == 2  # one status read, then the stream


def test_a_dropped_stream_resumes_after_its_last_event(invoke, fake):
    response_id = background(invoke, "one two three four five")
    fake.state["responses_drop_after"] = [6]
    result = invoke("responses", "follow", response_id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: one two three four five\n"  # nothing twice, nothing lost
    assert streamed_gets(fake, response_id) == [{"stream": "true"}, {"stream": "true", "starting_after": "5"}]
    assert "resuming response" in result.stderr


def test_the_answer_appears_as_it_arrives_on_a_terminal_with_reasoning_on_stderr(fake, home):
    from tests.conftest import run_process
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    response_id = run_process("chat", "--api", "responses", "--background", "--reasoning-summary", "auto", "why",
                              env=env).stdout.strip()
    fake.state["responses_drop_after"] = [9]
    result = run_tty("responses", "follow", response_id, env=env)
    assert result.returncode == 0
    # The drop came mid-summary: the notice has a line of its own, and the summary goes on after it.
    assert "Reasoning: Thinking about the question \r\nThe stream dropped; resuming" in result.output
    assert "Reasoning: (auto summary).\r\n" in result.output
    assert result.output.count("echo: why") == 1
    assert streamed_gets(fake, response_id)[-1] == {"stream": "true", "starting_after": "8"}


@pytest.mark.parametrize("refusal", [(400, "Streaming is not supported for this response."), "ignore"])
def test_a_server_that_will_not_stream_it_is_polled(invoke, fake, refusal):
    fake.state["responses_stream_get"] = refusal
    fake.state["responses_polls_per_step"] = 2
    response_id = background(invoke, "polled please")
    result = invoke("responses", "follow", response_id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: polled please\n"
    assert len(streamed_gets(fake, response_id)) == 1  # asked once, then polled
    polls = [call for call in fake.calls("GET", f"/v1/responses/{response_id}") if not call.query]
    assert len(polls) >= 3  # queued, in_progress (twice each), completed
    assert "completed" in result.stderr


def test_a_failed_response_exits_6_with_nothing_on_stdout_in_a_pipe(invoke, fake):
    fake.state["responses_fail"] = "the model crashed"
    response_id = background(invoke, "a b c d e f")
    result = invoke("responses", "follow", response_id)
    assert result.exit_code == 6
    assert result.stdout == ""  # the partial answer would look like a complete one in a file
    assert f"Response {response_id} failed: the model crashed." in result.stderr
    as_json = invoke("responses", "follow", response_id, "--format", "json")
    assert as_json.exit_code == 6 and json.loads(as_json.stdout)["status"] == "failed"
    assert json.loads(as_json.stdout)["output"][0]["content"][0]["text"] == "echo: a b "  # kept for who asks


def test_a_failed_response_streamed_on_a_terminal_says_so_after_the_partial_answer(fake, home):
    from tests.conftest import run_process
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    fake.state["responses_fail"] = "the model crashed"
    response_id = run_process("chat", "--api", "responses", "--background", "a b c d e f", env=env).stdout.strip()
    result = run_tty("responses", "follow", response_id, env=env)
    assert result.returncode == 6
    partial, failure = result.output.index("echo: a b"), result.output.index("failed: the model crashed")
    assert partial < failure


def test_a_response_cancelled_while_followed_exits_7(invoke, fake):
    response_id = background(invoke, "long report")
    fake.state["responses_cancel_while_streaming"] = True
    result = invoke("responses", "follow", response_id)
    assert result.exit_code == 7 and result.stdout == ""
    assert f"Response {response_id} was cancelled." in result.stderr
    assert len(streamed_gets(fake, response_id)) == 2  # the stream, one resume that brought nothing: then polled


def test_an_incomplete_response_exits_7_with_nothing_on_stdout(invoke, fake):
    response_id = invoke("chat", "--api", "responses", "--background", "--max-output-tokens", "2",
                         "a b c d").stdout.strip()
    result = invoke("responses", "follow", response_id)
    assert result.exit_code == 7 and result.stdout == ""
    assert "incomplete (max_output_tokens)" in result.stderr


def test_a_finished_response_is_printed_without_streaming(invoke, fake):
    response_id = background(invoke, "done already")
    assert invoke("responses", "follow", response_id).exit_code == 0
    again = invoke("responses", "follow", response_id)
    assert again.exit_code == 0 and again.stdout == "echo: done already\n"
    assert len(streamed_gets(fake, response_id)) == 1  # only the first follow streamed it


def test_the_timeout_bounds_a_stalled_stream(invoke, fake):
    response_id = background(invoke, "one two three")
    fake.state["responses_stream_pause"] = 5  # far past the --timeout: the read times out, not the answer
    result = invoke("responses", "follow", response_id, "--timeout", "0.5")
    assert result.exit_code == 8 and f"oaicli responses follow {response_id}" in result.stderr
    assert result.stdout == ""
