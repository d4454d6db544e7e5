"""files: streamed uploads (checked byte for byte on the server side), retries, the Uploads API, waits,
downloads that never leave a partial file, and the terminal behaviour of the progress bar and prompts."""

import contextlib
import hashlib
import json
import os
import re

import pytest

from tests.fake.files import add_file
from tests.fake.server import Scripted
from tests.terminal import run_tty

CHAT_LINE = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'


@pytest.fixture
def blob(tmp_path):
    path = tmp_path / "deep" / "dir" / "blob.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(300_000))
    return path


def stored(fake, file_id):
    return fake.state["files"][file_id]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RecordingBar:
    """Stands in for tqdm: keeps the running count and how often it went back to zero."""

    def __init__(self):
        self.n = 0
        self.resets = 0
        self.low = 0

    def update(self, amount):
        self.n += amount
        self.low = min(self.low, self.n)

    def reset(self, total=None):
        self.n = 0
        self.resets += 1


@pytest.fixture
def bar(monkeypatch):
    recording = RecordingBar()

    @contextlib.contextmanager
    def progress_bar(total, label):
        yield recording

    monkeypatch.setattr("oaicli.output.progress.progress_bar", progress_bar)  # what files upload passes in
    return recording


def test_upload_streams_the_file_byte_for_byte_under_its_base_name(invoke, fake, blob):
    result = invoke("files", "upload", blob, "--purpose", "user_data", "--format", "json")
    assert result.exit_code == 0, result.stderr
    [uploaded] = json.loads(result.stdout)
    entry = stored(fake, uploaded["id"])
    assert entry["sha256"] == sha256(blob) and entry["blob"].size == blob.stat().st_size
    assert entry["meta"]["filename"] == "blob.bin" and entry["meta"]["purpose"] == "user_data"
    assert "%" not in result.stderr and "B/s" not in result.stderr  # no bar when stderr is not a terminal


