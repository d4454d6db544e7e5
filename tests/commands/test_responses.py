"""chat --api responses against the loopback fake: streamed typed events, reasoning summaries, usage,
structured output checked locally, a dropped stream resumed, background responses followed and
cancelled, server-side context for sessions, and tool calls shown, not run."""

import json

import pytest

from tests.fake.server import Scripted


def posts(fake):
    return [c.json() for c in fake.calls("POST", "/v1/responses")]


def test_streams_the_answer_through_responses_with_instructions_and_fields(invoke, fake):
    result = invoke("chat", "--api", "responses", "-s", "Be brief.", "--max-output-tokens", "50",
                    "--reasoning-effort", "low", "--service-tier", "flex", "--no-store", "hello there world")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hello there world\n"
    body = posts(fake)[0]
    assert body["instructions"] == "Be brief."
    assert body["input"] == [{"type": "message", "role": "user", "content": "hello there world"}]
    assert body["max_output_tokens"] == 50 and body["reasoning"] == {"effort": "low"}
    assert body["service_tier"] == "flex" and body["store"] is False and body["stream"] is True
    assert fake.calls("POST", "/v1/chat/completions") == []


def test_reasoning_summary_goes_to_stderr_and_usage_counts_reasoning(invoke, fake):
    result = invoke("chat", "--api", "responses", "--reasoning-summary", "auto", "--usage", "why")
    assert result.stdout == "echo: why\n"
    assert "Reasoning: Thinking about the question (auto summary)." in result.stderr
    assert "(64 reasoning)" in result.stderr and "Usage:" in result.stderr
    quiet = invoke("chat", "--api", "responses", "--reasoning-summary", "auto", "-q", "why")
    assert quiet.stdout == "echo: why\n" and "Reasoning" not in quiet.stderr


def test_format_json_prints_the_final_response_object(invoke, fake):
    result = invoke("chat", "--api", "responses", "--format", "json", "hi")
    response = json.loads(result.stdout)
    assert response["object"] == "response" and response["status"] == "completed"
    assert response["output"][-1]["content"][0]["text"] == "echo: hi"


def test_a_dropped_stream_resumes_after_the_last_event_instead_of_asking_again(invoke, fake):
    fake.state["responses_drop_after"] = [6]
    result = invoke("chat", "--api", "responses", "one two three four five six")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: one two three four five six\n"  # nothing printed twice
    assert len(fake.calls("POST", "/v1/responses")) == 1
    resumed = fake.calls("GET")
    assert len(resumed) == 1 and resumed[0].query["starting_after"] == "5" and resumed[0].query["stream"] == "true"
    assert "resuming response" in result.stderr


def test_a_dropped_stream_of_an_unstored_response_fails_without_asking_again(invoke, fake):
    fake.state["responses_drop_after"] = [6]
    result = invoke("chat", "--api", "responses", "--no-store", "one two three four five six")
    assert result.exit_code == 5
    assert "not stored" in result.stderr and len(fake.calls("POST", "/v1/responses")) == 1


def test_a_failed_response_exits_5_and_saves_nothing(invoke, fake):
    fake.state["responses_fail"] = "overloaded"
    result = invoke("chat", "--api", "responses", "--session", "s", "a b c d")
    assert result.exit_code == 5 and "overloaded" in result.stderr
    assert "session 's' is unchanged" in result.stderr
    assert invoke("sessions", "show", "s").exit_code != 0


