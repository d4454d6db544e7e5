"""The Responses API engine: request bodies, the streamed-event interpreter (with resuming) and reading answers."""

import json

import httpx
import pytest

from oaicli.api import responses as r
from oaicli.api.sse import SSEParser
from tests.fake.server import FakeOpenAI

KEY = {"Authorization": "Bearer sk-test-responses"}


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


# ----- request bodies -----

def test_system_prompt_becomes_instructions_and_history_becomes_input_items():
    body = r.request_body("gpt-5", [{"role": "system", "content": "Be brief."},
                                    {"role": "system", "content": "Answer in French."},
                                    {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Salut"},
                                    {"role": "user", "content": "Why?"}])
    assert body == {"model": "gpt-5", "instructions": "Be brief.\n\nAnswer in French.", "input": [
        {"type": "message", "role": "user", "content": "Hi"},
        {"type": "message", "role": "assistant", "content": "Salut"},
        {"type": "message", "role": "user", "content": "Why?"}]}


def test_every_option_lands_where_the_spec_puts_it():
    body = r.request_body("o4-mini", [{"role": "user", "content": "Q"}], max_output_tokens=500,
                          reasoning_effort="high", reasoning_summary="auto", store=False, service_tier="flex",
                          previous_response_id="resp_1", background=True, stream=True)
    assert body["max_output_tokens"] == 500
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert (body["store"], body["service_tier"], body["previous_response_id"]) == (False, "flex", "resp_1")
    assert body["background"] is True and body["stream"] is True
    assert "instructions" not in body and "text" not in body and "conversation" not in body


def test_conversation_id_is_sent_as_is():
    body = r.request_body("gpt-5", [{"role": "user", "content": "Q"}], conversation="conv_123")
    assert body["conversation"] == "conv_123"


def test_json_object_and_json_schema_formats():
    json_object = r.request_body("m", [{"role": "user", "content": "Q"}], response_format="json_object")
    assert json_object["text"] == {"format": {"type": "json_object"}}
    schema = {"title": "Weather report!", "type": "object", "properties": {"t": {"type": "number"}}}
    structured = r.request_body("m", [{"role": "user", "content": "Q"}], schema=schema, strict=True)
    assert structured["text"] == {"format": {"type": "json_schema", "name": "Weather_report_", "schema": schema,
                                             "strict": True}}
    assert "text" not in r.request_body("m", [{"role": "user", "content": "Q"}], response_format="text")


@pytest.mark.parametrize("kwargs, message", [
    ({"response_format": "json_schema"}, "needs a schema"),
    ({"response_format": "json_object", "schema": {"type": "object"}}, "needs the json_schema format"),
    ({"response_format": "yaml"}, "is not one of"),
    ({"reasoning_effort": "extreme"}, "reasoning effort"),
    ({"previous_response_id": "resp_1", "conversation": "conv_1"}, "cannot be used together"),
])
def test_contradictory_options_are_refused_before_any_request(kwargs, message):
    with pytest.raises(ValueError, match=message):
        r.request_body("m", [{"role": "user", "content": "Q"}], **kwargs)


def test_a_tool_message_has_no_input_form():
    with pytest.raises(ValueError, match="role 'tool'"):
        r.request_body("m", [{"role": "tool", "content": "42"}])


# ----- the stream interpreter, on recorded event sequences -----

def recorded(*events):
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


RESPONSE = {"id": "resp_9", "object": "response", "status": "in_progress", "store": True, "output": [], "usage": None}
FINAL = {**RESPONSE, "status": "completed", "output": [
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking."}]},
    {"type": "message", "id": "msg_1", "role": "assistant", "content": [
        {"type": "output_text", "text": "Hello world", "annotations": []}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup", "arguments": '{"q":1}'}],
    "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
              "output_tokens": 90, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 102}}
SEQUENCE = recorded(
    {"type": "response.created", "response": RESPONSE},
    {"type": "response.in_progress", "response": RESPONSE},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "delta": "Thinking."},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "delta": "Hello", "logprobs": []},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "delta": " world", "logprobs": []},
    {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "text": "Hello world", "logprobs": []},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '{"q"'},
    {"type": "response.output_item.done", "output_index": 2, "item": FINAL["output"][2]},
    {"type": "response.completed", "response": FINAL})


def feed_all(stream, events):
    return [happening for event in events for happening in stream.feed(event)]


