"""The envelope: the engine's rules (parse, idempotency, codes) and `chat --envelope` end to end."""

import json
import os
import subprocess
import sys

import pytest

from oaicli.envelope.engine import VERSION, Codes, Envelope, Parsed, session_name
from tests.conftest import REPO, TEST_KEY
from tests.fake.server import Scripted


def line(question="hi", user_id="u1", group_id="g1", question_id="", version="1.0.0", **extra):
    pars = {"user_id": user_id, "question": question, "group_id": group_id, "question_id": question_id, **extra}
    return json.dumps({"version": version, "pars": pars}, ensure_ascii=False)


def run(invoke, *lines, args=()):
    result = invoke("chat", "--envelope", *args, input="".join(f"{item}\n" for item in lines))
    assert result.exit_code == 0, result.stderr
    return [json.loads(out) for out in result.stdout.splitlines()]


def chat_bodies(fake):
    from tests.commands.test_chat import bodies
    return bodies(fake)


@pytest.fixture
def engine(home):
    from oaicli.conversation.store import Store
    with Store.open(home / "sessions.db") as store:
        yield Envelope(store, model="gpt-3.5-turbo", system=None, max_question_chars=20)


# Parsing: every kind of bad line

@pytest.mark.parametrize("raw, code, msg, data", [
    ("not json", Codes.NOT_JSON, "not JSON", {}),
    (b"\xff\xfe", Codes.NOT_JSON, "not valid UTF-8", {}),
    ("[1, 2]", Codes.NOT_JSON, "not a JSON object", {}),
    ('{"pars": {"user_id": "u", "question": "q"}}', Codes.BAD_VERSION, "version is missing", {"user_id": "u"}),
    (line(version="2.0.0", user_id="u9"), Codes.BAD_VERSION, 'version "2.0.0" is not supported',
     {"user_id": "u9", "group_id": "g1", "question_id": ""}),
    ('{"version": 1, "pars": {}}', Codes.BAD_VERSION, "version 1 is not supported", {}),
    ('{"version": "1.0.0"}', Codes.BAD_FIELD, "pars is missing", {}),
    ('{"version": "1.0.0", "pars": {"question": "q", "group_id": "g"}}', Codes.BAD_FIELD,
     "pars.user_id is missing", {"group_id": "g"}),
    ('{"version": "1.0.0", "pars": {"user_id": 5, "question": "q"}}', Codes.BAD_FIELD,
     "pars.user_id must be a string, not a number", {}),
    (line(question=""), Codes.BAD_FIELD, "pars.question is empty", {"user_id": "u1", "group_id": "g1",
                                                                     "question_id": ""}),
    (line(question="   "), Codes.BAD_FIELD, "pars.question is empty", {"user_id": "u1", "group_id": "g1",
                                                                        "question_id": ""}),
    ('{"version": "1.0.0", "pars": {"user_id": "u", "question": ["q"]}}', Codes.BAD_FIELD,
     "pars.question must be a string, not an array", {"user_id": "u"}),
    ('{"version": "1.0.0", "pars": {"user_id": "u", "question": "q", "group_id": 7}}', Codes.BAD_FIELD,
     "pars.group_id must be a string, not a number", {"user_id": "u"}),
    ('{"version": "1.0.0", "pars": {"user_id": "u", "question": "q", "question_id": true}}', Codes.BAD_FIELD,
     "pars.question_id must be a string, not a boolean", {"user_id": "u"}),
    (line(question="x" * 21, question_id="q1"), Codes.TOO_LONG, "21 characters; the limit is 20",
     {"user_id": "u1", "group_id": "g1", "question_id": "q1"}),
])
def test_every_bad_line_gets_a_code_a_message_and_the_ids_it_could_read(engine, raw, code, msg, data):
    answer = engine.parse(raw)
    assert answer["version"] == VERSION and answer["code"] == code
    assert msg in answer["msg"]
    assert answer["data"] == data


def test_a_good_line_is_parsed_with_a_generated_question_id(engine):
    parsed = engine.parse(line("如果带了呢", user_id="123", group_id="456"))
    assert isinstance(parsed, Parsed)
    assert parsed.ids["user_id"] == "123" and parsed.ids["group_id"] == "456"
    assert len(parsed.ids["question_id"]) == 32 and not parsed.given_question_id
    assert parsed.context_key == ("456", "123") and parsed.session_name == "envelope:456:123"
    assert engine.parse({"version": "1.2", "pars": {"user_id": "u", "question": "q"}}).session_name == "envelope::u"