def test_schema_checked_locally_before_printing(invoke, fake, tmp_path):
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps({"title": "person", "type": "object", "properties": {"name": {"type": "string"}},
                                  "required": ["name"], "additionalProperties": False}))
    fake.state["responses_answer"] = lambda body: '{"name": "Ada"}'
    good = invoke("chat", "--api", "responses", "--schema", schema, "invent")
    assert good.exit_code == 0 and json.loads(good.stdout) == {"name": "Ada"}
    fmt = posts(fake)[0]["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["name"] == "person" and fmt["schema"]["required"] == ["name"]
    fake.state["responses_answer"] = lambda body: '{"name": 3}'
    bad = invoke("chat", "--api", "responses", "--schema", schema, "invent")
    assert bad.exit_code == 5 and bad.stdout == ""
    assert "$.name: expected string, got integer" in bad.stderr


def test_a_schema_file_that_is_not_json_is_refused_before_any_request(invoke, fake, tmp_path):
    schema = tmp_path / "bad.json"
    schema.write_text("{nope")
    result = invoke("chat", "--api", "responses", "--schema", schema, "x")
    assert result.exit_code == 4 and "is not JSON" in result.stderr
    assert fake.calls("POST") == []


@pytest.mark.parametrize("schema_text, named", [
    ('{"type": "objekt"}', "'objekt'"),
    ('{"type": "object", "properties": {"age": {"type": "int"}}}', "'int'"),
])
def test_a_schema_type_json_schema_lacks_is_refused_before_any_request(invoke, fake, tmp_path, schema_text, named):
    # An unknown type matched every answer locally, so a typo checked nothing (and the API refuses it
    # only after the request is paid for).
    schema = tmp_path / "typo.json"
    schema.write_text(schema_text)
    result = invoke("chat", "--api", "responses", "--schema", schema, "x")
    assert result.exit_code == 4 and named in result.stderr and "string" in result.stderr
    assert fake.calls("POST") == []


def test_tool_calls_are_shown_not_run(invoke, fake):
    fake.state["responses_tool_call"] = ("get_weather", '{"city": "Paris"}')
    result = invoke("chat", "--api", "responses", "weather?")
    assert 'Tool call get_weather({"city": "Paris"})' in result.stdout
    assert "does not run them" in result.stderr


def test_options_the_chosen_api_lacks_are_refused(invoke, fake):
    assert "needs --api responses" in invoke("chat", "--reasoning-effort", "low", "x").stderr
    assert "-n has no Responses API field" in invoke("chat", "--api", "responses", "-n", "2", "x").stderr
    assert fake.calls("POST") == []


def test_auto_falls_back_to_chat_completions_when_the_server_has_no_responses(invoke, fake):
    fake.queue("POST", "/v1/responses", Scripted(404, {"error": {"message": "Unknown path", "type": "x"}}))
    result = invoke("chat", "--api", "auto", "hi")
    assert result.exit_code == 0 and result.stdout == "echo: hi\n"
    assert len(fake.calls("POST", "/v1/chat/completions")) == 1
    again = invoke("chat", "--api", "auto", "again")  # remembered: /responses is not asked again
    assert again.stdout == "echo: again\n" and len(fake.calls("POST", "/v1/responses")) == 1


def test_auto_uses_responses_when_the_server_answers_it(invoke, fake):
    result = invoke("chat", "hi", env={"OAICLI_CHAT_API": "auto"})
    assert result.stdout == "echo: hi\n"
    assert len(posts(fake)) == 1 and fake.calls("POST", "/v1/chat/completions") == []


def test_background_then_follow_and_cancel(invoke, fake):
    started = invoke("chat", "--api", "responses", "--background", "long report")
    response_id = started.stdout.strip()
    assert response_id.startswith("resp_") and posts(fake)[0]["background"] is True
    followed = invoke("responses", "follow", response_id)
    assert followed.exit_code == 0 and followed.stdout == "echo: long report\n"
    assert "completed" in followed.stderr
    other = invoke("chat", "--api", "responses", "--background", "again").stdout.strip()
    assert invoke("responses", "cancel", other, "--format", "json").exit_code == 0
    cancelled = invoke("responses", "follow", other)
    assert cancelled.exit_code == 7 and "cancelled" in cancelled.stderr


def test_follow_times_out_with_exit_8(invoke, fake):
    fake.state["responses_polls_per_step"] = 1000
    fake.state["responses_stream_get"] = "ignore"  # polled (a stream would run the response to its end)
    response_id = invoke("chat", "--api", "responses", "--background", "slow").stdout.strip()
    invoke.obj["sleep"] = lambda seconds: __import__("time").sleep(0.01)
    result = invoke("responses", "follow", response_id, "--timeout", "0.05")
    assert result.exit_code == 8 and f"oaicli responses follow {response_id}" in result.stderr


def test_previous_context_sends_only_the_new_question_and_chains_ids(invoke, fake):
    assert invoke("chat", "--api", "responses", "--session", "p", "--context", "previous", "first").exit_code == 0
    second = invoke("chat", "--api", "responses", "--session", "p", "--context", "previous", "second")
    assert second.stdout == "echo: second\n"
    first_body, second_body = posts(fake)
    assert "previous_response_id" not in first_body
    assert second_body["previous_response_id"]
    assert second_body["input"] == [{"type": "message", "role": "user", "content": "second"}]
    shown = json.loads(invoke("sessions", "show", "p", "--format", "json").stdout)
    assert [t["content"] for t in shown["turns"]] == ["first", "echo: first", "second", "echo: second"]


def test_previous_context_chains_on_the_stored_answers_response_id(invoke, fake):
    invoke("chat", "--api", "responses", "--session", "p", "--context", "previous", "first")
    first_id = fake.state["responses"] and list(fake.state["responses"])[0]
    invoke("chat", "--api", "responses", "--session", "p", "--context", "previous", "second")
    assert posts(fake)[1]["previous_response_id"] == first_id


def test_server_context_maps_the_session_to_one_conversation(invoke, fake):
    invoke("chat", "--session", "c", "local first")  # a local session moves to the server with its history
    for question in ("one", "two"):
        result = invoke("chat", "--api", "responses", "--session", "c", "--context", "server", question)
        assert result.exit_code == 0, result.stderr
    (conversation_id, record), = fake.state["conversations"].items()
    assert [b["conversation"] for b in posts(fake)] == [conversation_id, conversation_id]
    assert all(b["input"] == [{"type": "message", "role": "user", "content": q}]
               for b, q in zip(posts(fake), ("one", "two")))
    texts = [i["content"] if isinstance(i["content"], str) else i["content"][0]["text"] for i in record["items"]]
    assert texts == ["local first", "echo: local first", "one", "echo: one", "two", "echo: two"]
    shown = json.loads(invoke("sessions", "show", "c", "--format", "json").stdout)
    assert len(shown["turns"]) == 6


def test_a_server_side_failure_leaves_both_sides_as_they_were(invoke, fake):
    fake.state["responses_status"] = (500, "boom")
    invoke.obj["sleep"] = lambda seconds: None
    result = invoke("chat", "--api", "responses", "--session", "c", "--context", "server", "--max-retries", "0", "q")
    assert result.exit_code == 5
    assert fake.state["conversations"] == {}  # the Conversation made for the turn was deleted
    assert invoke("sessions", "show", "c").exit_code != 0
    ok = invoke("chat", "--api", "responses", "--session", "c", "--context", "server", "q")
    assert ok.exit_code == 0 and len(fake.state["conversations"]) == 1


def test_previous_context_survives_a_response_the_server_no_longer_has(invoke, fake):
    # Stored responses expire (30 days): the session would be stuck on every later turn, though the local
    # store, the source of truth, still holds the whole history to send instead.
    ask = ("chat", "--api", "responses", "--session", "p", "--context", "previous")
    assert invoke(*ask, "first").exit_code == 0
    fake.state["responses"].clear()
    second = invoke(*ask, "second")
    assert second.exit_code == 0, second.stderr
    assert second.stdout == "echo: second\n" and "local store" in second.stderr
    retried = posts(fake)[-1]
    assert "previous_response_id" not in retried
    assert [item["content"] for item in retried["input"]] == ["first", "echo: first", "second"]
    third = invoke(*ask, "third")  # and the chain goes on from the new answer
    assert third.exit_code == 0 and posts(fake)[-1]["previous_response_id"] in fake.state["responses"]
    shown = json.loads(invoke("sessions", "show", "p", "--format", "json").stdout)
    assert [t["content"] for t in shown["turns"]][-2:] == ["third", "echo: third"]


def test_server_context_survives_a_conversation_the_server_no_longer_has(invoke, fake):
    ask = ("chat", "--api", "responses", "--session", "c", "--context", "server")
    assert invoke(*ask, "first").exit_code == 0
    fake.state["conversations"].clear()
    second = invoke(*ask, "second")
    assert second.exit_code == 0, second.stderr
    assert "local store" in second.stderr
    (conversation_id, record), = fake.state["conversations"].items()
    texts = [i["content"] if isinstance(i["content"], str) else i["content"][0]["text"] for i in record["items"]]
    assert texts == ["first", "echo: first", "second", "echo: second"]
    assert invoke(*ask, "third").exit_code == 0 and posts(fake)[-1]["conversation"] == conversation_id


@pytest.mark.parametrize("args, message", [
    (["--context", "server", "x"], "needs --session"),
    (["--session", "s", "--context", "server", "--no-store", "x"], "needs stored responses"),
    (["--session", "s", "--background", "x"], "cannot be saved in a session"),
])
def test_server_context_misuse_is_a_usage_error(invoke, fake, args, message):
    result = invoke("chat", "--api", "responses", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert fake.calls("POST") == []


def envelope_line(user: str, question: str, group: str = "g") -> str:
    return json.dumps({"version": "1.0.0", "pars": {"user_id": user, "group_id": group, "question": question}}) + "\n"


def test_envelope_keeps_one_conversation_per_group_and_user(invoke, fake):
    lines = envelope_line("ann", "a1") + envelope_line("bob", "b1") + envelope_line("ann", "a2")
    result = invoke("chat", "--envelope", "--api", "responses", "--context", "server", input=lines)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["code"] for a in answers] == [0, 0, 0]
    assert [a["data"]["answer"] for a in answers] == ["echo: a1", "echo: b1", "echo: a2"]
    conversations = [b["conversation"] for b in posts(fake)]
    assert conversations[0] == conversations[2] != conversations[1]
    assert len(fake.state["conversations"]) == 2
    assert all(len(b["input"]) == 1 for b in posts(fake))  # only the new question is sent
    again = invoke("chat", "--envelope", "--api", "responses", "--context", "server", input=envelope_line("bob", "b2"))
    assert json.loads(again.stdout)["code"] == 0
    assert posts(fake)[-1]["conversation"] == conversations[1]  # the mapping is kept in the local store


def test_envelope_server_failure_answers_an_error_and_leaves_no_conversation(invoke, fake):
    fake.state["responses_status"] = (400, "bad request")
    lines = envelope_line("ann", "a1") + envelope_line("ann", "a2")
    result = invoke("chat", "--envelope", "--api", "responses", "--context", "server", input=lines)
    codes = [json.loads(line)["code"] for line in result.stdout.splitlines()]
    assert codes == [2001, 0]
    assert len(fake.state["conversations"]) == 1  # the failed first question's Conversation was deleted
    items = next(iter(fake.state["conversations"].values()))["items"]
    assert items[0]["content"] == "a2"


def test_envelope_context_survives_a_conversation_the_server_no_longer_has(invoke, fake):
    # A Conversation can be deleted or expire on the server: the context would answer 2001 to every later
    # question, though the local store still holds its whole history to seed a new one with.
    ask = ("chat", "--envelope", "--api", "responses", "--context", "server")
    assert json.loads(invoke(*ask, input=envelope_line("ann", "a1")).stdout)["code"] == 0
    gone = posts(fake)[-1]["conversation"]
    fake.state["conversations"].clear()
    result = invoke(*ask, input=envelope_line("ann", "a2") + envelope_line("ann", "a3"))
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["code"] for a in answers] == [0, 0]
    assert [a["data"]["answer"] for a in answers] == ["echo: a2", "echo: a3"]
    assert result.stderr.count("local store") == 1 and gone in result.stderr
    (conversation_id, record), = fake.state["conversations"].items()
    assert conversation_id != gone and posts(fake)[-1]["conversation"] == conversation_id  # the new id is kept
    texts = [i["content"] if isinstance(i["content"], str) else i["content"][0]["text"] for i in record["items"]]
    assert texts == ["a1", "echo: a1", "a2", "echo: a2", "a3", "echo: a3"]
    assert all(len(b["input"]) == 1 for b in posts(fake))  # still only the new question is sent


