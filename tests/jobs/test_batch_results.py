"""Merging a batch's output and error files in the input's order, by streaming, and counting by status."""

import io
import json
import random
import time
import tracemalloc

import httpx
import pytest

from oaicli.jobs import batch_file as bf
from oaicli.jobs import batch_results as br
from tests.fake import batches as fake_batches
from tests.fake.server import FakeOpenAI

KEY = {"Authorization": "Bearer sk-test-batches"}


def input_file(ids) -> bytes:
    return b"".join(bf.request_line(i, "/v1/chat/completions", {"model": "m", "messages": [
        {"role": "user", "content": f"question {i}"}]}) for i in ids)


def ok_line(custom_id: str, content: str = "answer", **spacing) -> bytes:
    return json.dumps({"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": {
        "status_code": 200, "request_id": "req_1", "body": {"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}}]}}, "error": None},
        **spacing).encode() + b"\n"


def failed_line(custom_id: str) -> bytes:
    return json.dumps({"id": "batch_req_x", "custom_id": custom_id, "response": {
        "status_code": 400, "request_id": "req_2", "body": {"error": {"message": "Bad request", "code": "bad"}}},
        "error": None}).encode() + b"\n"


def expired_line(custom_id: str) -> bytes:
    return json.dumps({"id": "batch_req_y", "custom_id": custom_id, "response": None,
                       "error": {"code": "batch_expired", "message": "This request could not be executed"}}
                      ).encode() + b"\n"


def merged(inputs: bytes, outputs: bytes | None, errors: bytes | None = None):
    sink = io.BytesIO()
    summary = br.merge(io.BytesIO(inputs), io.BytesIO(outputs) if outputs is not None else None,
                       io.BytesIO(errors) if errors is not None else None, sink)
    return [json.loads(line) for line in sink.getvalue().splitlines()], summary


def test_results_follow_the_input_order_whatever_the_output_order():
    ids = [f"req-{i}" for i in range(6)]
    outputs = b"".join(ok_line(i, f"answer to {i}") for i in reversed(ids) if i not in ("req-1", "req-4"))
    errors = failed_line("req-1")
    results, summary = merged(input_file(ids), outputs, errors)
    assert [r["custom_id"] for r in results] == ids
    assert [r["status"] for r in results] == ["completed", "failed", "completed", "completed", "missing",
                                              "completed"]
    assert results[0]["response"]["choices"][0]["message"]["content"] == "answer to req-0"
    assert results[1] == {"custom_id": "req-1", "status": "failed", "status_code": 400,
                          "error": {"message": "Bad request", "code": "bad"}}
    assert results[4]["error"]["code"] == "missing"
    assert summary.counts == {"completed": 4, "failed": 1, "missing": 1}
    assert summary.rows() == [{"status": "completed", "requests": 4}, {"status": "failed", "requests": 1},
                              {"status": "missing", "requests": 1}, {"status": "total", "requests": 6}]


def test_an_error_object_without_a_response_is_a_failure():
    results, _ = merged(input_file(["a"]), None, expired_line("a"))
    assert results == [{"custom_id": "a", "status": "failed",
                        "error": {"code": "batch_expired", "message": "This request could not be executed"}}]


def test_a_2xx_answer_with_an_error_and_a_non_2xx_in_the_output_file_both_fail():
    odd = json.loads(ok_line("a"))
    odd["error"] = {"code": "x", "message": "late failure"}
    results, _ = merged(input_file(["a", "b"]), json.dumps(odd).encode() + b"\n" + failed_line("b"))
    assert [(r["status"], r["error"]["message"]) for r in results] == [("failed", "late failure"),
                                                                      ("failed", "Bad request")]


def test_results_for_requests_the_input_lacks_are_written_last_not_lost():
    results, summary = merged(input_file(["a"]), ok_line("zz") + ok_line("a"))
    assert [r["custom_id"] for r in results] == ["a", "zz"]
    assert summary.not_in_input == 1 and summary.total == 2


def test_the_answer_body_is_kept_exactly_whatever_the_server_spacing():
    compact = ok_line("a", "naïve \"quoted\" \\ text", separators=(",", ":"), ensure_ascii=False)
    spaced = ok_line("b", "x\u2028y", indent=None)
    results, _ = merged(input_file(["a", "b"]), spaced + compact)
    assert results[0]["response"] == json.loads(compact)["response"]["body"]
    assert results[1]["response"] == json.loads(spaced)["response"]["body"]


@pytest.mark.parametrize("custom_id", ['with "quotes"', "back\\slash", "ünïcode", "a/b", "trailing\\"])
def test_custom_ids_with_escapes_are_matched(custom_id):
    results, _ = merged(input_file([custom_id]), ok_line(custom_id))
    assert results[0]["custom_id"] == custom_id and results[0]["status"] == "completed"


def test_a_line_in_another_key_order_is_read_by_parsing_it():
    # The body comes first and holds a key named custom_id: the fast pattern must not trust it.
    line = {"response": {"status_code": 200, "body": {"custom_id": "decoy", "value": 1}},
            "custom_id": "real", "error": None}
    results, _ = merged(input_file(["real"]), json.dumps(line).encode() + b"\n")
    assert results == [{"custom_id": "real", "status": "completed", "response": {"custom_id": "decoy", "value": 1}}]


@pytest.mark.parametrize("line", [
    b'{"\\"custom_id": "decoy", "custom_id": "real", "response": {"status_code": 200, "body": {"v": 1}}}',
    b'{"id": "a, \\"custom_id\\": \\"decoy\\"", "custom_id": "real", "response": {"status_code": 200, "body": {"v": 1}}}',
    b'{"id": "x{", "custom_id": "real", "response": {"status_code": 200, "body": {"v": 1}}}',
    b'\xef\xbb\xbf{"custom_id": "real", "response": {"status_code": 200, "body": {"v": 1}}}',
])
def test_the_custom_id_is_the_top_level_key_whatever_the_strings_before_it_hold(line):
    # A key named '"custom_id' (with a quote) or the words inside another string are not the custom_id.
    assert br.custom_id_of(line) == "real"
    results, _ = merged(input_file(["real"]), line + b"\n")
    assert results == [{"custom_id": "real", "status": "completed", "response": {"v": 1}}]


def test_a_response_with_keys_after_its_body_keeps_just_the_body():
    line = {"custom_id": "a", "response": {"status_code": 200, "body": {"v": [1, 2]}, "request_id": "r"},
            "error": None}
    results, _ = merged(input_file(["a"]), json.dumps(line).encode() + b"\n")
    assert results == [{"custom_id": "a", "status": "completed", "response": {"v": [1, 2]}}]


def test_blank_lines_and_the_first_copy_of_a_repeated_answer():
    results, _ = merged(b"\n" + input_file(["a"]) + b"\n", ok_line("a", "first") + b"\n" + ok_line("a", "second"))
    assert len(results) == 1
    assert results[0]["response"]["choices"][0]["message"]["content"] == "first"


def test_summarize_reads_back_the_counts_of_a_merged_file():
    sink = io.BytesIO()
    summary = br.merge(io.BytesIO(input_file(["a", "b", "c"])), io.BytesIO(ok_line("a")),
                       io.BytesIO(failed_line("b")), sink)
    assert br.summarize(io.BytesIO(sink.getvalue())).counts == summary.counts == {"completed": 1, "failed": 1,
                                                                                   "missing": 1}


def test_the_index_holds_offsets_not_bodies():
    outputs = ok_line("a", "x" * 5000) + ok_line("b", "y" * 5000)
    index: dict = {}
    br.index_lines(io.BytesIO(outputs), 0, index)
    assert index == {"a": (0, 0, len(ok_line("a", "x" * 5000))),
                     "b": (0, len(ok_line("a", "x" * 5000)), len(ok_line("b", "y" * 5000)))}


def test_a_download_indexed_in_chunks_of_any_size_gives_the_file_s_index():
    # Downloads arrive in chunks that cut lines anywhere; the last line may lack its newline.
    outputs = ok_line("a", "x" * 300) + b"\n" + failed_line("b") + ok_line("c").rstrip(b"\n")
    whole: dict = {}
    br.index_lines(io.BytesIO(outputs), 0, whole)
    assert sorted(whole) == ["a", "b", "c"] and whole["c"][1] + whole["c"][2] == len(outputs)
    for size in (1, 7, 64, len(outputs)):
        index: dict = {}
        copy = io.BytesIO()
        indexer = br.LineIndexer(index, 0, copy_to=copy)
        for start in range(0, len(outputs), size):
            indexer.write(outputs[start:start + size])
        indexer.finish()
        assert index == whole and copy.getvalue() == outputs
        results = br.merge_indexed(io.BytesIO(input_file(["c", "b", "a"])), [copy, None], index, io.BytesIO())
        assert results.counts == {"completed": 2, "failed": 1}


def test_a_line_spanning_many_chunks_is_joined_once_not_copied_at_each_chunk():
    long_line = ok_line("big", "w" * 200_000)
    index: dict = {}
    indexer = br.LineIndexer(index, 0)
    body = long_line.rstrip(b"\n")
    pieces = [body[start:start + 1000] for start in range(0, len(body), 1000)]
    for number, piece in enumerate(pieces):  # 200 chunks, none with a newline
        indexer.write(piece)
        assert len(indexer.rest) == number + 1 and indexer.rest[-1] is piece  # kept as they came, not re-joined
    indexer.write(b"\n")
    indexer.write(ok_line("next"))
    indexer.finish()
    assert index == {"big": (0, 0, len(long_line)), "next": (0, len(long_line), len(ok_line("next")))}


def test_the_error_file_lines_and_a_duplicate_in_both_files():
    # The output file's copy of a custom_id wins over the error file's; error-file-only ids fail.
    outputs = ok_line("a", "kept")
    errors = failed_line("a") + expired_line("b") + failed_line("c")
    results, summary = merged(input_file(["c", "b", "a"]), outputs, errors)
    assert [(r["custom_id"], r["status"]) for r in results] == [("c", "failed"), ("b", "failed"), ("a", "completed")]
    assert results[0]["status_code"] == 400 and results[1]["error"]["code"] == "batch_expired"
    assert results[2]["response"]["choices"][0]["message"]["content"] == "kept"
    assert summary.not_in_input == 0


def test_a_custom_id_twice_in_the_input_gets_its_result_twice_not_missing():
    results, summary = merged(input_file(["a", "b", "a"]), ok_line("a") + ok_line("b"))
    assert [(r["custom_id"], r["status"]) for r in results] == [("a", "completed"), ("b", "completed"),
                                                                ("a", "completed")]
    assert results[0] == results[2] and summary.not_in_input == 0


def test_a_result_line_that_is_not_json_fails_its_request_and_the_merge_goes_on():
    broken = b'{"custom_id": "b", "response": {"status_code": 200, "body": {"x": }}, "error": null}\n'
    results, summary = merged(input_file(["a", "b", "c"]), ok_line("a") + broken + ok_line("c"))
    assert [(r["custom_id"], r["status"]) for r in results] == [("a", "completed"), ("b", "failed"),
                                                                ("c", "completed")]
    assert results[1]["error"]["code"] == "unreadable_result"
    assert summary.counts == {"completed": 2, "failed": 1}


def test_a_body_with_an_integer_beyond_64_bits_is_kept_exactly():
    # orjson refuses such integers; the merge falls back to json instead of failing the request.
    line = {"custom_id": "a", "response": {"status_code": 200, "body": {"n": 2 ** 70}, "request_id": "r"},
            "error": None}
    results, _ = merged(input_file(["a"]), json.dumps(line).encode() + b"\n")
    assert results == [{"custom_id": "a", "status": "completed", "response": {"n": 2 ** 70}}]


def test_result_lines_go_out_in_pieces_of_whole_lines():
    writes = []

    class Sink:
        def write(self, data):
            writes.append(bytes(data))

    ids = [f"r{i}" for i in range(400)]
    br.merge(io.BytesIO(input_file(ids)), io.BytesIO(b"".join(ok_line(i, "z" * 2000) for i in ids)), None, Sink())
    assert 1 < len(writes) < 10  # 800 KB in 256 KiB pieces, not 400 writes
    assert all(piece.endswith(b"\n") for piece in writes)
    assert [json.loads(line)["custom_id"] for line in b"".join(writes).splitlines()] == ids


@pytest.mark.parametrize("has_pread", [True, False])
def test_files_on_disk_are_read_back_by_offset_with_or_without_pread(tmp_path, monkeypatch, has_pread):
    if not has_pread:  # as on Windows
        monkeypatch.delattr(br.os, "pread")
    ids = [f"r{i}" for i in range(6)]
    (tmp_path / "out.jsonl").write_bytes(b"".join(ok_line(i, f"answer {i}") for i in reversed(ids[:5])))
    with (tmp_path / "out.jsonl").open("rb") as outputs:
        sink = io.BytesIO()
        summary = br.merge(io.BytesIO(input_file(ids)), outputs, None, sink)
    results = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [r["custom_id"] for r in results] == ids
    assert [r["response"]["choices"][0]["message"]["content"] for r in results[:5]] == [f"answer {i}" for i in ids[:5]]
    assert summary.counts == {"completed": 5, "missing": 1}


def test_memory_stays_flat_while_merging_a_large_output(tmp_path):
    # 1,000 answers of 20 KB (20 MB): a merge that held bodies would peak near that; one line at a
    # time plus the offsets index stays around a megabyte.
    ids = [bf.custom_id("chat", i) for i in range(1000)]
    order = ids[:]
    random.Random(3).shuffle(order)
    (tmp_path / "in.jsonl").write_bytes(input_file(ids))
    with (tmp_path / "out.jsonl").open("wb") as sink:
        for custom_id in order:
            sink.write(ok_line(custom_id, custom_id * 1800))
    with (tmp_path / "in.jsonl").open("rb") as inputs, (tmp_path / "out.jsonl").open("rb") as outputs, \
            (tmp_path / "merged.jsonl").open("wb") as sink:
        tracemalloc.start()
        summary = br.merge(inputs, outputs, None, sink)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert summary.counts == {"completed": 1000}
    assert peak < 2 * 1024 * 1024, peak
    with (tmp_path / "merged.jsonl").open("rb") as merged_file:
        assert [json.loads(line)["custom_id"] for line in merged_file] == ids


# ----- the whole path against the loopback fake -----

@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def upload(server, content: bytes) -> str:
    answer = httpx.post(server.url + "/files", files={"file": ("batch.jsonl", content)}, data={"purpose": "batch"},
                        headers=KEY)
    return answer.json()["id"]


def run_batch(server, content: bytes, endpoint: str = "/v1/chat/completions") -> list[dict]:
    batch = httpx.post(server.url + "/batches", headers=KEY, json={
        "input_file_id": upload(server, content), "endpoint": endpoint, "completion_window": "24h"}).json()
    seen = [batch["status"]]
    while batch["status"] not in ("completed", "failed", "cancelled"):
        batch = httpx.get(f"{server.url}/batches/{batch['id']}", headers=KEY).json()
        seen.append(batch["status"])
    return seen, batch


def content(server, file_id: str | None) -> io.BytesIO | None:
    if file_id is None:
        return None
    return io.BytesIO(httpx.get(f"{server.url}/files/{file_id}/content", headers=KEY).content)


def test_a_batch_built_from_prompts_runs_on_the_fake_and_merges_in_prompt_order(server):
    server.state["batch_fail_ids"] = ["chat-000002"]
    prompts = [json.dumps(f"question {i}").encode() + b"\n" for i in range(6)]
    requests = b"".join(bf.chat_requests(prompts, "gpt-4o-mini"))
    assert bf.validate(io.BytesIO(requests)).ok
    statuses, batch = run_batch(server, requests)
    assert statuses == ["validating", "in_progress", "in_progress", "finalizing", "completed"]
    assert batch["request_counts"] == {"total": 6, "completed": 5, "failed": 1}
    outputs = content(server, batch["output_file_id"])
    assert json.loads(outputs.getvalue().splitlines()[0])["custom_id"] == "chat-000005"  # the fake reverses
    sink = io.BytesIO()
    summary = br.merge(io.BytesIO(requests), outputs, content(server, batch["error_file_id"]), sink)
    results = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [r["custom_id"] for r in results] == [bf.custom_id("chat", i) for i in range(6)]
    assert [r["response"]["choices"][0]["message"]["content"] for r in results if r["status"] == "completed"] == \
        [f"echo: question {i}" for i in (0, 1, 3, 4, 5)]
    assert results[2]["status"] == "failed" and results[2]["status_code"] == 400
    assert summary.counts == {"completed": 5, "failed": 1}


def test_embedding_batches_give_vectors_back_in_input_order(server):
    texts = [f"text number {i}" for i in range(7)]
    groups = [texts[0:3], texts[3:6], texts[6:7]]
    requests = b"".join(bf.embedding_requests(groups, "text-embedding-3-small"))
    _, batch = run_batch(server, requests, "/v1/embeddings")
    sink = io.BytesIO()
    br.merge(io.BytesIO(requests), content(server, batch["output_file_id"]), None, sink)
    vectors = [item["embedding"] for line in sink.getvalue().splitlines()
               for item in json.loads(line)["response"]["data"]]
    assert vectors == [fake_batches._vector(t) for t in texts]


def test_a_file_the_api_refuses_fails_the_batch_with_its_line(server):
    statuses, batch = run_batch(server, input_file(["a"]) + b"not json\n")
    assert statuses[-1] == "failed"
    assert batch["errors"]["data"][0]["line"] == 2


def test_a_cancelled_batch_keeps_what_was_done_and_merges_the_rest_as_missing(server):
    requests = input_file([f"r{i}" for i in range(4)])
    batch = httpx.post(server.url + "/batches", headers=KEY, json={
        "input_file_id": upload(server, requests), "endpoint": "/v1/chat/completions",
        "completion_window": "24h"}).json()
    for _ in range(2):  # validating -> in_progress, then half done
        batch = httpx.get(f"{server.url}/batches/{batch['id']}", headers=KEY).json()
    assert httpx.post(f"{server.url}/batches/{batch['id']}/cancel", headers=KEY).json()["status"] == "cancelling"
    batch = httpx.get(f"{server.url}/batches/{batch['id']}", headers=KEY).json()
    assert batch["status"] == "cancelled"
    sink = io.BytesIO()
    summary = br.merge(io.BytesIO(requests), content(server, batch["output_file_id"]), None, sink)
    assert summary.counts == {"completed": 2, "missing": 2}


def test_usage_and_costs_need_the_admin_key_when_one_is_set(server):
    server.state["admin_keys"] = ["sk-admin-fake"]
    start = int(time.time()) // 86400 * 86400 - 3 * 86400
    refused = httpx.get(server.url + "/organization/usage/completions", params={"start_time": start}, headers=KEY)
    assert refused.status_code == 401 and "OPENAI_ADMIN_KEY" in refused.json()["error"]["message"]
    admin = {"Authorization": "Bearer sk-admin-fake"}
    usage = httpx.get(server.url + "/organization/usage/completions", headers=admin,
                      params={"start_time": start, "group_by": "model", "limit": 2}).json()
    assert len(usage["data"]) == 2 and usage["has_more"] and usage["next_page"] == "2"
    assert [r["model"] for r in usage["data"][0]["results"]] == ["gpt-4o-mini", "gpt-4.1"]
    costs = httpx.get(server.url + "/organization/costs", headers=admin, params={"start_time": start}).json()
    assert costs["data"][0]["results"][0]["amount"] == {"value": 0.25, "currency": "usd"}
