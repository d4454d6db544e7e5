"""batches submit/follow/results and the batch modes of chat and embed, against the loopback fake's
Batch API (validating -> in_progress -> finalizing -> completed, with output and error files); bad
request files refused whole before any upload; Ctrl-C during follow leaves the batch running."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, TEST_KEY


def request(custom_id: str, text: str, url: str = "/v1/chat/completions") -> dict:
    body = ({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
            if url == "/v1/chat/completions" else {"model": "text-embedding-3-small", "input": text})
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


@pytest.fixture
def requests_file(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(request(f"r{i}", f"question {i}")) + "\n" for i in range(4)))
    return path


def test_submit_wait_follows_to_completed_and_downloads_the_files(invoke, fake, requests_file, tmp_path):
    fake.state["batch_fail_ids"] = ["r2"]
    result = invoke("batches", "submit", requests_file, "--wait", "-d", tmp_path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    batch = json.loads(result.stdout)
    assert batch["status"] == "completed" and batch["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    upload = fake.calls("POST", "/v1/files")[0]
    assert b'name="purpose"\r\n\r\nbatch' in upload.body
    created = fake.calls("POST", "/v1/batches")[0].json()
    assert created["endpoint"] == "/v1/chat/completions" and created["completion_window"] == "24h"
    # one status line per change in a pipe, in the order the batch went through them
    statuses = [line.split(": ")[1].split(",")[0] for line in result.stderr.splitlines() if line.startswith("Batch ")]
    assert statuses == ["in_progress", "in_progress", "finalizing", "completed"]
    output = (tmp_path / f"{batch['id']}.output.jsonl").read_text().splitlines()
    errors = (tmp_path / f"{batch['id']}.errors.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in output) == ["r0", "r1", "r3"]
    assert [json.loads(line)["custom_id"] for line in errors] == ["r2"]


def test_results_merge_in_input_order_and_table_summarises(invoke, fake, requests_file, tmp_path):
    fake.state["batch_fail_ids"] = ["r1"]
    batch_id = json.loads(invoke("batches", "submit", requests_file, "--format", "json").stdout)["id"]
    early = invoke("batches", "results", batch_id)
    assert early.exit_code == 4 and "has no results yet" in early.stderr
    assert invoke("batches", "follow", batch_id, "-d", tmp_path, "-q").exit_code == 0
    merged = [json.loads(line) for line in invoke("batches", "results", batch_id).stdout.splitlines()]
    assert [m["custom_id"] for m in merged] == ["r0", "r1", "r2", "r3"]  # the fake's output file is reversed
    assert [m["status"] for m in merged] == ["completed", "failed", "completed", "completed"]
    assert merged[0]["response"]["choices"][0]["message"]["content"] == "echo: question 0"
    assert merged[1]["status_code"] == 400 and "scripted failure" in merged[1]["error"]["message"]
    target = tmp_path / "results.jsonl"
    assert invoke("batches", "results", batch_id, "-o", target).exit_code == 0
    assert [json.loads(line) for line in target.read_text().splitlines()] == merged
    table = invoke("batches", "results", batch_id, "--format", "table").stdout
    assert [line.split() for line in table.splitlines()[2:]] == [["completed", "3"], ["failed", "1"],
                                                                 ["missing", "0"], ["total", "4"]]


def test_follow_exit_codes_for_failed_and_cancelled_batches(invoke, fake, tmp_path):
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps(request("a", "x")) + "\n")
    batch_id = json.loads(invoke("batches", "submit", wrong, "--format", "json").stdout)["id"]
    fake.state["batches"][batch_id]["errors"] = [{"code": "invalid", "message": "scripted failure", "line": 1}]
    failed = invoke("batches", "follow", batch_id, "-d", tmp_path)
    assert failed.exit_code == 6 and "scripted failure (line 1)" in failed.stderr
    other = json.loads(invoke("batches", "submit", wrong, "--format", "json").stdout)["id"]
    fake.state["batches"][other]["batch"]["status"] = "cancelling"
    cancelled = invoke("batches", "follow", other, "-d", tmp_path)
    assert cancelled.exit_code == 7 and "was cancelled" in cancelled.stderr


def test_follow_times_out_with_exit_8_and_says_how_to_resume(invoke, fake, requests_file, tmp_path):
    fake.state["batch_polls_per_step"] = 1000
    batch_id = json.loads(invoke("batches", "submit", requests_file, "--format", "json").stdout)["id"]
    invoke.obj["sleep"] = lambda seconds: __import__("time").sleep(0.01)
    result = invoke("batches", "follow", batch_id, "--timeout", "0.05", "-d", tmp_path)
    assert result.exit_code == 8 and f"oaicli batches follow {batch_id}" in result.stderr


@pytest.mark.parametrize("lines, endpoint, expected", [
    ([request("a", "x"), request("a", "y")], None, "line 2: custom_id 'a' repeats line 1"),
    ([request("a", "x"), request("b", "y", url="/v1/embeddings")], None,
     "line 2: url /v1/embeddings does not match the batch's endpoint /v1/chat/completions"),
    ([request("a", "x"), "not json"], None, "line 2: the line is not JSON"),
    ([request("a", "x")], "/v1/embeddings", "line 1: url /v1/chat/completions does not match"),
    ([{**request("a", "x"), "url": "/v1/unknown"}], None, "line 1: url '/v1/unknown' is not an endpoint"),
])
def test_a_bad_line_refuses_the_whole_file_before_any_upload(invoke, fake, tmp_path, lines, endpoint, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    result = invoke("batches", "submit", path, *(["--endpoint", endpoint] if endpoint else []))
    assert result.exit_code == 4
    assert expected in result.stderr and "nothing was uploaded" in result.stderr
    assert fake.calls("POST") == []


def test_an_unknown_endpoint_option_and_an_over_size_line_are_refused(invoke, fake, tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(request("a", "x" * 5000)) + "\n" + json.dumps(request("b", "y")) + "\n")
    unknown = invoke("batches", "submit", path, "--endpoint", "/v1/unknown")
    assert unknown.exit_code == 2 and "/v1/unknown" in unknown.stderr
    from oaicli.jobs import batch_file
    monkeypatch.setattr(batch_file, "MAX_LINE_BYTES", 1000)
    big = invoke("batches", "submit", path)
    assert big.exit_code == 4 and "line 1: the line is 5," in big.stderr and "over the 1,000-byte limit" in big.stderr
    assert fake.calls("POST") == []


def test_chat_batch_writes_the_answers_as_chat_would(invoke, fake, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"one"\n\n[{"role": "user", "content": "two"}]\n"three"\n')
    result = invoke("chat", "--batch", prompts, "--wait", "-s", "Be brief.", "--temperature", "0.5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: one\necho: two\necho: three\n"
    jsonl = invoke("chat", "--batch", prompts, "--wait", "--format", "jsonl", "-q")
    answers = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [a["object"] for a in answers] == ["chat.completion"] * 3
    started = invoke("chat", "--batch", prompts)
    assert started.stdout.strip().startswith("batch_") and "oaicli batches results" in started.stderr
    uploaded = fake.state["files"][fake.calls("POST", "/v1/batches")[0].json()["input_file_id"]]["blob"].content
    first = json.loads(uploaded.splitlines()[0])
    assert first["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert first["body"]["temperature"] == 0.5


def json_documents(text: str) -> list:
    """The JSON documents written one after the other in `text`."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    text = text.strip()
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        documents.append(value)
        position = len(text) - len(text[position:].lstrip())
    return documents