def test_a_reset_session_starts_a_new_conversation(invoke, fake):
    invoke("chat", "--api", "responses", "--session", "c", "--context", "server", "one")
    assert invoke("sessions", "reset", "c", "--yes").exit_code == 0
    invoke("chat", "--api", "responses", "--session", "c", "--context", "server", "two")
    first, second = (b["conversation"] for b in posts(fake))
    assert first != second
    assert fake.state["conversations"][second]["items"][0]["content"] == "two"  # no history carried over


def test_the_interactive_loop_asks_through_responses(invoke, fake):
    result = invoke("chat", "--api", "responses", "-i", input="first\nsecond\n/exit\n")
    assert result.exit_code == 0, result.stderr
    second = posts(fake)[1]
    assert [item["content"] for item in second["input"]] == ["first", "echo: first", "second"]


def test_ctrl_c_during_responses_follow_leaves_the_response_running(fake, home, invoke):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, TEST_KEY
    fake.state["responses_polls_per_step"] = 1000
    fake.state["responses_stream_pause"] = 30  # the stream's events come slowly: Ctrl-C arrives before the end
    response_id = invoke("chat", "--api", "responses", "--background", "slow").stdout.strip()
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "responses", "follow", response_id],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert process.stderr.readline().startswith(f"Response {response_id}: queued".encode())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130 and out == b""
    assert f"Resume: oaicli responses follow {response_id}".encode() in err
    assert fake.calls("POST", f"/v1/responses/{response_id}/cancel") == []


