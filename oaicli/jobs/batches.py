"""Batches (the Batch API, half price): submit a checked request file, follow a batch to its end, and
merge its output and error files into results in input order."""

import contextlib
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import click

from oaicli.api.polling import Backoff, ended, passing, pause
from oaicli.api.uploads import upload_one
from oaicli.core.errors import ApiError, ExitCode, InputError, NetworkError, OaicliError
from oaicli.jobs import batch_file, batch_results

BOM = b"\xef\xbb\xbf"
TERMINAL = {"completed", "failed", "cancelled", "expired"}
MIN_DELAY, MAX_DELAY = 2.0, 30.0


def check(path: Path, endpoint: str | None, say) -> batch_file.Report:
    """Validate every line; on any problem list them (by line number) through `say` and refuse."""
    try:
        with open(path, "rb") as handle:
            report = batch_file.validate(handle, endpoint, max_line_bytes=batch_file.MAX_LINE_BYTES)
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if not report.ok:
        for problem in report.problems:
            say(f"{path}: {problem}")
        more = report.problem_count - len(report.problems)
        raise InputError(f"{path}: {report.problem_count} problem(s){f' ({more} not listed)' if more else ''}; "
                         "nothing was uploaded.", "Fix the lines and submit again.")
    return report


def submit(api, path: Path, endpoint: str | None, progress_bar, notice, say, metadata: dict | None = None) -> dict:
    """Check, upload (purpose batch, the Uploads API when large) and create the batch; the batch object."""
    report = check(path, endpoint, say)
    notice(f"Checked {report.lines} requests for {report.endpoint}.")
    with without_bom(path, notice) as clean:
        uploaded = upload_one(api, clean, "batch", progress_bar, notice)
    body = {"input_file_id": uploaded["id"], "endpoint": report.endpoint, "completion_window": "24h"}
    if metadata:
        body["metadata"] = metadata
    return api.post("/batches", json=body)


