"""oaicli chat against the loopback fake: requests, streaming output, sessions, atomicity, the loop."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.conftest import REPO, TEST_KEY, run_process
from tests.fake.server import Scripted


def bodies(fake, path="/v1/chat/completions"):
    """The JSON bodies sent to path. The fake records a request after answering it, so a streamed
    answer can reach the client first: give the server thread a moment to catch up with the requests."""
    import time
    seen, deadline = -1, time.monotonic() + 2
    while time.monotonic() < deadline:
        calls = fake.calls("POST", path)
        if len(calls) == seen:
            break
        seen = len(calls)
        time.sleep(0.02)
    return [call.json() for call in fake.calls("POST", path)]


def stored(name):
    from oaicli.conversation.store import Store
    with Store.open() as store:
        return store.export_messages(name) if store.get_session(name) else None


# One-shot, stateless

def test_streams_the_answer_and_sends_one_user_message(fake, invoke):
    result = invoke("chat", "hello there")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hello there\n"
    body = bodies(fake)[0]
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert body["stream"] is True and body["model"] == "gpt-3.5-turbo"
    assert "stream_options" not in body  # nobody asked for usage


def test_piped_stdin_is_appended_to_the_prompt(fake, invoke):
    result = invoke("chat", "Summarize:", input="line one\nline two\n")
    assert result.exit_code == 0, result.stderr
    assert bodies(fake)[0]["messages"][-1]["content"] == "Summarize:\n\nline one\nline two"


def test_dash_reads_the_prompt_from_stdin(fake, invoke):
    result = invoke("chat", "-", input="from stdin\n")
    assert result.stdout == "echo: from stdin\n"


def test_no_prompt_at_all_is_a_usage_error_and_sends_nothing(fake, invoke):
    result = invoke("chat", input="")
    assert result.exit_code == 2
    assert "No prompt" in result.stderr
    assert fake.calls("POST") == []


@pytest.mark.parametrize("args, message", [
    (["--temperature", "2.5"], "0<=x<=2"),
    (["--top-p", "1.1"], "0<=x<=1"),
    (["--presence-penalty", "-3"], "-2<=x<=2"),
    (["--frequency-penalty", "2.1"], "-2<=x<=2"),
    (["-n", "0"], "x>=1"),
    (["--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"], "at most 4 stop sequences"),
    (["--logit-bias", "50256=-101"], "from -100 to 100"),
    (["--logit-bias", "abc=5"], "not a token id"),
    (["--logit-bias", "{not json"], "not valid JSON"),
    (["--param", "logprobs=yes"], "not JSON"),
    (["--param", "novalue"], "not KEY=JSON"),
    (["-g", "robot", "hi"], "role 'robot'"),
    (["--response-format", "xml"], "xml"),
])
def test_bad_values_are_refused_before_any_request(fake, invoke, args, message):
    result = invoke("chat", "hi", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.calls("POST") == []


def test_every_option_reaches_the_request(fake, invoke):
    result = invoke("chat", "the question", "-m", "gpt-4o", "-s", "be brief", "--temperature", "0.5",
                    "--top-p", "0.9", "--stop", "END", "--stop", "STOP", "--max-tokens", "50",
                    "--max-completion-tokens", "60", "--presence-penalty", "1", "--frequency-penalty", "-1",
                    "--logit-bias", '{"50256": -100}', "--logit-bias", "11=5,12=-5.5", "--user", "u-1",
                    "--seed", "7", "--response-format", "json_object", "-g", "user", "2+2?", "-g", "assistant", "4",
                    "--param", "logprobs=true", "--param", "temperature=0.25", "--no-stream")
    assert result.exit_code == 0, result.stderr
    body = bodies(fake)[0]
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"},
                                {"role": "assistant", "content": "4"}, {"role": "user", "content": "the question"}]
    assert body["model"] == "gpt-4o"
    assert body["temperature"] == 0.25  # --param wins over the named option
    assert body["top_p"] == 0.9 and body["stop"] == ["END", "STOP"] and body["max_tokens"] == 50
    assert body["max_completion_tokens"] == 60 and body["presence_penalty"] == 1 and body["frequency_penalty"] == -1
    assert body["logit_bias"] == {"50256": -100, "11": 5, "12": -5.5}
    assert body["user"] == "u-1" and body["seed"] == 7 and body["logprobs"] is True
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body
    assert result.stdout == "echo: the question\n"


def test_profile_default_model(fake, invoke, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[profiles.default]\nmodels = { chat = "gpt-4o-mini" }\n')
    invoke("chat", "hi")
    assert bodies(fake)[0]["model"] == "gpt-4o-mini"


def test_each_delta_is_flushed_as_it_arrives(fake):
    """A real process on a pipe: the first words are readable while the server still holds the rest."""
    fake.state.update(chunk_delay=0.3)
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY}
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "chat", "one two three four five six"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        first = process.stdout.read1(100).decode()
        assert first and not first.startswith("echo: one two three four five six")
        rest = process.stdout.read().decode()
        assert (first + rest) == "echo: one two three four five six\n"
    finally:
        process.kill()
        process.wait()


def test_no_stream_waits_for_the_whole_answer(fake, invoke):
    result = invoke("chat", "--no-stream", "hi")
    assert result.stdout == "echo: hi\n"
    assert "stream" not in bodies(fake)[0]


def test_format_json_prints_the_assembled_response_object(fake, invoke):
    fake.state["chunks"] = 7
    result = invoke("chat", "--format", "json", "assemble me please")
    assert result.exit_code == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["object"] == "chat.completion"
    assert response["choices"][0]["message"] == {"role": "assistant", "content": "echo: assemble me please"}
    assert response["choices"][0]["finish_reason"] == "stop"
    assert response["usage"]["completion_tokens"] == 4  # asked for with stream_options
    assert bodies(fake)[0]["stream_options"] == {"include_usage": True}


def test_format_json_streamed_has_the_shape_of_the_unstreamed_object(fake, invoke):
    def shape(*args):
        result = invoke("chat", "-n", "2", "--format", "json", *args, "same shape")
        obj = json.loads(result.stdout)
        obj.pop("created")
        for choice in obj["choices"]:
            if choice.get("logprobs") is None:  # the real API sends null; the fake leaves it out
                choice.pop("logprobs", None)
        return obj
    assert shape() == shape("--no-stream")


def test_format_jsonl_prints_each_chunk(fake, invoke):
    result = invoke("chat", "--format", "jsonl", "a b")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(line["object"] == "chat.completion.chunk" for line in lines)
    assert "".join(c["delta"].get("content", "") for line in lines for c in line["choices"]) == "echo: a b"


def test_several_choices_are_labelled(fake, invoke):
    result = invoke("chat", "-n", "2", "hi")
    assert result.stdout == "[0] echo: hi\n[1] echo: hi\n"


def test_interleaved_choices_stream_as_one_readable_block_each(fake, invoke):
    fake.state["interleave"] = True  # as OpenAI streams n > 1: the choices' tokens take turns
    fake.state["answer"] = lambda messages: "one two three four five six seven"
    result = invoke("chat", "-n", "3", "hi")
    assert result.exit_code == 0, result.stderr
    text = "one two three four five six seven"
    assert result.stdout == f"[0] {text}\n[1] {text}\n[2] {text}\n"
    as_json = json.loads(invoke("chat", "-n", "3", "hi", "--format", "json").stdout)  # unchanged
    assert [c["message"]["content"] for c in as_json["choices"]] == [text] * 3


def test_usage_goes_to_stderr_and_stdout_stays_clean(fake, invoke):
    result = invoke("chat", "--usage", "one two")
    assert result.stdout == "echo: one two\n"
    assert "Usage: 1 prompt + 3 completion = 4 tokens." in result.stderr


def test_a_server_refusing_stream_options_is_asked_again_without_them(fake, invoke):
    fake.state["reject_stream_options"] = True
    result = invoke("chat", "--usage", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hi\n"
    assert "did not report token usage" in result.stderr
    sent = bodies(fake)
    assert "stream_options" in sent[0] and "stream_options" not in sent[1]


def test_a_server_ignoring_stream_is_still_printed(fake, invoke):
    fake.queue("POST", "/v1/chat/completions", Scripted(body={
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}]}))
    result = invoke("chat", "hi")
    assert result.stdout == "whole\n"


def test_an_error_mid_stream_fails_with_exit_5(fake, invoke):
    fake.state["drop_after"] = 2
    result = invoke("chat", "one two three")
    assert result.exit_code == 5
    assert "[DONE] missing" in result.stderr and result.stdout.startswith("echo:")


# Sessions

def test_session_sends_the_earlier_turns(fake, invoke):
    assert invoke("chat", "--session", "trip", "昨天下雨了,我出门没带伞,会怎么样").exit_code == 0
    assert invoke("chat", "--session", "trip", "如果带了呢").exit_code == 0
    second = bodies(fake)[1]["messages"]
    assert second == [{"role": "user", "content": "昨天下雨了,我出门没带伞,会怎么样"},
                      {"role": "assistant", "content": "echo: 昨天下雨了,我出门没带伞,会怎么样"},
                      {"role": "user", "content": "如果带了呢"}]
    assert len(stored("trip")) == 4


def test_a_follow_up_that_fits_by_its_bytes_loads_no_token_encoding(fake, invoke, monkeypatch):
    from oaicli.conversation import tokens
    monkeypatch.setattr(tokens, "_encodings", {})
    for i in range(11):
        assert invoke("chat", "--session", "s", f"question {i} 如果带了呢").exit_code == 0
    assert len(bodies(fake)[-1]["messages"]) == 21  # the 10 stored exchanges and the question
    assert tokens._encodings == {}  # a history far inside the window is never counted


def test_the_encoding_is_built_and_the_tail_counted_outside_the_session_lock(fake, invoke, monkeypatch):
    """8 processes on one session wait for each other's whole turn; building the encoding (0.1-0.3 s) and
    counting the stored tail must not be part of what they wait for."""
    from oaicli.conversation import tokens
    from oaicli.conversation.store import Store
    long = "tell me more about it " * 20  # over the window by its bytes, inside it by its tokens
    for i in range(3):
        assert invoke("chat", "--session", "s", "--context-window", "1200", f"{i} {long}").exit_code == 0
    with Store.open() as store:  # as a fresh process sees them: counts not cached yet
        store.db.execute("UPDATE turns SET tokens = NULL, tokens_encoding = NULL")
    inside = {"now": False}
    built_inside, counted_inside = [], []
    real_exclusive, real_get_encoding, real_count_text = Store.exclusive, tokens.get_encoding, tokens.TokenCounter.count_text

    def exclusive(self, name):
        import contextlib

        @contextlib.contextmanager
        def held():
            with real_exclusive(self, name):
                inside["now"] = True
                try:
                    yield
                finally:
                    inside["now"] = False
        return held()

    def get_encoding(name):
        if name not in tokens._encodings:
            built_inside.append(inside["now"])
        return real_get_encoding(name)

    def count_text(self, text):
        if long in text:
            counted_inside.append(inside["now"])
        return real_count_text(self, text)

    monkeypatch.setattr(Store, "exclusive", exclusive)
    monkeypatch.setattr(tokens, "get_encoding", get_encoding)
    monkeypatch.setattr(tokens.TokenCounter, "count_text", count_text)
    monkeypatch.setattr(tokens, "_encodings", {})
    assert invoke("chat", "--session", "s", "--context-window", "1200", "and then?").exit_code == 0
    assert len(bodies(fake)[-1]["messages"]) == 7  # every stored exchange was sent
    assert built_inside == [False]  # built once, before the lock was taken
    assert counted_inside and not any(counted_inside)  # the stored turns were counted, never under the lock


def test_session_keeps_model_and_system(fake, invoke):
    invoke("chat", "--session", "s", "-m", "gpt-4o", "-s", "be terse", "first")
    invoke("chat", "--session", "s", "second")
    body = bodies(fake)[1]
    assert body["model"] == "gpt-4o"
    assert body["messages"][0] == {"role": "system", "content": "be terse"}


def test_continue_uses_the_latest_session(fake, invoke):
    invoke("chat", "--session", "old", "a")
    invoke("chat", "--session", "new", "b")
    assert invoke("chat", "-c", "c").exit_code == 0
    assert [m["content"] for m in bodies(fake)[2]["messages"]] == ["b", "echo: b", "c"]
    assert len(stored("new")) == 4 and len(stored("old")) == 2


def test_continue_without_any_session_is_a_usage_error(fake, invoke):
    result = invoke("chat", "-c", "hi")
    assert result.exit_code == 2 and "No session to continue" in result.stderr
    assert fake.calls("POST") == []


def test_stateless_chat_stores_nothing(fake, invoke, home):
    invoke("chat", "hi")
    assert not (home / "sessions.db").exists()


@pytest.mark.parametrize("failure", ["drop", "server_error", "no_done"])
def test_a_failed_turn_leaves_the_session_unchanged_and_is_not_repeated(fake, invoke, failure):
    invoke("chat", "--session", "s", "first")
    before = stored("s")
    if failure == "drop":
        fake.state["drop_after"] = 2
    elif failure == "no_done":
        fake.state["send_done"] = False
    else:
        fake.queue("POST", "/v1/chat/completions", *[Scripted(500, {"error": {"message": "boom"}})] * 3)
    result = invoke("chat", "--session", "s", "如果带了呢")
    assert result.exit_code == 5
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].endswith("The turn was not saved; session 's' is unchanged.")
    assert errors[0].lower().count("saved") == 1  # said once, not also by the stream error's own hint
    assert result.stdout == "" or result.stdout.endswith("\n")  # a half answer ends its line
    assert stored("s") == before
    fake.state.update(drop_after=None, send_done=True)
    assert invoke("chat", "--session", "s", "如果带了呢").exit_code == 0
    last = bodies(fake)[-1]["messages"]
    assert [m["content"] for m in last].count("如果带了呢") == 1  # never the same question twice in a row
    assert [m["role"] for m in stored("s")] == ["user", "assistant"] * 2


def test_context_length_exceeded_shrinks_and_retries_once(fake, invoke):
    for i in range(4):
        invoke("chat", "--session", "long", f"question number {i} " + "x" * 40)
    fake.state["max_context_chars"] = 300  # the 4 exchanges hold about 500 characters, 2 about 250
    result = invoke("chat", "--session", "long", "short one")
    assert result.exit_code == 0, result.stderr
    assert "context was too long; retrying once without the 2 oldest exchanges" in result.stderr
    refused, retried = bodies(fake)[-2:]
    assert len(refused["messages"]) == 9 and len(retried["messages"]) == 5
    assert retried["messages"][-1]["content"] == "short one"
    assert len(stored("long")) == 10


def test_context_length_exceeded_twice_fails_and_saves_nothing(fake, invoke):
    invoke("chat", "--session", "s", "a" * 100)
    fake.state["max_context_chars"] = 10
    result = invoke("chat", "--session", "s", "b" * 50)
    assert result.exit_code == 4
    assert "maximum context length" in result.stderr and "not saved" in result.stderr
    assert len(bodies(fake)) == 3 and len(stored("s")) == 2


def test_a_question_too_long_for_the_window_is_refused_before_sending(fake, invoke):
    result = invoke("chat", "--session", "s", "--context-window", "64", "word " * 200)
    assert result.exit_code == 4
    assert "too long for the model's context" in result.stderr
    assert fake.calls("POST") == []


def test_max_history_caps_the_turns_sent(fake, invoke):
    for q in "abc":
        invoke("chat", "--session", "s", q)
    invoke("chat", "--session", "s", "--max-history", "1", "d")
    assert [m["content"] for m in bodies(fake)[-1]["messages"]] == ["c", "echo: c", "d"]


def test_completions_only_models_hold_the_conversation_as_a_transcript(fake, invoke):
    assert invoke("chat", "--session", "old", "-m", "text-davinci-003", "-s", "You are kind.", "hi there").exit_code == 0
    result = invoke("chat", "--session", "old", "and then?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: and then?\n"  # the space after "Assistant:" is not printed
    body = bodies(fake, "/v1/completions")[1]
    assert body["model"] == "text-davinci-003"
    assert body["prompt"] == ("You are kind.\n\nUser: hi there\nAssistant: echo: hi there\n"
                              "User: and then?\nAssistant:")
    assert body["stop"] == ["\nUser:"]
    assert fake.calls("POST", "/v1/chat/completions") == []
    assert stored("old")[-1] == {"role": "assistant", "content": "echo: and then?"}


def test_api_completions_forces_the_transcript_for_any_model(fake, invoke):
    invoke("chat", "--api", "completions", "-m", "my-local-model", "--stop", "###", "hi")
    body = bodies(fake, "/v1/completions")[0]
    assert body["prompt"] == "User: hi\nAssistant:" and body["stop"] == ["###", "\nUser:"]


def test_several_processes_on_one_session_take_turns(fake, home):
    fake.state["answer_delay"] = 0.1
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    results = []

    def ask(i):
        results.append(run_process("chat", "--session", "shared", f"question {i}", env=env))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    messages = stored("shared")
    assert len(messages) == 10
    for question, answer in zip(messages[::2], messages[1::2]):
        assert answer["content"] == f"echo: {question['content']}"
    # each request saw every exchange finished before it: 0, 1, 2, 3, 4 earlier exchanges
    assert sorted(len(b["messages"]) for b in bodies(fake)) == [1, 3, 5, 7, 9]


def test_ctrl_c_mid_answer_saves_nothing_and_exits_130(fake, home):
    fake.state.update(chunk_delay=0.2)
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    assert run_process("chat", "--session", "s", "first", env=env).returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "chat", "--session", "s", "a b c d e f g h"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert process.stdout.read1(100)  # the answer has started
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert b"the turn was not saved; session 's' is unchanged" in err
    assert len(stored("s")) == 2


# The interactive loop

def test_interactive_loop_keeps_context_and_runs_commands(fake, invoke):
    script = 'first\n"""\nline a\nline b\n"""\n/history\n/reset\n/history\nafter reset\n/exit\nnever sent\n'
    result = invoke("chat", "-i", input=script)
    assert result.exit_code == 0, result.stderr
    sent = [b["messages"] for b in bodies(fake)]
    assert len(sent) == 3
    assert sent[1] == [{"role": "user", "content": "first"}, {"role": "assistant", "content": "echo: first"},
                       {"role": "user", "content": "line a\nline b"}]
    assert sent[2] == [{"role": "user", "content": "after reset"}]
    assert "user: first\nassistant: echo: first\nuser: line a\nline b\n" in result.stdout
    assert "Conversation cleared." in result.stderr and "No turns yet." in result.stderr


def test_interactive_slash_commands_are_never_sent_or_stored(fake, invoke):
    script = "/help\n/xyz\n/Reset-all\n//etc/hosts is what?\n/usr/bin is a folder\n/quit\nnever sent\n"
    result = invoke("chat", "-i", "--session", "slash", input=script)
    assert result.exit_code == 0, result.stderr
    for command in ("/help", "/history", "/reset", "/exit", "/quit"):
        assert command in result.stderr  # /help lists them
    assert "Unknown command /xyz; nothing was sent." in result.stderr
    assert "Unknown command /Reset-all; nothing was sent." in result.stderr
    sent = [b["messages"][-1]["content"] for b in bodies(fake)]
    assert sent == ["/etc/hosts is what?", "/usr/bin is a folder"]  # // escapes; a sentence is a question
    assert [m["content"] for m in stored("slash") if m["role"] == "user"] == sent
    assert invoke("chat", "-i", input="/exit\nnever sent\n").exit_code == 0 and len(bodies(fake)) == 2


def test_interactive_loop_with_a_session_stores_turns_and_reports_errors(fake, invoke):
    fake.queue("POST", "/v1/chat/completions", Scripted(400, {"error": {"message": "bad thing", "type": "x"}}))
    result = invoke("chat", "-i", "--session", "loop", input="refused\naccepted\n")
    assert result.exit_code == 0
    assert "bad thing" in result.stderr and "not saved" in result.stderr
    assert stored("loop") == [{"role": "user", "content": "accepted"},
                              {"role": "assistant", "content": "echo: accepted"}]


def test_interactive_ctrl_c_cancels_the_answer_and_stays_in_the_loop(fake, home):
    from tests.terminal import run_tty
    fake.state.update(chunk_delay=0.15)
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    result = run_tty("chat", "--session", "tty", env=env, answers=[
        ("> ", "slow answer with many words in it\r"), ("echo: slow", "\x03"),
        ("> ", "second\r"), ("echo: second", ""), ("> ", "/exit\r")], timeout=60)
    assert result.returncode == 0, result.output
    assert "Cancelled: the turn was not saved" in result.output
    assert stored("tty") == [{"role": "user", "content": "second"}, {"role": "assistant", "content": "echo: second"}]


def test_interactive_loop_on_a_terminal_recalls_earlier_lines_with_the_up_arrow(fake, home):
    """Line editing: the Up arrow brings back the previous question (not an escape sequence sent as text)."""
    from tests.terminal import run_tty
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    result = run_tty("chat", env=env, answers=[("> ", "recall me\r"), ("echo: recall me\r\n> ", "\x1b[A!\r"),
                                               ("echo: recall me!\r\n> ", "/exit\r")],
                     timeout=60)
    assert result.returncode == 0, result.output
    questions = [m["content"] for body in bodies(fake) for m in body["messages"][-1:]]
    assert questions == ["recall me", "recall me!"]


# SSE edge cases, end to end

def _sse_body(*events, sep=b"\n\n"):
    return b"".join((b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + sep) for e in events)


def _delta(text):
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def test_crlf_events_comments_and_keep_alives_are_handled(fake, invoke):
    body = (b": keep-alive\r\n\r\n" + _sse_body(_delta("Hel"), sep=b"\r\n\r\n") + b"data: \r\n\r\n"
            + _sse_body(_delta("lo"), b"[DONE]", sep=b"\r\n\r\n"))
    fake.queue("POST", "/v1/chat/completions", Scripted(raw=body, content_type="text/event-stream"))
    result = invoke("chat", "--session", "s", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello\n"
    assert stored("s")[-1] == {"role": "assistant", "content": "Hello"}


def test_an_error_event_mid_stream_fails_and_saves_nothing(fake, invoke):
    body = _sse_body(_delta("partial "), {"error": {"message": "The server is overloaded", "type": "server_error"}})
    fake.queue("POST", "/v1/chat/completions", Scripted(raw=body, content_type="text/event-stream"))
    result = invoke("chat", "--session", "s", "hi")
    assert result.exit_code == 5
    assert "overloaded" in result.stderr and "not saved" in result.stderr
    assert result.stdout.startswith("partial")
    assert stored("s") is None  # a failed first turn does not even create the session


def test_the_transcript_keeps_its_stop_sequence_when_four_are_given(fake, invoke):
    result = invoke("chat", "--api", "completions", "--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "hi")
    assert result.exit_code == 0
    assert bodies(fake, "/v1/completions")[0]["stop"] == ["a", "b", "c", "\nUser:"]
    assert "only your first 3 --stop are sent" in result.stderr


def test_explicit_messages_count_in_the_history_budget(fake, invoke):
    from oaicli.conversation import budget as context
    from oaicli.conversation import tokens
    for q in ["first question here", "second question here"]:
        invoke("chat", "--session", "s", q)
    counter = tokens.counter_for("gpt-3.5-turbo")
    everything = counter.count_messages(bodies(fake)[-1]["messages"] + [
        {"role": "assistant", "content": "echo: second question here"}, {"role": "user", "content": "third"}])
    window = everything + context.answer_room(4096) + context.MARGIN  # the whole history just fits
    extra = ["-g", "user", "padding " * 20]
    result = invoke("chat", "--session", "s", "--context-window", window, "--max-tokens", 1024, *extra, "third")
    assert result.exit_code == 0, result.stderr
    sent = bodies(fake)[-1]["messages"]
    assert counter.count_messages(sent) <= window - 1024 - context.MARGIN
    assert [m["content"] for m in sent][0].startswith("padding")
    assert "first question here" not in [m["content"] for m in sent]  # dropped to make room for -g
