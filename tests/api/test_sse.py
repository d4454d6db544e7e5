"""The incremental SSE parser, and the client's handling of streams that end well or badly."""

import json

import httpx
import pytest

from oaicli.api.client import ApiClient
from oaicli.api.sse import SSEParser
from oaicli.core.errors import StreamError
from oaicli.core.settings import Settings

STREAM = (b": keep-alive comment\n"
          b"event: message\n"
          b"id: 7\n"
          b"data: {\"n\": 1}\n"
          b"\n"
          b"data: line one\n"
          b"data: line two\n"
          b"\n"
          b"data: caf\xc3\xa9\n"
          b"\n")
EXPECTED = [("{\"n\": 1}", "message", "7"), ("line one\nline two", None, "7"), ("café", None, "7")]


def parse(chunks) -> list[tuple]:
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)] + parser.close()
    return [(e.data, e.event, e.id) for e in events]


def test_whole_stream_in_one_read():
    assert parse([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_across_two_reads_at_every_byte(cut):
    assert parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_one_byte_at_a_time():
    assert parse([STREAM[i:i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_line_endings(newline):
    stream = STREAM.replace(b"\n", newline)
    assert parse([stream]) == EXPECTED
    assert parse([stream[i:i + 1] for i in range(len(stream))]) == EXPECTED


def test_crlf_split_between_cr_and_lf_is_one_line_end():
    # A CR at the end of a read must wait for the next byte: "\r" + "\n" is one line end, not an empty line.
    assert parse([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [("a\nb", None, None)]


def test_events_arrive_as_soon_as_complete():
    parser = SSEParser()
    assert parser.feed(b"data: first\n") == []
    assert [e.data for e in parser.feed(b"\ndata: sec")] == ["first"]
    assert [e.data for e in parser.feed(b"ond\n\n")] == ["second"]


def test_comments_and_unknown_fields_are_ignored():
    assert parse([b":ping\n\nretry: 100\nfoo: bar\ndata: x\n\n:bye\n\n"]) == [("x", None, None)]


def test_data_without_space_and_field_without_colon():
    assert parse([b"data:tight\n\ndata\n\n"]) == [("tight", None, None), ("", None, None)]


def test_last_event_without_blank_line_counts_at_close():
    assert parse([b"data: [DONE]"]) == [("[DONE]", None, None)]


def test_event_name_resets_after_dispatch_but_id_persists():
    events = parse([b"event: a\nid: 1\ndata: x\n\ndata: y\n\n"])
    assert events == [("x", "a", "1"), ("y", None, "1")]


# The client on top of the parser.

def client_for(handler) -> ApiClient:
    settings = Settings({"api_key": "sk-test-sse-0123456789", "base_url": "http://fake.test/v1",
                         "max_retries": 0}, environ={})
    return ApiClient(settings, transport=httpx.MockTransport(handler), sleep=lambda s: None)


def sse_answer(body: bytes):
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return handler


def test_client_yields_events_and_stops_at_done():
    body = b"".join(f"data: {json.dumps({'i': i})}\n\n".encode() for i in range(3)) + b"data: [DONE]\n\n"
    events = list(client_for(sse_answer(body + b"data: {\"after\": 1}\n\n")).stream_events("/x", {}))
    assert events == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_client_missing_done_is_an_error_after_the_events():
    received = []
    with pytest.raises(StreamError, match=r"\[DONE\] missing"):
        for event in client_for(sse_answer(b"data: {\"i\": 0}\n\ndata: {\"i\": 1}\n\n")).stream_events("/x", {}):
            received.append(event)
    assert received == [{"i": 0}, {"i": 1}]


def test_client_done_without_final_blank_line_is_fine():
    assert list(client_for(sse_answer(b"data: {\"i\": 0}\r\n\r\ndata: [DONE]")).stream_events("/x", {})) == [{"i": 0}]


def test_client_empty_data_is_a_keep_alive():
    body = b"data:\n\n: ping\n\ndata: {\"i\": 0}\n\ndata: [DONE]\n\n"
    assert list(client_for(sse_answer(body)).stream_events("/x", {})) == [{"i": 0}]


def test_client_error_event_mid_stream():
    body = b"data: {\"i\": 0}\n\ndata: {\"error\": {\"message\": \"overloaded\", \"type\": \"server_error\"}}\n\n"
    with pytest.raises(StreamError, match="overloaded"):
        list(client_for(sse_answer(body)).stream_events("/x", {}))


def test_client_event_that_is_not_json():
    with pytest.raises(StreamError, match="not JSON"):
        list(client_for(sse_answer(b"data: {broken\n\n")).stream_events("/x", {}))


def test_client_server_that_ignores_stream_yields_the_document():
    def handler(request):
        return httpx.Response(200, json={"whole": True})
    assert list(client_for(handler).stream_events("/x", {"stream": True})) == [{"whole": True}]
