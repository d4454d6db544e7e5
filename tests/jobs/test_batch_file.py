"""The batch request-file checker (every problem with its line number) and the request-file builders."""

import io
import json

import pytest

from oaicli.jobs import batch_file as bf

CHAT = "/v1/chat/completions"


def line(custom_id="r1", url=CHAT, method="POST", body=None, **extra) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]} if body is None else body
    return json.dumps({"custom_id": custom_id, "method": method, "url": url, "body": body, **extra}).encode() + b"\n"


def check(*lines: bytes, **kwargs) -> bf.Report:
    return bf.validate(io.BytesIO(b"".join(lines)), **kwargs)


def problems(report: bf.Report) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in report.problems]


def test_a_valid_file_passes_and_names_its_endpoint():
    report = check(line("a"), line("b"), line("c"))
    assert report.ok and report.problems == []
    assert (report.endpoint, report.lines) == (CHAT, 3)
    assert report.bytes == len(line("a")) * 3
    assert "3 requests for /v1/chat/completions" in report.summary()


def test_a_duplicate_custom_id_names_both_lines():
    report = check(line("a"), line("b"), line("a"))
    assert problems(report) == [(3, "custom_id 'a' repeats line 1; each must be unique.")]


def test_a_url_that_differs_from_the_batch_endpoint_is_reported_on_its_line():
    report = check(line("a"), line("b", url="/v1/embeddings", body={"model": "m", "input": "x"}))
    assert problems(report) == [(2, "url /v1/embeddings does not match the batch's endpoint /v1/chat/completions; "
                                    "one batch runs one endpoint.")]


def test_the_endpoint_given_wins_over_the_first_line():
    report = check(line("a"), endpoint="/v1/embeddings")
    assert [p.line for p in report.problems] == [1]
    assert "does not match the batch's endpoint /v1/embeddings" in report.problems[0].message


def test_an_unknown_url_on_a_line():
    report = check(line("a", url="/v1/chat"))
    assert report.problems[0].line == 1
    assert report.problems[0].message.startswith("url '/v1/chat' is not an endpoint the Batch API runs")


def test_an_unknown_endpoint_given_is_a_problem_of_the_whole_file():
    report = check(line("a"), endpoint="/v1/audio/speech")
    assert report.problems[0].line is None
    assert "/v1/audio/speech is not an endpoint the Batch API runs" in report.problems[0].message
    assert str(report.problems[0]).startswith("/v1/audio/speech")


def test_a_line_over_the_size_limit_is_skipped_and_the_next_lines_still_checked():
    long = line("big", body={"model": "m", "messages": [{"role": "user", "content": "x" * 500}]})
    report = check(line("a"), long, b"not json\n", line("a"), max_line_bytes=200)
    assert problems(report) == [
        (2, f"the line is {len(long):,} bytes, over the 200-byte limit for one request."),
        (3, "the line is not JSON (Expecting value at column 1)."),
        (4, "custom_id 'a' repeats line 1; each must be unique.")]
    assert report.lines == 4 and report.bytes == len(line("a")) * 2 + len(long) + 9


def test_a_non_json_line_and_a_non_object_line():
    report = check(b'{"custom_id": "a",\n', b"[1, 2]\n", line("ok"))
    assert [(n, m.split(" (")[0]) for n, m in problems(report)] == [
        (1, "the line is not JSON"), (2, "the line is not a JSON object with custom_id, method, url and body.")]


def test_invalid_utf8_and_blank_lines_are_their_own_problems():
    report = check(line("a"), b"\n", b'{"custom_id": "\xff"}\n')
    assert problems(report) == [(2, "the line is blank; every line must be one request."),
                                (3, "the line is not UTF-8 text (byte 16).")]


def test_a_byte_order_mark_on_the_first_line_is_not_a_problem():
    assert check(b"\xef\xbb\xbf" + line("a")).ok


def test_too_many_lines():
    report = check(*(line(f"r{i}") for i in range(5)), max_requests=3)
    assert problems(report) == [(4, "a batch holds at most 3 requests; this file has more.")]


def test_a_file_over_the_size_limit_is_reported_where_it_passes_it():
    one = len(line("r0"))
    report = check(*(line(f"r{i}") for i in range(5)), max_file_bytes=one * 2 + 1)
    assert [p.line for p in report.problems] == [3]
    assert "passes" in report.problems[0].message


def test_method_missing_keys_and_a_body_that_is_not_an_object():
    report = check(line("a", method="GET"), b'{"custom_id": "b", "url": "/v1/chat/completions"}\n',
                   line("c", body=[1]))
    assert problems(report) == [(1, "method is 'GET'; batch requests use POST."),
                                (2, "method is missing."), (2, "body is missing."), (3, "body must be a JSON object.")]


def test_custom_id_must_be_a_non_empty_string():
    report = check(line(""), line(7))
    assert problems(report) == [(1, "custom_id must be a non-empty string."),
                                (2, "custom_id must be a non-empty string.")]