@contextlib.contextmanager
def without_bom(path: Path, notice):
    """The file to upload: `path` itself, or, when it starts with a UTF-8 byte-order mark (Notepad and
    PowerShell 5 write one), a temporary copy of the same name without it. The Batch API reads the mark
    as part of the first line's JSON and fails that request; the checks above already read past it."""
    with open(path, "rb") as source:
        if source.read(len(BOM)) != BOM:
            yield path
            return
        notice(f"{path.name} starts with a UTF-8 byte-order mark; uploading it without the mark.")
        with tempfile.TemporaryDirectory(prefix="oaicli-batch-") as folder:
            copy = Path(folder) / path.name
            with open(copy, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            yield copy


def counts(batch: dict) -> tuple[int, int, int]:
    """(completed, failed, total) requests."""
    numbers = batch.get("request_counts") or {}
    return numbers.get("completed") or 0, numbers.get("failed") or 0, numbers.get("total") or 0


def status_line(batch: dict) -> str:
    done, failed, total = counts(batch)
    return f"Batch {batch.get('id')}: {batch.get('status')}, {done} completed, {failed} failed of {total}."


def follow(api, batch_id: str, on_change, deadline: float | None, sleep=time.sleep) -> dict:
    """Poll until the batch ends, calling `on_change(batch)` when its status or counts change; the final
    batch. Network errors, 429 and 5xx (after the client's own retries) only pause the loop."""
    backoff = Backoff(MIN_DELAY, MAX_DELAY)
    while True:
        try:
            batch = api.get(f"/batches/{batch_id}")
        except (NetworkError, ApiError) as exc:
            if not passing(exc):
                raise
            batch = None
        if batch is not None:
            if backoff.saw((batch.get("status"), counts(batch))):
                on_change(batch)
            if batch.get("status") in TERMINAL:
                return batch
        last = backoff.last
        pause(deadline, backoff.delay, sleep, f"Batch {batch_id} is still {last[0] if last else 'unreachable'}",
              f"Resume with `oaicli batches follow {batch_id}`.")


def outcome(batch: dict) -> None:
    """The exit codes of `fine-tunes follow`: 6 failed, 7 cancelled or expired (0 completed)."""
    status, batch_id = batch.get("status"), batch.get("id")
    errors = (batch.get("errors") or {}).get("data") or []
    first = errors[0] if errors else {}
    where = f" (line {first['line']})" if first.get("line") else ""
    stopped = f"Batch {batch_id} was {status}; `oaicli batches results {batch_id}` has the requests that ran."
    ended(status, {"failed": f"Batch {batch_id} failed: {first.get('message') or 'no reason given'}{where}.",
                   "cancelled": stopped, "expired": stopped})


def interrupted(batch_id: str, say) -> None:
    say(f"\nStopped following {batch_id}; the batch goes on.\n"
        f"  Resume: oaicli batches follow {batch_id}\n"
        f"  Cancel: oaicli batches cancel {batch_id}")
    raise click.exceptions.Exit(ExitCode.INTERRUPTED)


def download_files(api, batch: dict, directory: Path, bar_for) -> list[Path]:
    """The batch's output and error files, saved as BATCH_ID.output.jsonl and BATCH_ID.errors.jsonl."""
    from oaicli.output.files import download_target
    saved = []
    for key, suffix in (("output_file_id", "output"), ("error_file_id", "errors")):
        if batch.get(key):
            path = directory / f"{batch['id']}.{suffix}.jsonl"
            with download_target(path) as sink, bar_for(path.name) as bar:
                api.download(f"/files/{batch[key]}/content", sink, bar, what=f"{suffix} file", where=path)
            saved.append(path)
    return saved


def results(api, batch_id: str, sink) -> batch_results.Summary:
    """Merge the batch's output and error files into `sink` (binary) in the order of its input file,
    which is read back from the API. Each file is spooled to a temporary file, never held in memory.

    The output file (nearly all the bytes) is indexed as it downloads, while the input and error files
    download on a second connection from a helper thread: the wait on the network overlaps the work."""
    batch = api.get(f"/batches/{batch_id}")
    if batch.get("status") not in TERMINAL:
        raise InputError(f"Batch {batch_id} is still {batch.get('status')}; it has no results yet.",
                         f"Wait with `oaicli batches follow {batch_id}`.")
    if not batch.get("input_file_id"):
        raise OaicliError(f"Batch {batch_id} names no input file.", exit_code=ExitCode.REQUEST)
    with contextlib.ExitStack() as stack:
        def spool(key):
            return stack.enter_context(tempfile.TemporaryFile()) if batch.get(key) else None
        inputs, output, errors = spool("input_file_id"), spool("output_file_id"), spool("error_file_id")
        others = _in_background(lambda: _input_and_errors(api, batch, inputs, errors))
        index: dict = {}
        if output is not None:
            indexer = batch_results.LineIndexer(index, 0, copy_to=output)
            _download(api, batch["output_file_id"], indexer, "output_file_id")
            indexer.finish()
        gone = others.result()
        if errors is not None:  # indexed after the output file: its copy of a custom_id wins
            errors.seek(0)
            batch_results.index_lines(errors, 1, index)
        inputs.seek(0)
        summary = batch_results.merge_indexed(inputs, [output, errors], index, sink)
        summary.input_gone = gone
        return summary


def _input_and_errors(api, batch: dict, inputs, errors) -> str | None:
    """Download the error file and the input file; the input file's id when the API no longer has it."""
    if errors is not None:
        _download(api, batch["error_file_id"], errors, "error_file_id")
    try:
        _download(api, batch["input_file_id"], inputs, "input_file_id")
    except ApiError as exc:
        # Users delete the request file once the batch has run: the answers are still worth having,
        # just without the input's order (an empty input puts them in the files' order).
        if exc.status != 404:
            raise
        return batch["input_file_id"]
    return None


def _in_background(work) -> Future:
    """`work()` on a daemon thread, its result or exception through the Future. A daemon, so that after
    Ctrl-C or a failure here the process does not wait for its download to end."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to the caller, which raises it from result()
            future.set_exception(exc)

    threading.Thread(target=run, name="batch-files", daemon=True).start()
    return future


def _download(api, file_id: str, sink, key: str) -> None:
    api.download(f"/files/{file_id}/content", sink, _NoBar(), what=key.split("_")[0] + " file")


class _NoBar:
    def update(self, amount: int) -> None:
        pass

    def reset(self, total=None) -> None:
        pass