def test_an_error_event_mid_stream_exits_5_and_an_incomplete_answer_says_why(invoke, fake):
    fake.state["responses_error"] = ("server_error", "the model crashed")
    broken = invoke("chat", "--api", "responses", "--session", "e", "a b c d")
    assert broken.exit_code == 5 and "the model crashed (server_error)" in broken.stderr
    assert "session 'e' is unchanged" in broken.stderr
    del fake.state["responses_error"]
    cut = invoke("chat", "--api", "responses", "--max-output-tokens", "2", "a b c d")
    assert cut.exit_code == 0 and cut.stdout == "echo: a \n"
    assert "The answer is incomplete (max_output_tokens)." in cut.stderr


def test_a_profile_can_make_responses_the_default_and_a_bad_value_is_a_config_error(invoke, fake, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[profiles.default]\nchat_api = "responses"\n')
    result = invoke("chat", "hi")
    assert result.stdout == "echo: hi\n" and len(posts(fake)) == 1
    assert invoke("chat", "--api", "chat", "hi").exit_code == 0  # the flag wins
    assert len(fake.calls("POST", "/v1/chat/completions")) == 1
    bad = invoke("chat", "hi", env={"OAICLI_CHAT_API": "nope"})
    assert bad.exit_code == 3 and "OAICLI_CHAT_API='nope'" in bad.stderr


def test_format_jsonl_prints_each_event_once_even_across_a_resume(invoke, fake):
    fake.state["responses_drop_after"] = [5]
    result = invoke("chat", "--api", "responses", "--format", "jsonl", "one two three")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    numbers = [event["sequence_number"] for event in events]
    assert numbers == list(range(len(events)))  # in order, none twice, none lost
    assert events[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "echo: one two three"
    unstreamed = invoke("chat", "--api", "responses", "--format", "jsonl", "--no-stream", "hi")
    assert json.loads(unstreamed.stdout)["object"] == "response"