def test_context_names_escape_separators_so_contexts_never_collide():
    assert session_name("a:b", "c") != session_name("a", "b:c")
    assert session_name("g", "u", group_shared=True) == "envelope:g:*"
    assert session_name("", "u", group_shared=True) == "envelope::u"  # a private chat is never shared
    assert session_name("g", "*") != session_name("g", "u", group_shared=True)


def test_fail_maps_errors_to_codes(engine):
    from oaicli.core.errors import ApiError, InputError, NetworkError, StreamError
    parsed = engine.parse(line())
    cases = [(ApiError(401, "bad key"), Codes.UPSTREAM_AUTH), (ApiError(403, "no"), Codes.UPSTREAM_AUTH),
             (ApiError(400, "too long", code="context_length_exceeded"), Codes.CONTEXT_TOO_LONG),
             (ApiError(400, "bad"), Codes.UPSTREAM_REJECTED), (ApiError(404, "no model"), Codes.UPSTREAM_REJECTED),
             (ApiError(429, "slow down"), Codes.UPSTREAM_FAILED), (ApiError(503, "down"), Codes.UPSTREAM_FAILED),
             (NetworkError("unreachable"), Codes.UPSTREAM_FAILED), (StreamError("dropped"), Codes.UPSTREAM_FAILED),
             (InputError("does not fit"), Codes.CONTEXT_TOO_LONG), (RuntimeError("bug"), Codes.INTERNAL)]
    for error, code in cases:
        answer = engine.fail(parsed, error)
        assert answer["code"] == code, error
        assert answer["data"] == parsed.ids


def test_begin_finish_and_replay_without_io(engine):
    parsed = engine.parse(line("q one", question_id="fixed"))
    pending = engine.begin(parsed)
    assert pending.request_body == {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "q one"}]}
    completion = {"model": "gpt-3.5-turbo-0613", "usage": {"total_tokens": 3},
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "a one"}}]}
    done = engine.finish(pending, completion)
    assert done == {"version": VERSION, "code": 0, "msg": "ok", "data": {
        "user_id": "u1", "group_id": "g1", "question_id": "fixed", "answer": "a one", "model": "gpt-3.5-turbo-0613",
        "usage": {"total_tokens": 3}}}
    assert engine.begin(engine.parse(line("q one", question_id="fixed"))) == done  # replayed, not a Pending
    follow = engine.begin(engine.parse(line("q two")))
    assert [m["content"] for m in follow.request_body["messages"]] == ["q one", "a one", "q two"]


# chat --envelope end to end

def test_answers_in_context_per_user_and_group(fake, invoke):
    out = run(invoke, line("我出门没带钱包 怎么买饭", user_id="123", group_id="456"),
              line("other user", user_id="999", group_id="456"),
              line("如果带了呢", user_id="123", group_id="456"))
    assert [o["code"] for o in out] == [0, 0, 0]
    assert out[0]["data"]["answer"] == "echo: 我出门没带钱包 怎么买饭" and out[0]["data"]["model"] == "gpt-3.5-turbo"
    assert out[0]["data"]["usage"]["total_tokens"] > 0
    assert out[2]["data"]["user_id"] == "123" and out[2]["data"]["group_id"] == "456"
    third = chat_bodies(fake)[2]["messages"]
    assert [m["content"] for m in third] == ["我出门没带钱包 怎么买饭", "echo: 我出门没带钱包 怎么买饭", "如果带了呢"]
    assert chat_bodies(fake)[1]["messages"] == [{"role": "user", "content": "other user"}]


def test_group_shared_gives_a_group_one_context(fake, invoke):
    run(invoke, line("from alice", user_id="alice"), line("from bob", user_id="bob"), args=["--group-shared"])
    assert [m["content"] for m in chat_bodies(fake)[1]["messages"]] == ["from alice", "echo: from alice", "from bob"]
    from oaicli.conversation.store import Store
    from oaicli.conversation.tokens import counter_for
    with Store.open() as store:
        names = {s["name"]: s["kind"] for s in store.list_sessions()}
        turns = store.tail(store.get_session("envelope:g1:*").id, token_budget=None, max_turns=None,
                           counter=counter_for("gpt-3.5-turbo"))
    assert names == {"envelope:g1:*": "envelope"}
    assert [t.user_id for t in turns] == ["alice", "alice", "bob", "bob"]


def test_group_shared_user_turns_say_who_spoke(fake, invoke):
    """Each user message of a shared group context carries its user_id as `name`; others carry none."""
    run(invoke, line("from alice", user_id="alice"), line("from bob", user_id="用户 B"),
        line("private", user_id="carol", group_id=""), args=["--group-shared"])
    from oaicli.conversation.store import speaker_name
    bob = speaker_name("用户 B")
    assert chat_bodies(fake)[0]["messages"] == [{"role": "user", "content": "from alice", "name": "alice"}]
    assert chat_bodies(fake)[1]["messages"] == [{"role": "user", "content": "from alice", "name": "alice"},
                                                {"role": "assistant", "content": "echo: from alice"},
                                                {"role": "user", "content": "from bob", "name": bob}]
    assert chat_bodies(fake)[2]["messages"] == [{"role": "user", "content": "private"}]