def test_a_recorded_stream_becomes_typed_happenings_in_order():
    stream = r.ResponseStream()
    happenings = feed_all(stream, SEQUENCE)
    assert [type(h).__name__ for h in happenings] == ["StatusChanged", "StatusChanged", "ReasoningDelta",
                                                     "TextDelta", "TextDelta", "ToolCall", "Completed"]
    assert happenings[2].text == "Thinking." and happenings[3].output_index == 1
    assert happenings[5] == r.ToolCall("call_1", "lookup", '{"q":1}')
    assert happenings[6].usage == r.Usage(input_tokens=12, output_tokens=90, reasoning_tokens=64, cached_tokens=4,
                                          total_tokens=102)
    assert stream.text == "Hello world"
    assert stream.finished and stream.resume_params() is None and stream.last_sequence == 8


def test_a_dropped_stream_resumes_after_the_last_event_seen_and_replays_print_nothing_twice():
    stream = r.ResponseStream()
    feed_all(stream, SEQUENCE[:4])
    assert stream.response_id == "resp_9"
    assert stream.resume_path() == "/responses/resp_9"
    assert stream.resume_params() == {"stream": "true", "starting_after": 3}
    # A server that replays from an earlier point: the events already handled are skipped.
    happenings = feed_all(stream, SEQUENCE[2:])
    assert [type(h).__name__ for h in happenings] == ["TextDelta", "ToolCall", "Completed"]
    assert stream.text == "Hello world"


def test_an_unstored_response_cannot_be_resumed():
    stream = r.ResponseStream()
    feed_all(stream, recorded({"type": "response.created", "response": {**RESPONSE, "store": False}},
                              {"type": "response.output_text.delta", "delta": "Hi", "output_index": 0}))
    assert stream.resume_params() is None


def test_no_resume_before_the_response_id_is_known():
    assert r.ResponseStream().resume_params() is None


def test_failed_error_and_incomplete_end_the_stream_with_their_reason():
    failed = {**RESPONSE, "status": "failed", "error": {"code": "server_error", "message": "The model broke."}}
    stream = r.ResponseStream()
    last = feed_all(stream, recorded({"type": "response.created", "response": RESPONSE},
                                     {"type": "response.failed", "response": failed}))[-1]
    assert last == r.Failed(failed, "server_error", "The model broke.") and stream.finished

    stream = r.ResponseStream()
    last = feed_all(stream, recorded({"type": "response.created", "response": RESPONSE},
                                     {"type": "error", "code": "rate_limit_exceeded", "message": "Slow down",
                                      "param": None}))[-1]
    assert last == r.StreamError("rate_limit_exceeded", "Slow down", None)
    assert stream.resume_params() is None

    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    last = r.ResponseStream().feed({"type": "response.incomplete", "response": incomplete, "sequence_number": 5})
    assert last == [r.Incomplete(incomplete, "max_output_tokens")]


def test_the_sse_event_name_stands_in_for_a_missing_type():
    assert r.ResponseStream().feed({"delta": "x", "sequence_number": 1}, "response.output_text.delta") == \
        [r.TextDelta("x", 0)]


def test_unknown_event_types_are_ignored_but_still_count_for_resuming():
    stream = r.ResponseStream()
    stream.feed({"type": "response.created", "response": RESPONSE, "sequence_number": 0})
    assert stream.feed({"type": "response.web_search_call.searching", "sequence_number": 1}) == []
    assert stream.resume_params() == {"stream": "true", "starting_after": 1}


# ----- a final response object -----