@pytest.mark.parametrize("endpoint, body, missing", [
    ("/v1/chat/completions", {"model": "m"}, "messages"),
    ("/v1/chat/completions", {"messages": []}, "model"),
    ("/v1/embeddings", {"model": "m"}, "input"),
    ("/v1/responses", {"model": "m"}, "input"),
    ("/v1/completions", {"model": "m"}, "prompt"),
    ("/v1/moderations", {"model": "m"}, "input"),
    ("/v1/images/generations", {"model": "m"}, "prompt"),
    ("/v1/images/edits", {"prompt": "p"}, "image or images"),
    ("/v1/videos", {}, "prompt"),
])
def test_each_endpoint_requires_its_body_fields(endpoint, body, missing):
    report = check(line("a", url=endpoint, body=body))
    assert problems(report) == [(1, f"body has no {missing} (required by {endpoint}).")]


def test_every_endpoint_of_the_spec_enum_is_known():
    assert set(bf.ENDPOINTS) == {"/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
                                 "/v1/moderations", "/v1/images/generations", "/v1/images/edits", "/v1/videos"}


def test_a_streaming_request_cannot_be_batched():
    report = check(line("a", body={"model": "m", "messages": [], "stream": True}))
    assert problems(report) == [(1, "body asks for stream; batch requests cannot stream.")]


def test_embedding_inputs_are_counted_over_the_whole_batch():
    many = ["x"] * 30_000
    report = check(line("a", url="/v1/embeddings", body={"model": "m", "input": many}),
                   line("b", url="/v1/embeddings", body={"model": "m", "input": many}))
    assert report.embedding_inputs == 60_000
    assert problems(report) == [(None, "the requests hold 60,000 embedding inputs; "
                                       "an embeddings batch takes at most 50,000.")]


def test_an_empty_file_is_refused():
    assert problems(check()) == [(None, "the batch file holds no requests.")]


def test_problems_are_listed_up_to_the_cap_and_all_counted():
    report = check(*(b"oops\n" for _ in range(45)))
    assert report.problem_count == 45 and len(report.problems) == bf.MAX_REPORTED
    assert [p.line for p in report.problems] == list(range(1, 21))
    assert report.summary().startswith("45 problem(s) in the batch file, nothing was uploaded; first: line 1: ")
    assert report.summary().endswith("(and 25 not listed)")


class LineOnly(io.BytesIO):
    """A stream that fails if the checker tries to read more than a bounded line at once."""

    def __init__(self, data: bytes, limit: int):
        super().__init__(data)
        self.limit = limit
        self.largest = 0

    def read(self, *args):
        raise AssertionError("the checker read the file whole")

    def readline(self, size=-1):
        assert 0 < size <= self.limit + 1, size
        chunk = super().readline(size)
        self.largest = max(self.largest, len(chunk))
        return chunk


def test_the_checker_reads_one_bounded_line_at_a_time():
    huge = b"x" * 5000 + b"\n"
    stream = LineOnly(line("a") + huge + line("b"), limit=1000)
    report = bf.validate(stream, max_line_bytes=1000)
    assert stream.largest <= 1001
    assert [p.line for p in report.problems] == [2]


# ----- builders -----

def test_chat_requests_from_prompts_and_message_arrays_validate_and_keep_order():
    prompts = [b'"First question"\n', b"\n",
               b'[{"role": "system", "content": "S"}, {"role": "user", "content": "Second"}]\n', b'"Third"\n']
    built = list(bf.chat_requests(prompts, "gpt-4o-mini", system="Be brief.", options={"temperature": 0}))
    requests = [json.loads(b) for b in built]
    assert [r["custom_id"] for r in requests] == ["chat-000000", "chat-000001", "chat-000002"]
    assert requests[0]["body"] == {"model": "gpt-4o-mini", "temperature": 0, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "First question"}]}
    assert requests[1]["body"]["messages"][0] == {"role": "system", "content": "S"}  # its own, not --system
    assert check(*built).ok


@pytest.mark.parametrize("bad, message", [
    (b"plain text\n", "line 2: the line is not JSON"),
    (b'""\n', "line 2: expected a non-empty prompt string"),
    (b'[{"content": "no role"}]\n', "line 2: expected a non-empty prompt string"),
    (b'"\xff"\n', "line 2: the line is not UTF-8 text."),
])
def test_a_bad_prompt_line_names_its_number(bad, message):
    with pytest.raises(bf.InputError, match=message) as caught:
        list(bf.chat_requests([b'"ok"\n', bad], "m"))
    assert caught.value.line == 2


def test_embedding_requests_keep_groups_in_order_and_within_the_inputs_limit():
    built = list(bf.embedding_requests([["a", "b"], ["c"]], "text-embedding-3-small", options={"dimensions": 256}))
    requests = [json.loads(b) for b in built]
    assert [(r["custom_id"], r["body"]["input"]) for r in requests] == [("embed-000000", ["a", "b"]),
                                                                        ("embed-000001", ["c"])]
    assert requests[0]["body"]["dimensions"] == 256
    assert check(*built).ok
    with pytest.raises(bf.InputError, match="at most 50,000 inputs"):
        list(bf.embedding_requests([["x"] * 30_000, ["y"] * 30_000], "m"))


def test_custom_ids_encode_order_as_text_and_as_numbers():
    ids = [bf.custom_id("chat", i) for i in (0, 9, 10, 49_999)]
    assert sorted(ids) == ids
    assert [bf.index_of(i) for i in ids] == [0, 9, 10, 49_999]
    assert bf.index_of("my-own-id") is None
