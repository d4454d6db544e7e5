"""Assembling streamed chunks into the response object the API would have sent, and printing deltas."""

import io

from oaicli.api.completions import ChatAssembler, CompletionAssembler
from oaicli.chat.display import Printer


def chunk(choices, **extra):
    return {"id": "c1", "object": "chat.completion.chunk", "created": 5, "model": "m", **extra, "choices": choices}


def test_chat_chunks_fold_into_a_chat_completion():
    assembler = ChatAssembler()
    pieces = [assembler.add(chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}],
                                  system_fingerprint="fp")),
              assembler.add(chunk([{"index": 0, "delta": {"content": "Hel"}, "logprobs": {"content": [{"t": 1}]}}])),
              assembler.add(chunk([{"index": 0, "delta": {"content": "lo"}, "logprobs": {"content": [{"t": 2}]}}])),
              assembler.add(chunk([{"index": 0, "delta": {}, "finish_reason": "length"}])),
              assembler.add(chunk([], usage={"total_tokens": 9}))]
    assert pieces == [[], [(0, "Hel")], [(0, "lo")], [], []]
    assert assembler.result() == {
        "id": "c1", "object": "chat.completion", "created": 5, "model": "m", "system_fingerprint": "fp",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                     "logprobs": {"content": [{"t": 1}, {"t": 2}]}, "finish_reason": "length"}],
        "usage": {"total_tokens": 9}}


def test_tool_call_arguments_arrive_in_pieces():
    assembler = ChatAssembler()
    assembler.add(chunk([{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]))
    assembler.add(chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}]))
    assembler.add(chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":1}'}}]}}]))
    assembler.add(chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    message = assembler.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":1}'}}]}


def test_interleaved_choices_stay_apart():
    assembler = ChatAssembler()
    for index, text in [(0, "a"), (1, "x"), (0, "b"), (1, "y")]:
        assembler.add(chunk([{"index": index, "delta": {"content": text}}]))
    assert [c["message"]["content"] for c in assembler.result()["choices"]] == ["ab", "xy"]
    assert assembler.text(1) == "xy"


def test_a_whole_response_from_a_server_that_ignored_stream_is_kept_as_is():
    whole = {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "all at once"}, "finish_reason": "stop"}]}
    assembler = ChatAssembler()
    assert assembler.add(whole) == [(0, "all at once")]
    assert assembler.result() is whole


def test_completion_chunks_fold_text_and_logprobs():
    assembler = CompletionAssembler()
    for text, offset in [("Hi", 0), (" there", 2)]:
        assembler.add({"id": "t", "object": "text_completion", "created": 1, "model": "m", "choices": [
            {"index": 0, "text": text, "finish_reason": None,
             "logprobs": {"tokens": [text], "token_logprobs": [-1.0], "text_offset": [offset]}}]})
    assembler.add({"id": "t", "object": "text_completion", "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
    assert assembler.result()["choices"] == [{"text": "Hi there", "index": 0, "finish_reason": "stop", "logprobs": {
        "tokens": ["Hi", " there"], "token_logprobs": [-1.0, -1.0], "text_offset": [0, 2]}}]


def test_printer_shows_one_labelled_block_per_choice_and_ends_on_a_new_line():
    out = io.StringIO()
    printer = Printer(out, labelled=True)
    printer([(0, "a"), (1, "x"), (0, "b")])
    printer([(2, "c\n"), (1, "y")])
    printer([(0, "d")])
    assert out.getvalue() == "[0] abd"  # the first choice live, the others held
    printer.finish()
    assert out.getvalue() == "[0] abd\n[1] xy\n[2] c\n"


def test_printer_drops_the_transcript_space_once_per_choice():
    out = io.StringIO()
    printer = Printer(out, strip_leading=True)
    printer([(0, " "), (0, " Hi"), (0, " there")])
    printer.finish()
    assert out.getvalue() == "Hi there\n"