def test_speaker_names_keep_valid_ids_and_never_merge_two_users():
    import re

    from oaicli.conversation.store import speaker_name
    assert speaker_name("alice_2-x") == "alice_2-x"
    names = {speaker_name(user) for user in ("用户A", "用户B", "a b", "a:b", "x" * 65, "x" * 66)}
    assert len(names) == 6 and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) for name in names)


def test_a_repeated_question_id_replays_the_stored_answer(fake, invoke):
    out = run(invoke, line("first", question_id="q-1"), line("first", question_id="q-1"), line("next"))
    assert out[1] == out[0]
    assert len(chat_bodies(fake)) == 2  # no second API call for q-1
    assert [m["content"] for m in chat_bodies(fake)[1]["messages"]] == ["first", "echo: first", "next"]


def test_bad_lines_and_api_failures_do_not_stop_the_loop(fake, invoke):
    fake.queue("POST", "/v1/chat/completions", Scripted(400, {"error": {"message": "nope", "type": "invalid"}}))
    fake.queue("POST", "/v1/chat/completions", *[Scripted(500, {"error": {"message": "down"}})] * 3)
    out = run(invoke, "garbage", line("rejected"), "", line(""), line("failed"), line("fine"))
    assert [o["code"] for o in out] == [Codes.NOT_JSON, Codes.UPSTREAM_REJECTED, Codes.BAD_FIELD,
                                        Codes.UPSTREAM_FAILED, 0]
    assert "nope" in out[1]["msg"] and "HTTP 400" in out[1]["msg"]
    assert out[4]["data"]["answer"] == "echo: fine"
    # the failed questions were not stored: the last request carries no earlier turn
    assert chat_bodies(fake)[-1]["messages"] == [{"role": "user", "content": "fine"}]
    assert all(o["version"] == VERSION for o in out)


def test_a_refused_key_is_code_2004(fake, invoke):
    fake.state["valid_keys"] = {"sk-other"}
    out = run(invoke, line("hi"))
    assert out[0]["code"] == Codes.UPSTREAM_AUTH and TEST_KEY not in json.dumps(out)


def test_a_question_that_cannot_fit_is_2003_and_nothing_is_sent(fake, invoke):
    out = run(invoke, line("word " * 300), args=["--context-window", "100"])
    assert out[0]["code"] == Codes.CONTEXT_TOO_LONG
    assert fake.calls("POST") == []


def test_context_length_exceeded_is_retried_once_with_less_history(fake, invoke):
    fake.state["max_context_chars"] = 120
    out = run(invoke, line("a" * 50), line("b" * 50))
    assert [o["code"] for o in out] == [0, 0]
    sent = chat_bodies(fake)
    assert len(sent[1]["messages"]) == 3 and len(sent[2]["messages"]) == 1


def test_stream_writes_delta_lines_before_the_final_line(fake, invoke):
    out = run(invoke, line("one two three", question_id="s1"), args=["--stream"])
    deltas, final = out[:-1], out[-1]
    assert [d["msg"] for d in deltas] == ["delta"] * 4
    assert "".join(d["data"]["delta"] for d in deltas) == final["data"]["answer"] == "echo: one two three"
    assert all(d["data"]["question_id"] == "s1" for d in deltas)
    assert final["msg"] == "ok" and final["data"]["usage"]


def test_a_dropped_stream_is_2002_and_saves_nothing(fake, invoke):
    fake.state["drop_after"] = 2
    out = run(invoke, line("one two three"), args=["--stream"])
    assert out[-1]["code"] == Codes.UPSTREAM_FAILED
    fake.state["drop_after"] = None
    run(invoke, line("again"))
    assert chat_bodies(fake)[-1]["messages"] == [{"role": "user", "content": "again"}]


def test_concurrency_keeps_each_context_in_order(fake, invoke):
    fake.state["answer_delay"] = 0.05
    lines = [line(f"{user} q{i}", user_id=user) for i in range(3) for user in ("a", "b", "c", "d")]
    out = run(invoke, *lines, args=["--concurrency", "4"])
    assert len(out) == 12 and all(o["code"] == 0 for o in out)
    for user in "abcd":
        answers = [o["data"]["answer"] for o in out if o["data"]["user_id"] == user]
        assert answers == [f"echo: {user} q{i}" for i in range(3)]
    for body in chat_bodies(fake):  # each request saw exactly the earlier questions of its own context
        contents = [m["content"] for m in body["messages"]]
        user, index = contents[-1].split(" q")
        assert contents[::2] == [f"{user} q{i}" for i in range(int(index) + 1)]


