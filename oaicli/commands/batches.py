"""`oaicli batches submit|follow|results`: the hand-written verbs of the batches group (the generated
list, get, create and cancel come from the spec)."""

from pathlib import Path

import click

from oaicli.cli import invocation
from oaicli.cli.options import command, wait_deadline

ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos")


@click.group("batches")
def batches():
    """Run many requests at half price with the Batch API.

    \b
    Example:
      oaicli batches submit requests.jsonl --wait
      oaicli batches results batch_abc123 -o results.jsonl
    """


@command(None, "submit")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--endpoint", type=click.Choice(ENDPOINTS), help="The endpoint every line calls (default: the "
              "first line's url).")
@click.option("--wait", is_flag=True, help="Then follow the batch until it ends (exit codes as `batches follow`).")
@click.option("-d", "--directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="With --wait: where the output and error files are saved.")
def submit(path, endpoint, wait, directory):
    """Check a JSONL request file, upload it and start a batch.

    Every line is checked first (JSON, a unique custom_id, POST, a url matching the endpoint, the body's
    required fields; at most 50,000 lines and 200 MB); each problem is listed with its line number and
    nothing is uploaded when any line is wrong (exit 4). A UTF-8 byte-order mark at the start of the
    file (Windows editors write one) is stripped from what is uploaded: the Batch API would fail the
    first request over it. Prints the batch object (the final one with --wait).

    \b
    Example:
      oaicli batches submit requests.jsonl --endpoint /v1/chat/completions
      oaicli batches submit requests.jsonl --wait --timeout 86400
    """
    from oaicli.jobs import batches as engine
    from oaicli.output import writers as output
    from oaicli.output.progress import progress_bar
    run = invocation.current()
    api = run.client()
    batch = engine.submit(api, Path(path), endpoint, progress_bar, run.notice, run.say)
    run.notice(f"Created batch {batch['id']}.")
    if wait:
        batch = _follow(run, batch["id"], Path(directory), render=False)
    output.render_object(batch)
    if wait:
        engine.outcome(batch)


@command(None, "follow")
@click.argument("batch_id")
@click.option("-d", "--directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where the output and error files are saved when the batch ends.")
def follow(batch_id, directory):
    """Follow a batch until it ends, then download its output and error files.

    Progress (completed and failed of total) shows as a bar on a terminal and as one status line per
    change in a pipe. The files are saved as BATCH_ID.output.jsonl and BATCH_ID.errors.jsonl. Exit 0
    completed, 6 failed, 7 cancelled or expired, 8 when --timeout runs out first, 130 on Ctrl-C (the
    batch goes on).

    \b
    Example:
      oaicli batches follow batch_abc123 --timeout 3600
    """
    from oaicli.jobs import batches as engine
    from oaicli.output import writers as output
    run = invocation.current()
    batch = _follow(run, batch_id, Path(directory), render=True)
    output.render_object(batch)
    engine.outcome(batch)


def _follow(run, batch_id: str, directory: Path, render: bool) -> dict:
    from oaicli.jobs import batches as engine
    from oaicli.output.files import ready_directory
    from oaicli.output.progress import progress_bar
    ready_directory(directory)
    api = run.client()
    # The interrupt is handled outside the bar's block: the bar is closed first, so its last draw does not
    # land under the lines that say how to follow again.
    try:
        with _progress_view(run) as on_change:
            batch = engine.follow(api, batch_id, on_change, wait_deadline(), sleep=api.sleep)
    except KeyboardInterrupt:
        engine.interrupted(batch_id, run.say)
    for path in engine.download_files(api, batch, directory, lambda label: progress_bar(None, label)):
        run.notice(f"Saved {path}.")
    return batch


def _progress_view(run):
    """A bar of requests done on a terminal; elsewhere one status line per change (both on stderr)."""
    import contextlib

    from oaicli.jobs import batches as engine
    if run.quiet:
        return contextlib.nullcontext(lambda batch: None)
    if not run.stderr_tty:
        return contextlib.nullcontext(lambda batch: run.say(engine.status_line(batch)))
    return _bar(run)


def _bar(run):
    import contextlib

    from oaicli.jobs import batches as engine
    from oaicli.output.progress import count_bar

    @contextlib.contextmanager
    def view():
        with count_bar("Batch", "req", run.stderr) as bar:
            def on_change(batch):
                done, failed, total = engine.counts(batch)
                bar.total = total or None
                bar.n = done + failed
                # Without a total tqdm puts its own ": " after the description; with one, the description's.
                describe = bar.set_description if total else bar.set_description_str
                describe(f"{batch.get('status')}")
                bar.set_postfix_str(f"{failed} failed" if failed else "")
                bar.refresh()
            yield on_change
    return view()


@command(None, "results")
@click.argument("batch_id")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the merged results to FILE (atomically) instead of stdout.")
def results(batch_id, output_path):
    """Merge a finished batch's output and error files, in input order.

    Each line is {custom_id, status, response} for a request that succeeded, {custom_id, status,
    error} for one that failed, status missing for one the batch never ran. The input file is read
    back from the API to give the order. --format json writes them as one JSON array instead; --format
    table prints counts by status (and with -o the merged lines still go to FILE).

    \b
    Example:
      oaicli batches results batch_abc123 -o results.jsonl
      oaicli batches results batch_abc123 --format table
    """
    from oaicli.jobs import batches as engine
    from oaicli.output import writers as output
    from oaicli.output.files import atomic_writer, ready_file
    run = invocation.current()
    fmt = output.chosen_format()
    api = run.client()
    if output_path:
        ready_file(Path(output_path))
        # Not fsynced (durable=False), like a download: the results can be merged again from the API's files,
        # and the fsync of 100 MB took 0.2 s of a 1 s command. The rename still means never half-written.
        with atomic_writer(Path(output_path), durable=False) as sink:
            summary = _merged(api, batch_id, sink, fmt)
        run.notice(f"Wrote {summary.total} results to {output_path}.")
    elif fmt == "table":
        summary = engine.results(api, batch_id, _Discard())
    else:
        run.stdout.flush()
        summary = _merged(api, batch_id, run.stdout.buffer, fmt)
        run.stdout.buffer.flush()
    if fmt == "table":
        output.render_list(summary.rows(), columns=["status", "requests"], fmt="table")
    if summary.input_gone:
        run.notice(f"The input file {summary.input_gone} is gone, so the results are in the order of the output "
                   "and error files, not the input's.")
    elif summary.not_in_input:
        run.notice(f"{summary.not_in_input} results name a custom_id the input lacks; they are written last.")


def _merged(api, batch_id: str, sink, fmt: str | None):
    """The merged results as JSONL; with --format json the same results as one JSON array."""
    from oaicli.jobs import batches as engine
    if fmt != "json":
        return engine.results(api, batch_id, sink)
    array = _JsonArray(sink)
    summary = engine.results(api, batch_id, array)
    array.close()
    return summary


class _JsonArray:
    """Merged result lines as the items of one JSON array, written as they come (nothing is held, so a
    50,000-line batch costs no more memory than JSONL). Each write is one or more whole lines; a JSONL
    line holds no raw newline (JSON escapes them), so its newlines are exactly where commas go."""

    def __init__(self, sink):
        self.sink = sink
        self.opened = False

    def write(self, lines: bytes) -> int:
        self.sink.write((b",\n" if self.opened else b"[\n") + lines.rstrip(b"\n").replace(b"\n", b",\n"))
        self.opened = True
        return len(lines)

    def close(self) -> None:
        self.sink.write(b"\n]\n" if self.opened else b"[]\n")


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


extra_commands = [submit, follow, results]
# Until the generated batches group can take hand-written verbs, they hang off this group of their own.
for _extra in extra_commands:
    batches.add_command(_extra)