def test_chat_batch_format_json_prints_one_document_per_prompt_as_chat_does(invoke, fake, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"one"\n"two"\n')
    batched = invoke("chat", "--batch", prompts, "--wait", "--format", "json", "-q")
    assert batched.exit_code == 0, batched.stderr
    answers = json_documents(batched.stdout)
    assert [a["choices"][0]["message"]["content"] for a in answers] == ["echo: one", "echo: two"]
    single = invoke("chat", "one", "--format", "json", "--no-stream", "-q")
    assert single.exit_code == 0, single.stderr
    # The same layout as the plain command's: each answer's object, indented, then a newline.
    assert single.stdout == json.dumps(json.loads(single.stdout), ensure_ascii=False, indent=2) + "\n"
    assert batched.stdout == "".join(json.dumps(a, ensure_ascii=False, indent=2) + "\n" for a in answers)


def test_chat_batch_refuses_a_bad_prompt_line_before_any_request(invoke, fake, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"one"\nnot json\n')
    result = invoke("chat", "--batch", prompts)
    assert result.exit_code == 4 and "line 2" in result.stderr
    assert fake.calls("POST") == []


def test_embed_batch_writes_vectors_in_input_order_like_embed(invoke, fake, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("alpha\nbeta\n\ngamma\n")
    result = invoke("embed", "--batch", "--wait", "-i", docs, "--batch-size", "2", "--format", "jsonl", "-q")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["index"], line["input"]) for line in lines] == [(0, "alpha"), (1, "beta"), (2, "gamma")]
    from tests.fake.batches import _vector
    assert [line["embedding"] for line in lines] == [_vector(t) for t in ("alpha", "beta", "gamma")]
    vectors = tmp_path / "v.npy"
    assert invoke("embed", "--batch", "--wait", "-i", docs, "-o", vectors, "-q").exit_code == 0
    assert vectors.read_bytes().startswith(b"\x93NUMPY") and b"(3, 8)" in vectors.read_bytes()[:128]
    started = invoke("embed", "--batch", "-i", docs)
    assert started.stdout.strip().startswith("batch_") and "oaicli batches results" in started.stderr


def test_ctrl_c_during_follow_leaves_the_batch_running_and_says_how_to_follow_again(fake, home, requests_file):
    fake.state["batch_polls_per_step"] = 1000  # stays in_progress while followed
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    submitted = subprocess.run([sys.executable, "-m", "oaicli", "batches", "submit", str(requests_file),
                                "--format", "json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    batch_id = json.loads(submitted.stdout)["id"]
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "batches", "follow", batch_id],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert process.stderr.readline().startswith(b"Batch " + batch_id.encode())  # following has started
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert f"Resume: oaicli batches follow {batch_id}".encode() in err and out == b""
    assert fake.calls("POST", f"/v1/batches/{batch_id}/cancel") == []
    assert fake.state["batches"][batch_id]["batch"]["status"] == "validating"


@pytest.mark.parametrize("extra, named", [
    (["--session", "s"], "--session"), (["--api", "responses"], "--api"), (["--background"], "--background"),
    (["--context", "server"], "--context"), (["--envelope"], "--envelope"), (["-i"], "--interactive"),
    (["-g", "user", "hi"], "--message"), (["--reasoning-effort", "low"], "--reasoning-effort"),
    (["a prompt"], "PROMPT"),
])
def test_chat_batch_refuses_options_it_would_ignore_before_any_upload(invoke, fake, tmp_path, extra, named):
    # A batch costs money and runs for hours: an option silently dropped (a session never stored, an answer
    # never in JSON) is found out only when the results come back.
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"one"\n')
    result = invoke("chat", "--batch", prompts, *extra)
    assert result.exit_code == 2, result.stderr
    assert named in result.stderr and "--batch" in result.stderr
    assert fake.calls("POST") == []


def test_chat_batch_refuses_schema_before_any_upload(invoke, fake, tmp_path):
    prompts, schema = tmp_path / "prompts.jsonl", tmp_path / "schema.json"
    prompts.write_text('"one"\n')
    schema.write_text('{"type": "object"}')
    result = invoke("chat", "--batch", prompts, "--schema", schema)
    assert result.exit_code == 2 and "--schema" in result.stderr and fake.calls("POST") == []


def test_results_table_with_output_writes_the_file_and_prints_the_summary(invoke, fake, requests_file, tmp_path):
    batch_id = json.loads(invoke("batches", "submit", requests_file, "--wait", "-d", tmp_path, "-q",
                                 "--format", "json").stdout)["id"]
    target = tmp_path / "results.jsonl"
    result = invoke("batches", "results", batch_id, "-o", target, "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["custom_id"] for line in target.read_text().splitlines()] == ["r0", "r1", "r2", "r3"]
    assert [line.split() for line in result.stdout.splitlines()[2:]][-1] == ["total", "4"]


def test_embed_batch_output_file_without_wait_is_refused_before_any_upload(invoke, fake, tmp_path):
    # Without --wait the vectors come back hours later, through `batches results` as JSONL: an -o FILE
    # would never be written, so it is refused rather than ignored.
    docs = tmp_path / "docs.txt"
    docs.write_text("alpha\n")
    result = invoke("embed", "--batch", "-i", docs, "-o", tmp_path / "later.npy")
    assert result.exit_code == 2 and "--wait" in result.stderr and "-o" in result.stderr
    assert fake.calls("POST") == [] and not (tmp_path / "later.npy").exists()


def test_embed_batch_failure_says_the_file_was_not_written(invoke, fake, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("alpha\nbeta\n")
    fake.state["batch_fail_ids"] = ["embed-000001"]
    target = tmp_path / "v.npy"
    result = invoke("embed", "--batch", "--wait", "-i", docs, "--batch-size", "1", "-o", target, "-q")
    assert result.exit_code == 6 and not target.exists()
    line = result.stderr.strip().splitlines()[-1]
    assert "the others were written" not in line and str(target) in line and "batches results batch_" in line


def test_ctrl_c_on_a_terminal_ends_the_bar_before_saying_how_to_follow_again(fake, home, requests_file):
    from tests.terminal import run_tty
    fake.state["batch_polls_per_step"] = 1000
    env = {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY, "OAICLI_HOME": str(home)}
    submitted = subprocess.run([sys.executable, "-m", "oaicli", "batches", "submit", str(requests_file),
                                "--format", "json"], capture_output=True, text=True, env={**os.environ, **env},
                               cwd=REPO, timeout=60)
    batch_id = json.loads(submitted.stdout)["id"]
    result = run_tty("batches", "follow", batch_id, env=env, answers=[("validating", "\x03")], columns=100)
    assert result.returncode == 130
    assert "validating: 0req" in result.output and ": :" not in result.output  # tqdm adds its own colon
    after = result.output.split("Stopped following")[1]
    assert f"Resume: oaicli batches follow {batch_id}" in after
    assert "req" not in after  # the bar was closed before the message, not drawn again under it


def test_results_format_json_is_one_json_document_and_jsonl_one_line_each(invoke, fake, requests_file, tmp_path):
    batch_id = json.loads(invoke("batches", "submit", requests_file, "--wait", "-d", tmp_path, "-q",
                                 "--format", "json").stdout)["id"]
    lines = invoke("batches", "results", batch_id, "--format", "jsonl").stdout.splitlines()
    document = invoke("batches", "results", batch_id, "--format", "json").stdout
    assert json.loads(document) == [json.loads(line) for line in lines]
    assert [r["custom_id"] for r in json.loads(document)] == ["r0", "r1", "r2", "r3"]
    target = tmp_path / "results.json"
    assert invoke("batches", "results", batch_id, "--format", "json", "-o", target).exit_code == 0
    assert json.loads(target.read_text()) == json.loads(document)


@pytest.mark.parametrize("extra", [[], ["-n", "2"]])
def test_chat_batch_text_is_byte_for_byte_what_chat_prints_for_each_prompt(invoke, fake, tmp_path, extra):
    # Answers ending in a blank line and several choices: chat keeps the answer as sent and labels the
    # choices; the batch mode printed only the first choice, its trailing newlines cut.
    fake.state["answer"] = lambda messages: f"{messages[-1]['content']} says:\n\nhi\n\n"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"one"\n"two"\n')
    batch = invoke("chat", "--batch", prompts, "--wait", "-q", *extra)
    assert batch.exit_code == 0, batch.stderr
    plain = "".join(invoke("chat", prompt, *extra).stdout for prompt in ("one", "two"))
    assert batch.stdout == plain


def test_chat_batch_of_an_empty_prompts_file_names_that_file_in_one_line(invoke, fake, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n\n")
    result = invoke("chat", "--batch", prompts)
    assert result.exit_code == 4 and fake.calls("POST") == []
    assert result.stderr.count("\n") == 1 and str(prompts) in result.stderr and "chat-batch.jsonl" not in result.stderr


def test_results_without_the_input_file_still_merge_every_answer_and_say_the_order_is_lost(invoke, fake,
                                                                                           requests_file, tmp_path):
    # Users delete the uploaded request file once a batch has run; its answers are still there to collect.
    fake.state["batch_fail_ids"] = ["r1"]
    batch = json.loads(invoke("batches", "submit", requests_file, "--wait", "-d", tmp_path, "-q",
                              "--format", "json").stdout)
    assert invoke("files", "delete", batch["input_file_id"], "--yes").exit_code == 0
    result = invoke("batches", "results", batch["id"])
    assert result.exit_code == 0, result.stderr
    merged = {line["custom_id"]: line["status"] for line in map(json.loads, result.stdout.splitlines())}
    assert merged == {"r0": "completed", "r1": "failed", "r2": "completed", "r3": "completed"}
    assert batch["input_file_id"] in result.stderr and "order" in result.stderr


def _finished_batch(fake, inputs: bytes, outputs: bytes, drop_at: int | None = None) -> str:
    """A completed batch in the fake whose output file holds `outputs` (dropping after `drop_at` bytes)."""
    from tests.fake import files
    input_id = files.add_file(fake, inputs, "requests.jsonl", "batch")["id"]
    output_id = files.add_file(fake, outputs, "output.jsonl", "batch_output", drop_at=drop_at)["id"]
    batch = {"id": "batch_dropped", "object": "batch", "endpoint": "/v1/chat/completions", "status": "completed",
             "input_file_id": input_id, "output_file_id": output_id, "error_file_id": None}
    fake.state["batches"][batch["id"]] = {"batch": batch, "requests": [], "errors": [], "step": 4, "polls": 0,
                                          "done": 0}
    return batch["id"]


def _answer(custom_id: str) -> bytes:
    return json.dumps({"id": "batch_req_1", "custom_id": custom_id, "response": {
        "status_code": 200, "request_id": "req_1", "body": {"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"answer {custom_id} " * 50}}]}},
        "error": None}).encode() + b"\n"


def test_a_results_download_that_drops_mid_file_leaves_the_o_file_as_it_was(invoke, fake, tmp_path):
    ids = [f"r{i}" for i in range(40)]
    inputs = "".join(json.dumps(request(i, "q")) + "\n" for i in ids).encode()
    outputs = b"".join(_answer(i) for i in reversed(ids))
    batch_id = _finished_batch(fake, inputs, outputs, drop_at=len(outputs) // 2)
    target = tmp_path / "results.jsonl"
    target.write_text("earlier results\n")
    result = invoke("batches", "results", batch_id, "-o", target)
    assert result.exit_code == 5, result.stderr
    assert "broke off" in result.stderr and result.stderr.count("\n") <= 2
    assert target.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]  # no half-written .part left
    fresh = tmp_path / "fresh.jsonl"
    assert invoke("batches", "results", batch_id, "-o", fresh).exit_code == 5
    assert not fresh.exists()


def test_results_of_a_large_output_come_whole_and_in_input_order_through_the_command(invoke, fake, tmp_path):
    # 400 KB of output in reverse order, 5 requests unanswered: the download is indexed as it arrives.
    ids = [f"r{i}" for i in range(600)]
    inputs = "".join(json.dumps(request(i, "q")) + "\n" for i in ids).encode()
    batch_id = _finished_batch(fake, inputs, b"".join(_answer(i) for i in reversed(ids[5:])))
    target = tmp_path / "results.jsonl"
    result = invoke("batches", "results", batch_id, "-o", target)
    assert result.exit_code == 0, result.stderr
    merged = [json.loads(line) for line in target.read_bytes().splitlines()]
    assert [m["custom_id"] for m in merged] == ids
    assert [m["status"] for m in merged] == ["missing"] * 5 + ["completed"] * 595
    assert merged[5]["response"]["choices"][0]["message"]["content"] == "answer r5 " * 50


def test_submit_uploads_a_file_with_a_byte_order_mark_without_the_mark(invoke, fake, requests_file):
    marked = requests_file.with_name("marked.jsonl")
    marked.write_bytes(b"\xef\xbb\xbf" + requests_file.read_bytes())
    result = invoke("batches", "submit", marked, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "byte-order mark" in result.stderr
    upload = fake.calls("POST", "/v1/files")[0].body
    assert b"\xef\xbb\xbf" not in upload and requests_file.read_bytes() in upload
    assert b'filename="marked.jsonl"' in upload
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")  # the user's file is left as it was
    batch = json.loads(result.stdout)
    assert fake.state["files"][batch["input_file_id"]]["meta"]["bytes"] == len(requests_file.read_bytes())