def test_upload_plain_prints_only_the_ids(invoke, fake, blob, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("hello")
    result = invoke("files", "upload", blob, other, "--purpose", "assistants", "--format", "plain")
    ids = result.stdout.split()
    assert result.exit_code == 0 and len(ids) == 2 and all(i in fake.state["files"] for i in ids)
    assert stored(fake, ids[1])["blob"].content == b"hello"


@pytest.mark.parametrize("failure", [Scripted(status=500, body={"error": {"message": "boom"}}), Scripted(drop=True)])
def test_a_retried_upload_streams_the_whole_file_again(invoke, fake, blob, bar, failure):
    fake.queue("POST", "/v1/files", failure)
    result = invoke("files", "upload", blob, "--purpose", "batch", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert len(fake.calls("POST", "/v1/files")) == 2
    assert stored(fake, result.stdout.strip())["sha256"] == sha256(blob)
    assert bar.n == blob.stat().st_size and bar.resets >= 1  # the bar restarted rather than counting twice


def test_large_files_go_through_the_uploads_api_in_parts(invoke, fake, blob, bar, monkeypatch):
    monkeypatch.setattr("oaicli.api.uploads.UPLOADS_THRESHOLD", 1000)
    monkeypatch.setattr("oaicli.api.uploads.PART_SIZE", 128 * 1024)
    fake.state["fail_parts"] = [2]
    result = invoke("files", "upload", blob, "--purpose", "fine-tune", "--no-validate", "--format", "json")
    assert result.exit_code == 0, result.stderr
    [uploaded] = json.loads(result.stdout)
    assert stored(fake, uploaded["id"])["sha256"] == sha256(blob)
    assert uploaded["filename"] == "blob.bin" and uploaded["bytes"] == blob.stat().st_size
    parts = [c for c in fake.calls("POST") if c.path.endswith("/parts")]
    assert len(parts) == 4  # three parts, the second sent twice: only the failed part was retried
    assert fake.calls("POST", "/v1/files") == []
    [complete] = [c for c in fake.calls("POST") if c.path.endswith("/complete")]
    assert len(complete.json()["part_ids"]) == 3
    assert bar.n == blob.stat().st_size and bar.low >= 0


def test_without_an_uploads_api_a_large_file_goes_to_files(invoke, fake, blob, monkeypatch):
    monkeypatch.setattr("oaicli.api.uploads.UPLOADS_THRESHOLD", 1000)
    fake.queue("POST", "/v1/uploads", Scripted(status=404, body={"error": {"message": "Unknown path"}}))
    result = invoke("files", "upload", blob, "--purpose", "batch", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert stored(fake, result.stdout.strip())["sha256"] == sha256(blob)


def test_a_part_refused_mid_upload_is_an_error_not_a_fallback_to_files(invoke, fake, blob, monkeypatch):
    monkeypatch.setattr("oaicli.api.uploads.UPLOADS_THRESHOLD", 1000)
    monkeypatch.setattr("oaicli.api.uploads.PART_SIZE", 128 * 1024)
    fake.routes.insert(0, ("POST", re.compile(r"^/v1/uploads/[^/]+/parts$"),
                           lambda request, reply: reply.error(404, "Upload expired")))
    result = invoke("files", "upload", blob, "--purpose", "batch", "--format", "plain")
    assert result.exit_code == 4 and "Upload expired" in result.stderr and result.stdout == ""
    assert fake.calls("POST", "/v1/files") == []
    assert [c for c in fake.calls("POST") if c.path.endswith("/cancel")]


def test_wait_polls_until_processed(invoke, fake, blob):
    fake.state["file_process_polls"] = 3
    result = invoke("files", "upload", blob, "--purpose", "batch", "--wait", "--format", "json")
    assert result.exit_code == 0, result.stderr
    [uploaded] = json.loads(result.stdout)
    assert uploaded["status"] == "processed"
    assert len(fake.calls("GET", f"/v1/files/{uploaded['id']}")) == 3


def test_wait_reports_a_processing_error(invoke, fake, blob):
    fake.state["file_error"] = "Invalid file format"
    result = invoke("files", "upload", blob, "--purpose", "batch", "--wait")
    assert result.exit_code == 4
    assert "failed processing: Invalid file format" in result.stderr and result.stdout == ""


def test_wait_gives_up_after_the_timeout_with_exit_8(invoke, fake, blob):
    fake.state["file_process_polls"] = 10 ** 9
    result = invoke("files", "upload", blob, "--purpose", "batch", "--wait", "--timeout", "0.3")
    assert result.exit_code == 8 and "still uploaded after the --timeout" in result.stderr


def test_fine_tune_files_are_checked_before_uploading(invoke, fake, tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(CHAT_LINE + "{not json\n")
    result = invoke("files", "upload", bad, "--purpose", "fine-tune")
    assert result.exit_code == 4
    assert "line 2: not valid JSON" in result.stderr and "prepare-data" in result.stderr
    assert fake.calls("POST", "/v1/files") == []
    result = invoke("files", "upload", bad, "--purpose", "fine-tune", "--no-validate", "--format", "plain")
    assert result.exit_code == 0 and stored(fake, result.stdout.strip())["blob"].content == bad.read_bytes()


def test_content_to_a_file_and_to_stdout(invoke, fake, tmp_path):
    record = add_file(fake, os.urandom(50_000), "results.csv")
    target = tmp_path / "out" / "results.csv"
    result = invoke("files", "content", record["id"], "-o", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_bytes() == stored(fake, record["id"])["blob"].content
    result = invoke("files", "content", record["id"])
    assert result.stdout_bytes == stored(fake, record["id"])["blob"].content


def test_an_interrupted_download_leaves_nothing_at_the_target(invoke, fake, tmp_path):
    record = add_file(fake, size=5_000_000, drop_at=1_000_000)
    target = tmp_path / "big.bin"
    result = invoke("files", "content", record["id"], "-o", target)
    assert result.exit_code == 5 and "download broke off" in result.stderr
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_an_interrupted_download_to_stdout_says_what_already_went_out(fake):
    from tests.conftest import run_process
    record = add_file(fake, size=5_000_000, drop_at=1_000_000)
    result = run_process("files", "content", record["id"])  # the generated content is ASCII
    assert result.returncode == 5 and len(result.stdout) == 1_000_000
    assert "Nothing was written" not in result.stderr
    assert "The first 1000000 bytes already went to stdout and are incomplete" in result.stderr
    empty = add_file(fake, size=5_000_000, drop_at=0)
    assert "Nothing was written to stdout" in run_process("files", "content", empty["id"]).stderr


def test_an_interrupted_download_keeps_the_old_file(invoke, fake, tmp_path):
    record = add_file(fake, size=5_000_000, drop_at=1_000_000)
    target = tmp_path / "results.csv"
    target.write_text("yesterday's results")
    assert invoke("files", "content", record["id"], "-o", target).exit_code == 5
    assert target.read_text() == "yesterday's results"


def test_list_get_and_delete(invoke, fake):
    tuned = add_file(fake, b"a", "a.jsonl", "fine-tune")
    other = add_file(fake, b"b", "b.pdf", "assistants")
    listed = json.loads(invoke("files", "list", "--purpose", "fine-tune", "--format", "json").stdout)
    assert [f["id"] for f in listed] == [tuned["id"]]
    assert fake.calls("GET", "/v1/files")[-1].query == {"purpose": "fine-tune"}
    assert json.loads(invoke("files", "get", other["id"], "--format", "json").stdout)["filename"] == "b.pdf"
    result = invoke("files", "delete", other["id"], "--yes", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["deleted"] is True
    assert other["id"] not in fake.state["files"]
    assert invoke("files", "get", other["id"]).exit_code == 4


def test_delete_on_a_terminal_asks(fake):
    record = add_file(fake, b"x")
    result = run_tty("files", "delete", record["id"], answers=[(f"Delete file {record['id']}? [y/N]", "n\r")])
    assert result.returncode == 1 and record["id"] in fake.state["files"]
    result = run_tty("files", "delete", record["id"], "--yes", "--format", "json")
    assert result.returncode == 0 and record["id"] not in fake.state["files"]


def test_progress_bar_only_on_a_terminal_and_not_with_quiet(fake, blob):
    shown = run_tty("files", "upload", blob, "--purpose", "batch", "--format", "plain")
    assert shown.returncode == 0 and "100%" in shown.output and "blob.bin" in shown.output
    hidden = run_tty("files", "upload", blob, "--purpose", "batch", "--format", "plain", "--quiet")
    assert hidden.returncode == 0 and "100%" not in hidden.output


def test_download_bar_on_a_terminal_only(fake, tmp_path):
    from tests.conftest import run_process
    record = add_file(fake, os.urandom(300_000), "results.csv")
    shown = run_tty("files", "content", record["id"], "-o", tmp_path / "a.csv")
    assert shown.returncode == 0 and "100%" in shown.output and record["id"] in shown.output
    piped = run_process("files", "content", record["id"], "-o", tmp_path / "b.csv")
    assert piped.returncode == 0 and piped.stderr == f"Wrote 300000 bytes to {tmp_path / 'b.csv'}.\n"
    content = stored(fake, record["id"])["blob"].content
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() == content


def test_content_to_a_path_under_a_file_is_one_line_and_exit_4(invoke, fake, tmp_path):
    record = add_file(fake, b"abc", "results.csv")
    (tmp_path / "taken").write_text("a file, not a folder")
    result = invoke("files", "content", record["id"], "-o", tmp_path / "taken" / "sub" / "results.csv")
    assert result.exit_code == 4
    assert result.stderr == f"Error: Cannot save into {tmp_path / 'taken' / 'sub'}: " \
                            f"{tmp_path / 'taken'} is a file, not a folder.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    # checked before the request, as image, audio and embed do: nothing was downloaded for nothing
    assert fake.calls("GET", f"/v1/files/{record['id']}/content") == []


def test_jsonl_goes_to_the_uploads_api_as_text_jsonl(invoke, fake, tmp_path, monkeypatch):
    monkeypatch.setattr("oaicli.api.uploads.UPLOADS_THRESHOLD", 10)
    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n')
    result = invoke("files", "upload", data, "--purpose", "fine-tune", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    [created] = fake.calls("POST", "/v1/uploads")
    assert created.json()["mime_type"] == "text/jsonl" and created.json()["filename"] == "train.jsonl"
