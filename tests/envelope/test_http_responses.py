"""`oaicli serve --api responses [--context previous|server]`: the envelope answered through the Responses
API by a real serve process (on its event loop, and in worker processes), against the loopback fake's
/responses and /conversations, each (group, user) context mapped to one previous_response_id or
Conversation in the local store."""

import json
import time

import pytest

from tests.conftest import TEST_KEY, run_process
from tests.envelope.test_http import PROCESSES, Served, body, sse_events, stop_all
from tests.fake.server import Scripted
from tests.postgres_server import postgres_dsn  # noqa: F401 (the fixture)

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

NO_RETRIES = {"OAICLI_MAX_RETRIES": "0"}


@pytest.fixture
def serve(home, fake):
    started = []

    def start(*args, env=None) -> Served:
        started.append(Served(home, fake, *args, env=env))
        return started[-1]

    yield start
    stop_all(started)


def posts(fake) -> list[dict]:
    return [call.json() for call in fake.calls("POST", "/v1/responses")]


def texts(items: list[dict]) -> list[str]:
    return [i["content"] if isinstance(i["content"], str) else i["content"][0]["text"] for i in items]


def logged(server: Served, matches) -> bool:
    """Whether serve wrote a matching line on stderr, waiting for the reader thread to have read it."""
    deadline = time.monotonic() + 30
    while not any(matches(line) for line in list(server.log)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def stored(home, name: str) -> dict:
    """A context's stored turns, response ids and Conversation."""
    from oaicli.conversation.store import Store
    with Store.open(home / "sessions.db") as store:
        session = store.get_session(name)
        if session is None:
            return {"turns": [], "response_ids": [], "conversation": None}
        turns = store.export_messages(name)
        ids = [row[0] for row in store.db.execute(
            "SELECT response_id FROM turns WHERE session_id = ? AND role = 'assistant' ORDER BY id", (session.id,))]
        return {"turns": [t["content"] for t in turns], "response_ids": ids,
                "conversation": store.conversation_of(session.id)}


@PROCESSES
def test_answers_through_responses_with_the_system_prompt_as_instructions(procs, serve, fake, home):
    server = serve(*procs, "--api", "responses", "-s", "Be brief.", "--max-tokens", "50", "--temperature", "0.5")
    answer = server.post(body("hello there"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["code"] == 0 and answer.json()["data"]["answer"] == "echo: hello there"
    sent, = posts(fake)
    assert sent["instructions"] == "Be brief." and sent["max_output_tokens"] == 50 and sent["temperature"] == 0.5
    assert sent["input"] == [{"type": "message", "role": "user", "content": "hello there"}]
    assert "max_tokens" not in sent and "messages" not in sent
    assert fake.calls("POST", "/v1/chat/completions") == []
    saved = stored(home, "envelope:g1:u1")
    assert saved["turns"] == ["Be brief.", "hello there", "echo: hello there"]  # the system prompt first
    assert saved["response_ids"] == list(fake.state["responses"])  # the answer's response id is kept
    local = server.post(body("and then?")).json()  # --context local: the history goes with the question
    assert local["code"] == 0
    assert texts(posts(fake)[1]["input"]) == ["hello there", "echo: hello there", "and then?"]


@PROCESSES
def test_streams_the_typed_events_as_delta_lines_then_the_final_object(procs, serve, fake, home):
    server = serve(*procs, "--api", "responses")
    response = server.post(body("one two three four"), headers={"Accept": "text/event-stream"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert [name for name, _ in events] == ["delta"] * 5 + ["final"]  # one per word of "echo: one two three four"
    final = events[-1][1]
    assert final["code"] == 0 and final["data"]["answer"] == "echo: one two three four"
    assert "".join(e["data"]["delta"] for _, e in events[:-1]) == final["data"]["answer"]
    assert posts(fake)[0]["stream"] is True and "stream_options" not in posts(fake)[0]
    assert stored(home, "envelope:g1:u1")["turns"][-1] == "echo: one two three four"


def test_a_dropped_stream_is_resumed_after_its_last_event_not_asked_again(serve, fake, home):
    server = serve("--api", "responses")
    fake.state["responses_drop_after"] = [6]
    response = server.post(body("one two three four five six"), headers={"Accept": "text/event-stream"})
    events = sse_events(response)
    assert events[-1][1]["code"] == 0
    assert "".join(e["data"]["delta"] for name, e in events if name == "delta") == "echo: one two three four five six"
    assert len(posts(fake)) == 1  # not asked (and paid for) twice
    resumed, = fake.calls("GET")
    assert resumed.query == {"stream": "true", "starting_after": "5"}
    assert stored(home, "envelope:g1:u1")["turns"] == ["one two three four five six", "echo: one two three four five six"]


@PROCESSES
def test_previous_context_chains_each_question_on_its_contexts_last_answer(procs, serve, fake, home):
    server = serve(*procs, "--api", "responses", "--context", "previous")
    assert server.post(body("a1", user_id="ann")).json()["code"] == 0
    assert server.post(body("b1", user_id="bob")).json()["code"] == 0
    second = server.post(body("a2", user_id="ann")).json()
    assert second["code"] == 0 and second["data"]["answer"] == "echo: a2"
    first_ann, first_bob, second_ann = posts(fake)
    assert "previous_response_id" not in first_ann and "previous_response_id" not in first_bob
    assert second_ann["previous_response_id"] == stored(home, "envelope:g1:ann")["response_ids"][0]
    assert second_ann["input"] == [{"type": "message", "role": "user", "content": "a2"}]  # only the new question
    assert stored(home, "envelope:g1:ann")["turns"] == ["a1", "echo: a1", "a2", "echo: a2"]
    assert stored(home, "envelope:g1:bob")["turns"] == ["b1", "echo: b1"]


@PROCESSES
def test_server_context_keeps_one_conversation_per_group_and_user(procs, serve, fake, home):
    server = serve(*procs, "--api", "responses", "--context", "server")
    for user, group, question in [("ann", "g1", "a1"), ("bob", "g1", "b1"), ("ann", "g2", "x1"), ("ann", "g1", "a2")]:
        answer = server.post(body(question, user_id=user, group_id=group)).json()
        assert answer["code"] == 0 and answer["data"]["answer"] == f"echo: {question}"
    conversations = [b["conversation"] for b in posts(fake)]
    assert conversations[0] == conversations[3] and len(set(conversations)) == 3
    assert all(len(b["input"]) == 1 for b in posts(fake))  # only the new question is sent
    ann = stored(home, "envelope:g1:ann")
    assert ann["conversation"] == conversations[0] and ann["turns"] == ["a1", "echo: a1", "a2", "echo: a2"]
    assert texts(fake.state["conversations"][conversations[0]]["items"]) == ["a1", "echo: a1", "a2", "echo: a2"]


def test_the_mapping_outlives_the_server_process(serve, fake, home):
    first = serve("--api", "responses", "--context", "server")
    assert first.post(body("a1")).json()["code"] == 0
    first.stop()
    again = serve("--api", "responses", "--context", "server")
    assert again.post(body("a2")).json()["code"] == 0
    one, two = posts(fake)
    assert one["conversation"] == two["conversation"] and len(fake.state["conversations"]) == 1


@PROCESSES
def test_a_server_side_failure_leaves_both_sides_as_they_were(procs, serve, fake, home):
    server = serve(*procs, "--api", "responses", "--context", "server", env=NO_RETRIES)
    fake.state["responses_status"] = (500, "boom")
    failed = server.post(body("q1", question_id="q-1"))
    assert failed.status_code == 502 and failed.json()["code"] == 2002 and "boom" in failed.json()["msg"]
    assert fake.state["conversations"] == {}  # the Conversation made for the question was deleted
    assert stored(home, "envelope:g1:u1")["turns"] == []
    retried = server.post(body("q1", question_id="q-1")).json()
    assert retried["code"] == 0 and retried["data"]["answer"] == "echo: q1"
    (conversation_id, record), = fake.state["conversations"].items()
    assert texts(record["items"]) == ["q1", "echo: q1"]
    assert stored(home, "envelope:g1:u1")["conversation"] == conversation_id


def test_a_failed_conversation_create_answers_an_error_and_saves_nothing(serve, fake, home):
    server = serve("--api", "responses", "--context", "server", env=NO_RETRIES)
    fake.state["conversations_fail_create"] = "cannot create"
    failed = server.post(body("q1"))
    assert failed.status_code == 502 and failed.json()["code"] == 2002
    assert posts(fake) == [] and stored(home, "envelope:g1:u1")["turns"] == []


def test_a_failed_question_with_previous_context_keeps_the_chain(serve, fake, home):
    server = serve("--api", "responses", "--context", "previous", env=NO_RETRIES)
    assert server.post(body("a1")).json()["code"] == 0
    chained_on = stored(home, "envelope:g1:u1")["response_ids"][0]
    fake.state["responses_fail"] = "overloaded"  # the response fails mid-stream on the server
    failed = server.post(body("a2"), headers={"Accept": "text/event-stream"})
    assert sse_events(failed)[-1][1]["code"] == 2002
    del fake.state["responses_fail"]
    assert stored(home, "envelope:g1:u1")["turns"] == ["a1", "echo: a1"]
    assert server.post(body("a3")).json()["code"] == 0
    assert posts(fake)[-1]["previous_response_id"] == chained_on  # not the failed response


@PROCESSES
def test_a_conversation_the_server_lost_is_seeded_again_from_the_local_store(procs, serve, fake, home):
    server = serve(*procs, "--api", "responses", "--context", "server")
    assert server.post(body("a1")).json()["code"] == 0
    gone = posts(fake)[-1]["conversation"]
    fake.state["conversations"].clear()
    answer = server.post(body("a2")).json()
    assert answer["code"] == 0 and answer["data"]["answer"] == "echo: a2"
    (conversation_id, record), = fake.state["conversations"].items()
    assert conversation_id != gone and texts(record["items"]) == ["a1", "echo: a1", "a2", "echo: a2"]
    assert stored(home, "envelope:g1:u1")["conversation"] == conversation_id
    assert logged(server, lambda line: "local store" in line and gone in line)


def test_a_response_the_server_lost_is_replaced_by_the_local_history(serve, fake, home):
    server = serve("--api", "responses", "--context", "previous")
    assert server.post(body("a1")).json()["code"] == 0
    fake.state["responses"].clear()  # stored responses expire after 30 days
    assert server.post(body("a2")).json()["code"] == 0
    retried = posts(fake)[-1]
    assert "previous_response_id" not in retried and texts(retried["input"]) == ["a1", "echo: a1", "a2"]
    assert server.post(body("a3")).json()["code"] == 0  # and the chain goes on from the new answer
    assert posts(fake)[-1]["previous_response_id"] == stored(home, "envelope:g1:u1")["response_ids"][1]


@pytest.mark.parametrize("status, message, http_status, code", [
    (400, "Invalid value for temperature", 502, 2001),
    (401, "Incorrect API key provided", 502, 2004),
    (503, "overloaded", 502, 2002),
    (400, "This model's maximum context length is 16 tokens", 400, 2003),
])
def test_upstream_errors_answer_the_envelope_codes(serve, fake, home, status, message, http_status, code):
    server = serve("--api", "responses", "--context", "server", env=NO_RETRIES)
    fake.state["responses_status"] = (status, message)
    response = server.post(body("q", question_id="q-7"))
    assert response.status_code == http_status
    assert response.json()["code"] == code and response.json()["data"]["question_id"] == "q-7"
    assert TEST_KEY not in response.text
    assert fake.state["conversations"] == {} and stored(home, "envelope:g1:u1")["turns"] == []


def test_auto_falls_back_to_chat_completions_when_the_server_has_no_responses(serve, fake):
    server = serve("--api", "auto")
    fake.queue("POST", "/v1/responses", Scripted(404, {"error": {"message": "Unknown path", "type": "x"}}))
    assert server.post(body("Hi")).json()["data"]["answer"] == "echo: Hi"
    assert server.post(body("again")).json()["data"]["answer"] == "echo: again"
    assert len(fake.calls("POST", "/v1/responses")) == 1 and len(fake.calls("POST", "/v1/chat/completions")) == 2
    assert logged(server, lambda line: "no /responses" in line)


@pytest.mark.parametrize("args, message", [
    (["--context", "server"], "--context server needs --api responses"),
    (["--api", "auto", "--context", "previous"], "--context previous needs --api responses"),
])
def test_server_context_without_the_responses_api_is_refused_at_start(fake, args, message):
    result = run_process("serve", "--port", "0", *args, env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY})
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert fake.calls() == []


def test_chat_envelope_takes_the_previous_context_too(invoke, fake):
    lines = "".join(json.dumps({"version": "1.0.0", "pars": {"user_id": "ann", "question": q}}) + "\n"
                    for q in ("a1", "a2"))
    result = invoke("chat", "--envelope", "--api", "responses", "--context", "previous", input=lines)
    assert [json.loads(line)["code"] for line in result.stdout.splitlines()] == [0, 0]
    first, second = posts(fake)
    assert "previous_response_id" not in first and second["previous_response_id"] == list(fake.state["responses"])[0]
    assert second["input"] == [{"type": "message", "role": "user", "content": "a2"}]


@pytest.mark.parametrize("context, key", [("previous", "previous_response_id"), ("server", "conversation")])
def test_two_instances_on_one_postgresql_store_share_the_server_side_context(home, fake, postgres_dsn, context, key):  # noqa: F811
    from tests.postgres_server import fresh_database
    database = fresh_database(postgres_dsn)
    started = [Served(home, fake, "--api", "responses", "--context", context, env={"OAICLI_STORE": database})
               for _ in range(2)]
    try:
        first, second = started
        assert first.post(body("a1")).json()["code"] == 0
        answer = second.post(body("a2")).json()  # the other instance finds the context's id in PostgreSQL
        assert answer["code"] == 0 and answer["data"]["answer"] == "echo: a2"
    finally:
        stop_all(started)
    one, two = posts(fake)
    expected = list(fake.state["responses"])[0] if context == "previous" else one[key]
    assert two[key] == expected and two["input"] == [{"type": "message", "role": "user", "content": "a2"}]