def test_each_line_is_answered_before_the_input_ends(fake, home):
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "chat", "--envelope"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        process.stdin.write((line("first") + "\n").encode())
        process.stdin.flush()
        first = json.loads(process.stdout.readline())  # stdin is still open
        assert first["data"]["answer"] == "echo: first"
        process.stdin.write((line("second") + "\n").encode())
        process.stdin.close()
        assert json.loads(process.stdout.readline())["data"]["answer"] == "echo: second"
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()


def test_envelope_refuses_a_prompt_and_completions_models(fake, invoke):
    assert invoke("chat", "--envelope", "a prompt", input="").exit_code == 2
    result = invoke("chat", "--envelope", "-m", "text-davinci-003", input="")
    assert result.exit_code == 2 and "completions-only" in result.stderr
    assert invoke("chat", "--concurrency", "3", "hi").exit_code == 2
    assert invoke("chat", "--concurrency", "1", "hi").exit_code == 2  # given, even at its default
    assert invoke("chat", "--group-shared", "hi").exit_code == 2
    assert fake.calls("POST") == []


def test_the_tokenizer_is_loaded_only_when_the_byte_bound_does_not_fit(home, monkeypatch):
    from oaicli.conversation import tokens
    from oaicli.conversation.store import Store
    monkeypatch.setattr(tokens, "_encodings", {})
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok " * 40}}]}
    with Store.open(home / "sessions.db") as store:
        engine = Envelope(store, model="gpt-3.5-turbo", system=None, context_window=400)
        pending = engine.begin(engine.parse(line("short")))
        assert pending.request_body["messages"] == [{"role": "user", "content": "short"}]
        engine.finish(pending, answer)
        follow = engine.begin(engine.parse(line("next")))
        assert [m["content"] for m in follow.request_body["messages"]] == ["short", "ok " * 40, "next"]
        assert tokens._encodings == {}  # question and history fit by their bytes: nothing counted
        engine.finish(follow, answer)
        edge = engine.begin(engine.parse(line("and now?")))  # 2 answers of 120 bytes: over 400 - 100 - 16 by bytes
        assert "cl100k_base" in tokens._encodings  # the exact count decides at the edge
        assert [m["content"] for m in edge.request_body["messages"]] == ["short", "ok " * 40, "next", "ok " * 40,
                                                                         "and now?"]  # ... and keeps all


def test_a_first_question_too_big_for_the_byte_bound_is_counted(home):
    from oaicli.conversation.store import Store
    with Store.open(home / "sessions.db") as store:
        engine = Envelope(store, model="gpt-3.5-turbo", system=None, context_window=100)
        assert engine.begin(engine.parse(line("word " * 30))).request_body["messages"][0]["content"] == "word " * 30
        assert engine.begin(engine.parse(line("word " * 90, user_id="u2")))["code"] == Codes.CONTEXT_TOO_LONG


def test_a_failed_first_question_creates_no_context(fake, invoke):
    fake.queue("POST", "/v1/chat/completions", Scripted(400, {"error": {"message": "nope"}}))
    run(invoke, line("refused"))
    from oaicli.conversation.store import Store
    with Store.open() as store:
        assert store.get_session("envelope:g1:u1") is None


def test_ctrl_c_with_concurrency_stops_at_once_and_saves_nothing_more(fake, home, tmp_path):
    """Queued lines are not started and answers in flight are not saved once ^C arrives."""
    import signal
    fake.state.update(chunk_delay=0.2)
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    lines = "".join(line(f"q{i}", user_id=user) + "\n" for i in range(10) for user in ("a", "b"))
    (tmp_path / "lines").write_text(lines)
    with open(tmp_path / "lines", "rb") as stdin:
        process = subprocess.Popen([sys.executable, "-m", "oaicli", "chat", "--envelope", "--stream",
                                    "--concurrency", "2"], stdin=stdin, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert json.loads(process.stdout.readline())["msg"] == "delta"  # answers have started
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    finals = [json.loads(text) for text in out.decode().splitlines() if '"msg":"delta"' not in text]
    # Without the stop, queued lines were still taken up after ^C and answered with errors
    # (a closed client, a closed store).
    assert len(finals) < 20 and all(final["code"] == Codes.OK for final in finals), finals
    from oaicli.conversation.store import Store
    with Store.open() as store:
        saved = {s["name"]: s["turns"] for s in store.list_sessions()}
    assert sum(saved.values()) <= 2 * len(finals) and all(turns % 2 == 0 for turns in saved.values())