def test_text_tool_calls_usage_and_summary_of_a_final_response():
    assert r.output_text(FINAL) == "Hello world"
    assert r.tool_calls(FINAL) == [r.ToolCall("call_1", "lookup", '{"q":1}')]
    assert r.usage_of(FINAL).reasoning_tokens == 64
    assert r.reasoning_summary(FINAL) == "Thinking."
    assert r.refusal(FINAL) is None
    refused = {"output": [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't."}]}]}
    assert r.refusal(refused) == "I can't." and r.output_text(refused) == ""
    assert r.usage_of({"usage": None}) == r.Usage()


# ----- against the loopback fake -----

def sse_events(content: bytes) -> list[tuple[str, dict]]:
    parser = SSEParser()
    return [(e.event, json.loads(e.data)) for e in parser.feed(content) + parser.close()]


def post(server, body):
    return httpx.post(server.url + "/responses", json=body, headers=KEY, timeout=10)


def test_a_stream_dropped_by_the_server_resumes_where_it_stopped(server):
    server.state["responses_drop_after"] = [6]
    stream, shown = r.ResponseStream(), []
    body = {"model": "gpt-5", "input": [{"role": "user", "content": "one two three four five"}], "stream": True}
    for name, event in sse_events(post(server, body).content):
        shown += stream.feed(event, name)
    assert not stream.finished
    params = stream.resume_params()
    assert params == {"stream": "true", "starting_after": 5}
    resumed = httpx.get(server.url + stream.resume_path(), params=params, headers=KEY, timeout=10)
    for name, event in sse_events(resumed.content):
        shown += stream.feed(event, name)
    assert stream.finished and isinstance(stream.outcome, r.Completed)
    text = "".join(h.text for h in shown if isinstance(h, r.TextDelta))
    assert text == stream.text == "echo: one two three four five" == r.output_text(stream.outcome.response)
    assert server.calls("GET")[-1].query == {"stream": "true", "starting_after": "5"}


def test_reasoning_summaries_and_usage_arrive_from_the_fake(server):
    stream = r.ResponseStream()
    body = {"model": "o4-mini", "input": "Hi", "stream": True, "reasoning": {"summary": "auto"}}
    shown = [h for name, event in sse_events(post(server, body).content) for h in stream.feed(event, name)]
    summary = "".join(h.text for h in shown if isinstance(h, r.ReasoningDelta))
    assert summary == "Thinking about the question (auto summary)."
    assert stream.outcome.usage.reasoning_tokens == 64


def test_a_function_call_is_reported_not_run(server):
    server.state["responses_tool_call"] = ("get_weather", '{"city": "Paris", "unit": "c"}')
    stream = r.ResponseStream()
    body = {"model": "m", "input": "Weather?", "stream": True}
    calls = [h for name, event in sse_events(post(server, body).content) for h in stream.feed(event, name)
             if isinstance(h, r.ToolCall)]
    assert calls == r.tool_calls(stream.outcome.response)
    assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris", "unit": "c"}


@pytest.mark.parametrize("knob, value, outcome", [
    ("responses_fail", "The model broke.", r.Failed),
    ("responses_error", ("server_error", "Stream lost"), r.StreamError),
])
def test_failures_from_the_fake_end_the_stream(server, knob, value, outcome):
    server.state[knob] = value
    stream = r.ResponseStream()
    for name, event in sse_events(post(server, {"model": "m", "input": "a b c d", "stream": True}).content):
        stream.feed(event, name)
    assert isinstance(stream.outcome, outcome)
    assert stream.text == "echo: a "  # half the words, then the failure


def test_a_short_token_limit_ends_incomplete(server):
    stream = r.ResponseStream()
    body = {"model": "m", "input": "a b c d e", "stream": True, "max_output_tokens": 2}
    for name, event in sse_events(post(server, body).content):
        stream.feed(event, name)
    assert isinstance(stream.outcome, r.Incomplete) and stream.outcome.reason == "max_output_tokens"


def test_a_background_response_goes_queued_in_progress_completed(server):
    created = post(server, {"model": "m", "input": "Hi", "background": True}).json()
    assert created["status"] == "queued"
    seen = [httpx.get(f"{server.url}/responses/{created['id']}", headers=KEY).json() for _ in range(3)]
    assert [s["status"] for s in seen] == ["in_progress", "completed", "completed"]
    assert r.output_text(seen[-1]) == "echo: Hi"


def test_a_background_response_can_be_cancelled_and_a_foreground_one_cannot(server):
    background = post(server, {"model": "m", "input": "Hi", "background": True}).json()
    cancelled = httpx.post(f"{server.url}/responses/{background['id']}/cancel", headers=KEY)
    assert cancelled.json()["status"] == "cancelled"
    assert httpx.get(f"{server.url}/responses/{background['id']}", headers=KEY).json()["status"] == "cancelled"
    foreground = post(server, {"model": "m", "input": "Hi"}).json()
    refused = httpx.post(f"{server.url}/responses/{foreground['id']}/cancel", headers=KEY)
    assert refused.status_code == 400 and "background" in refused.json()["error"]["message"]


def test_the_built_body_is_what_the_fake_answers(server):
    body = r.request_body("gpt-5", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    answer = post(server, body).json()
    assert answer["instructions"] == "Be brief." and r.output_text(answer) == "echo: Hi"
