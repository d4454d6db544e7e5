"""oaicli embed against the loopback fake: sources, batching, order under concurrency and retries, formats."""

import csv
import json
import struct

import pytest

from oaicli.core.errors import ExitCode
from oaicli.media import embeddings
from tests.fake.embeddings import vector_for
from tests.fake.server import Scripted


def f32(values):
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def jsonl(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def test_texts_to_jsonl_with_the_default_model_and_base64(fake, invoke):
    result = invoke("embed", "a red fox", "a dog", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    lines = jsonl(result.stdout)
    assert [(line["index"], line["input"]) for line in lines] == [(0, "a red fox"), (1, "a dog")]
    # every printed float reads back to the float32 the server sent
    assert [f32(line["embedding"]) for line in lines] == [f32(vector_for("a red fox")), f32(vector_for("a dog"))]
    assert fake.calls("POST", "/v1/embeddings")[0].json() == {
        "model": "text-embedding-ada-002", "encoding_format": "base64", "input": ["a red fox", "a dog"]}


def test_float_encoding_is_honoured_and_printed_as_the_server_wrote_it(fake, invoke):
    result = invoke("embed", "a red fox", "--encoding-format", "float", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert jsonl(result.stdout) == [{"index": 0, "input": "a red fox", "embedding": vector_for("a red fox")}]
    assert fake.calls("POST", "/v1/embeddings")[0].json()["encoding_format"] == "float"


def test_a_server_answering_floats_to_a_base64_request_is_understood(fake, invoke):
    fake.queue("POST", "/v1/embeddings", Scripted(body={"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}]}))
    result = invoke("embed", "x", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert jsonl(result.stdout)[0]["embedding"] == [0.5, -0.25]


def test_a_server_refusing_base64_is_asked_again_with_float_for_the_rest_of_the_run(fake, invoke):
    fake.queue("POST", "/v1/embeddings", Scripted(status=400, body={"error": {
        "message": "encoding_format 'base64' is not supported", "type": "invalid_request_error",
        "param": "encoding_format"}}))
    result = invoke("embed", "a", "b", "c", "--batch-size", "1", "-c", "1", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert jsonl(result.stdout) == [{"index": i, "input": t, "embedding": vector_for(t)} for i, t in enumerate("abc")]
    assert [c.json()["encoding_format"] for c in fake.calls("POST", "/v1/embeddings")] == \
        ["base64", "float", "float", "float"]


def test_other_rejections_are_not_retried_as_float(fake, invoke):
    fake.queue("POST", "/v1/embeddings", Scripted(status=400, body={"error": {"message": "model not found"}}))
    result = invoke("embed", "a", "--format", "jsonl")
    assert result.exit_code == ExitCode.REQUEST and "model not found" in result.stderr
    assert len(fake.calls("POST", "/v1/embeddings")) == 1


@pytest.mark.parametrize("data", [
    [{"index": 0, "embedding": [0.5, 0.1]}, {"index": 1, "embedding": [0.5]}],
    [{"index": 0, "embedding": [0.5]}, {"index": 1, "embedding": "AAAAPw=="}],
])
def test_an_answer_oaicli_cannot_read_is_a_server_error(fake, invoke, data):
    fake.queue("POST", "/v1/embeddings", Scripted(body={"object": "list", "data": data}))
    result = invoke("embed", "x", "y", "--format", "jsonl")
    assert result.exit_code == ExitCode.SERVER
    assert "The server's embeddings cannot be read: " in result.stderr
    assert result.stdout == ""


def test_without_numpy_the_same_values_are_written_and_it_says_so_once(fake, invoke, tmp_path, monkeypatch):
    with_numpy = invoke("embed", "a", "b", "c", "--batch-size", "1", "--format", "jsonl")
    monkeypatch.setattr(embeddings, "numpy", None)
    monkeypatch.setattr(embeddings.Matrix, "fast", False)
    without = invoke("embed", "a", "b", "c", "--batch-size", "1", "--format", "jsonl")
    assert without.exit_code == 0, without.stderr
    assert without.stderr.count("numpy is not installed") == 1 and "numpy" not in with_numpy.stderr
    assert [f32(line["embedding"]) for line in jsonl(without.stdout)] == \
        [f32(line["embedding"]) for line in jsonl(with_numpy.stdout)]
    assert "numpy" not in invoke("embed", "a", "--format", "jsonl", "-q").stderr
    npy = invoke("embed", "a", "-o", tmp_path / "v.npy")  # float32 .npy is as fast without numpy: no notice
    assert npy.exit_code == 0 and "numpy is not installed" not in npy.stderr


def test_order_is_kept_under_concurrency_retries_and_a_drop(fake, invoke, tmp_path):
    lines = [f"line {i}" for i in range(40)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    fake.state["embedding_delays"] = {"line 0": 0.3, "line 5": 0.15}  # early batches finish last
    fake.queue("POST", "/v1/embeddings", Scripted(status=500, body={"error": {"message": "boom"}}),
               Scripted(drop=True), Scripted(status=429, body={"error": {"message": "slow down"}}))
    # up to all three failures may land on one batch: allow enough retries for that
    result = invoke("embed", "-i", tmp_path / "in.txt", "--batch-size", "5", "-c", "4", "--format", "jsonl",
                    "--max-retries", "3")
    assert result.exit_code == 0, result.stderr
    assert [(r["index"], r["input"], f32(r["embedding"])) for r in jsonl(result.stdout)] == \
        [(i, text, f32(vector_for(text))) for i, text in enumerate(lines)]
    assert len(fake.calls("POST", "/v1/embeddings")) == 8 + 3
    assert result.stderr.count("Retrying in") == 3


def test_a_batch_that_keeps_failing_stops_the_run_with_the_api_error(fake, invoke, tmp_path):
    fake.queue("POST", "/v1/embeddings", *[Scripted(status=400, body={"error": {
        "message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error"}})])
    out = tmp_path / "v.npy"
    result = invoke("embed", "a", "b", "-o", out)
    assert result.exit_code == ExitCode.REQUEST
    assert "maximum context length is 8192 tokens" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".v.npy*"))  # no half-written file


def test_inputs_beyond_2048_are_split(fake, invoke):
    result = invoke("embed", "--format", "jsonl", "-c", "1", "--batch-size", "2048",
                    input="".join(f"t{i}\n" for i in range(2050)))
    assert result.exit_code == 0, result.stderr
    sizes = [len(call.json()["input"]) for call in fake.calls("POST", "/v1/embeddings")]
    assert sizes == [2048, 2]
    assert [r["index"] for r in jsonl(result.stdout)] == list(range(2050))


def test_default_batches_are_256_and_the_api_limit_cannot_be_exceeded(fake, invoke):
    result = invoke("embed", "--format", "jsonl", "-c", "1", input="".join(f"t{i}\n" for i in range(300)))
    assert result.exit_code == 0, result.stderr
    assert [len(call.json()["input"]) for call in fake.calls("POST", "/v1/embeddings")] == [256, 44]
    too_big = invoke("embed", "x", "--batch-size", "2049")
    assert too_big.exit_code == ExitCode.USAGE and "2049 is not in the range 1<=x<=2048" in too_big.stderr


def test_the_token_cap_splits_long_inputs(fake, invoke):
    long = "word " * 40_000  # 200,000 bytes: two cannot share a 300,000-token request
    result = invoke("embed", "--format", "jsonl", "-c", "1", input=f"{long}\n{long}\nshort\n")
    assert result.exit_code == 0, result.stderr
    assert [len(c.json()["input"]) for c in fake.calls("POST", "/v1/embeddings")] == [1, 2]


def test_batches_respect_both_limits():
    items = [("ab", 3), ("cd", 3), ("efgh", 5), ("i", 2)]
    got = [(b.start, b.texts, b.size) for b in embeddings.batches(items, max_inputs=3, max_tokens=6)]
    assert got == [(0, ["ab", "cd"], 6), (2, ["efgh", "i"], 7)]


def test_blank_lines_count_towards_the_progress_of_the_next_input():
    import io
    lines = list(embeddings.lines_of(io.BytesIO(b"a\n\n  \nbc\n"), None, "in"))
    assert lines == [("a", 2), ("bc", 7)]


def test_a_byte_order_mark_is_not_part_of_the_first_input(fake, invoke, tmp_path):
    source = tmp_path / "docs.jsonl"
    source.write_bytes('{"text": "alpha"}\n'.encode("utf-8-sig"))
    result = invoke("embed", "-i", source, "--field", "text", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert jsonl(result.stdout)[0]["input"] == "alpha"


def test_jsonl_field_and_blank_lines(fake, invoke, tmp_path):
    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": 1, "text": "alpha"}\n\n{"id": 2, "text": "beta"}\n')
    result = invoke("embed", "-i", source, "--field", "text", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert [(r["index"], r["input"]) for r in jsonl(result.stdout)] == [(0, "alpha"), (1, "beta")]


@pytest.mark.parametrize("content,message", [
    ('{"id": 1}\n', "docs.jsonl line 1 has no field 'text'."),
    ('{"text": "ok"}\nnot json\n', "docs.jsonl line 2 is not JSON (needed for --field text)."),
    ('{"text": ""}\n', "docs.jsonl line 1: field 'text' is not a non-empty string."),
])
def test_bad_jsonl_is_one_clear_error(fake, invoke, tmp_path, content, message):
    (tmp_path / "docs.jsonl").write_text(content)
    result = invoke("embed", "-i", tmp_path / "docs.jsonl", "--field", "text")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip().endswith(message)


def test_missing_input_file(fake, invoke, tmp_path):
    result = invoke("embed", "-i", tmp_path / "nope.txt")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr == f"Error: File not found: {tmp_path / 'nope.txt'}.\n"  # as in every command


def test_only_blank_input_fails_before_any_request(fake, invoke):
    result = invoke("embed", input="\n  \n")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: Nothing to embed: every input was blank."
    assert not fake.calls("POST", "/v1/embeddings")


def test_base64_is_decoded_to_floats_and_dimensions_sent(fake, invoke):
    result = invoke("embed", "x", "--encoding-format", "base64", "--dimensions", "4", "-m",
                    "text-embedding-3-small", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert f32(jsonl(result.stdout)[0]["embedding"]) == f32(vector_for("x", 4))
    assert fake.calls("POST", "/v1/embeddings")[0].json() == {
        "model": "text-embedding-3-small", "encoding_format": "base64", "dimensions": 4, "input": ["x"]}


def test_json_is_one_array(fake, invoke):
    result = invoke("embed", "a", "b", "--format", "json", "--batch-size", "1")
    assert [item["input"] for item in json.loads(result.stdout)] == ["a", "b"]


def test_table_shows_dimensions_and_norm(fake, invoke):
    result = invoke("embed", "a red fox", "--format", "table")
    norm = sum(x * x for x in vector_for("a red fox")) ** 0.5
    row = result.stdout.splitlines()[-1].split()
    assert row == ["0", "a", "red", "fox", "1536", f"{norm:.4f}"]
    assert result.stdout.splitlines()[0].split() == ["index", "input", "dimensions", "norm"]


def read_npy(path):
    data = path.read_bytes()
    assert data[:8] == b"\x93NUMPY\x01\x00"
    header_len = struct.unpack("<H", data[8:10])[0]
    header = eval(data[10:10 + header_len].decode("latin-1"))  # a Python dict literal, as numpy writes it
    assert (10 + header_len) % 64 == 0
    rows, dims = header["shape"]
    code = {"<f4": "f", "<f8": "d"}[header["descr"]]
    values = struct.unpack(f"<{rows * dims}{code}", data[10 + header_len:])
    return header, [list(values[r * dims:(r + 1) * dims]) for r in range(rows)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_npy_output_parses_back(fake, invoke, tmp_path, dtype):
    out = tmp_path / "v.npy"
    result = invoke("embed", "a", "b", "c", "-o", out, "--dtype", dtype, "--batch-size", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "Wrote 3 embeddings to" in result.stderr
    header, rows = read_npy(out)
    assert header["shape"] == (3, 1536) and header["fortran_order"] is False
    assert rows == [f32(vector_for(t)) for t in "abc"]  # base64 carries float32, exact in float64 too


def test_csv_output(fake, invoke, tmp_path):
    out = tmp_path / "v.csv"
    result = invoke("embed", "a, with comma", "b", "-o", out)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0][:3] == ["index", "input", "dim_0"] and len(rows[0]) == 2 + 1536
    assert rows[1][1] == "a, with comma"
    assert f32([float(x) for x in rows[2][2:]]) == f32(vector_for("b"))


def test_output_must_be_npy_or_csv(fake, invoke, tmp_path):
    result = invoke("embed", "a", "-o", tmp_path / "v.txt")
    assert result.exit_code == ExitCode.USAGE
    assert "must end in .npy or .csv" in result.stderr
    assert not fake.calls()


def test_a_closed_pipe_stops_cleanly(fake, tmp_path):
    """`oaicli embed ... | head -1`: in-flight batches finish before the client closes, so no retry noise."""
    import subprocess
    import sys
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(20_000)))
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "embed", "-i", str(source), "--format", "jsonl",
                                "--batch-size", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(process.stdout.readline())["index"] == 0
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(60) == ExitCode.FAILURE
    assert "Retrying" not in stderr and "Bad file descriptor" not in stderr and "Traceback" not in stderr
    assert len(fake.calls("POST", "/v1/embeddings")) < 200  # it stopped early


def test_jsonl_streams_batches_as_they_complete(fake, tmp_path):
    """The first batch is on stdout while a later one is still being answered."""
    import subprocess
    import sys
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(30)))
    fake.state["embedding_delays"] = {"line 20": 1.5}
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "embed", "-i", str(source), "--format", "jsonl",
                                "--batch-size", "10", "-c", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(process.stdout.readline())["index"] == 0
    assert process.poll() is None  # the third batch is still waiting on the server
    rest = process.stdout.read().splitlines()
    assert process.wait(30) == 0 and json.loads(rest[-1])["index"] == 29


@pytest.mark.parametrize("args,message", [(["a", "-i", "x.txt"], "Give TEXT arguments or --input-file, not both."),
                                          (["a", "--field", "text"], "--field needs --input-file.")])
def test_conflicting_sources_are_usage_errors(fake, invoke, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("a\n")  # a file that exists: the conflict, not the path, is the error
    result = invoke("embed", *args)
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr
    assert not fake.calls()


def test_progress_bar_on_a_terminal_and_not_in_a_pipe(fake, invoke, tmp_path):
    from tests.terminal import run_tty
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(3000)))
    shown = run_tty("embed", "-i", source, "-o", tmp_path / "v.npy")
    assert shown.returncode == 0, shown.output
    assert "Embedding" in shown.output and "100%" in shown.output
    assert read_npy(tmp_path / "v.npy")[0]["shape"] == (3000, 1536)
    piped = invoke("embed", "-i", source, "-o", tmp_path / "w.npy")
    assert "Embedding" not in piped.stderr


def test_an_unusable_output_folder_is_one_clear_error(fake, invoke, tmp_path):
    (tmp_path / "afile").write_bytes(b"")
    result = invoke("embed", "a", "-o", tmp_path / "afile" / "v.npy")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == f"Error: Cannot save into {tmp_path}/afile: {tmp_path}/afile is a file, " \
                                    "not a folder."
    assert not fake.calls()


def test_ctrl_c_does_not_wait_for_requests_in_flight(fake, tmp_path):
    """A request can take up to --timeout (600 s) and its retries: Ctrl-C must not sit them out."""
    import signal
    import subprocess
    import sys
    import time
    fake.state["embedding_delays"] = {"slow": 120}
    out = tmp_path / "v.npy"
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "embed", "slow", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not fake.calls("POST", "/v1/embeddings"):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == ExitCode.INTERRUPTED  # well before the server answers
    stderr = process.stderr.read().decode()
    assert stderr.strip() == "Interrupted." and process.stdout.read() == b""
    assert list(tmp_path.iterdir()) == []
