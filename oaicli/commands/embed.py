"""`oaicli embed`: embeddings (/v1/embeddings) for texts, files of lines or JSONL, or standard input."""

import click

from oaicli.cli import completion, invocation
from oaicli.cli.options import InputFile, command
from oaicli.core.models import DEFAULT_MODELS

DEFAULT_MODEL = DEFAULT_MODELS["embed"]


def _output_path(ctx, param, value):
    if value is None:
        return None
    from pathlib import Path
    if Path(value).suffix.lower() not in (".npy", ".csv"):
        raise click.BadParameter(f"{value} must end in .npy or .csv.")
    return Path(value)


@command(None, "embed")
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@click.option("-i", "--input-file", type=InputFile(allow_dash=True),
              help="Read inputs from FILE, one per line (- for standard input).")
@click.option("--field", metavar="NAME", help="The input file is JSONL; embed each line's NAME field.")
@click.option("-m", "--model", shell_complete=completion.model_ids, help=f"Embedding model (default {DEFAULT_MODEL}).")
@click.option("--dimensions", type=click.IntRange(min=1), help="Shorter vectors (text-embedding-3 and later).")
@click.option("--encoding-format", type=click.Choice(["float", "base64"]), default="base64", show_default=True,
              help="How the API sends vectors: base64 (float32, 4x smaller, decoded here) or float JSON, printed back "
                   "as the server wrote it.")
@click.option("-c", "--concurrency", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Requests in flight at once.")
@click.option("--batch-size", type=click.IntRange(1, 2048), default=256, show_default=True,
              help="Inputs per request (also capped at 300,000 tokens, counted as bytes).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              callback=_output_path, help="Also write the vectors to FILE.npy or FILE.csv (then stdout stays empty).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Element type of a .npy output.")
@click.option("--batch", "use_batch", is_flag=True, help="Send the requests as one Batch API job (half price); "
              "prints the batch id, or with --wait writes the vectors as without --batch.")
@click.option("--wait", is_flag=True, help="With --batch: follow the batch and write the vectors.")
def embed(texts, input_file, field, model, dimensions, encoding_format, concurrency, batch_size, output, dtype,
          use_batch, wait):
    """Embed texts from arguments, a file or standard input.

    Each TEXT, each line of --input-file, or each line of standard input is one input.
    Large inputs are read as a stream, split into batches within the API's limits, sent
    --concurrency at a time (each batch retried on its own), and written in input order as
    they complete. Blank lines are skipped. --format jsonl prints {index, input, embedding}
    per line, json one array of those, table the index, an input preview, dimensions and norm.

    \b
    Example:
      oaicli embed "a red fox" "a brown dog" --format jsonl
      oaicli embed -i docs.jsonl --field text -m text-embedding-3-small -o vectors.npy
      oaicli embed --batch --wait -i docs.txt -o vectors.npy
    """
    from oaicli.media import embeddings
    from oaicli.output import writers as out
    if field and not input_file:
        raise click.UsageError("--field needs --input-file.")
    if wait and not use_batch:
        raise click.UsageError("--wait only applies with --batch.")
    if use_batch and output and not wait:
        # The vectors come back hours later, through `batches results` (JSONL): FILE would never be written.
        raise click.UsageError("-o FILE with --batch needs --wait (else collect the vectors later with "
                               "`oaicli batches results ID`).")
    if output:
        from oaicli.output.files import ready_file
        ready_file(output)
    body = {"model": model or invocation.current().settings.default_model("embed"),
            "encoding_format": encoding_format}
    if dimensions:
        body["dimensions"] = dimensions
    with _open_inputs(texts, input_file, field) as (inputs, total):
        source = _non_empty(embeddings.batches(inputs, max_inputs=batch_size))
        api = invocation.current().client()
        if use_batch:
            _as_batch(body, source, output, dtype, wait)
            return
        if output:
            count = _to_file(api, body, source, output, dtype, concurrency, total)
            out.notice(f"Wrote {count} embeddings to {output}.")
        else:
            _to_stdout(api, body, source, out.resolve_format(), concurrency, total)


def _as_batch(body, source, output, dtype, wait) -> None:
    from oaicli.jobs import batch_modes
    from oaicli.media import embeddings
    from oaicli.output import writers as out
    from oaicli.output.files import atomic_writer
    run = invocation.current()
    if not output:
        batch_modes.embed_batch(run, body, source, _stdout_writer(out.resolve_format()) if wait else None, wait,
                                embeddings.read_vectors)
        return
    with atomic_writer(output) as sink:
        writer = embeddings.file_writer(output, sink, dtype)
        count = batch_modes.embed_batch(run, body, source, writer, wait, embeddings.read_vectors, target=output)
    out.notice(f"Wrote {count} embeddings to {output}.")


def _non_empty(batches):
    """Fail before any request or file when there is nothing to embed."""
    import itertools

    from oaicli.core.errors import InputError
    first = next(batches, None)
    if first is None:
        raise InputError("Nothing to embed: every input was blank.")
    return itertools.chain([first], batches)


def _to_stdout(api, body, source, fmt, concurrency, total) -> int:
    from oaicli.media import embeddings
    writer = _stdout_writer(fmt)
    with _bar(total) as bar:
        count = embeddings.run(api, body, source, writer, concurrency, bar)
    writer.close()
    return count


def _stdout_writer(fmt: str):
    from oaicli.media import embeddings
    from oaicli.output import writers as out
    _say_if_slow()
    if fmt in ("jsonl", "json"):
        stdout = invocation.current().stdout
        stdout.flush()  # the writers print bytes: nothing written as text may come after them
        return (embeddings.JsonlWriter if fmt == "jsonl" else embeddings.JsonWriter)(stdout.buffer)
    return embeddings.TableWriter(lambda rows: out.write(out.table(rows, ["index", "input", "dimensions", "norm"])))


def _to_file(api, body, source, path, dtype, concurrency, total) -> int:
    from oaicli.media import embeddings
    from oaicli.output.files import atomic_writer
    if path.suffix.lower() == ".csv" or dtype == "float64":
        _say_if_slow()  # float32 .npy is as fast without numpy
    with atomic_writer(path) as sink, _bar(total) as bar:
        writer = embeddings.file_writer(path, sink, dtype)
        count = embeddings.run(api, body, source, writer, concurrency, bar)
        writer.close()
    return count


def _say_if_slow() -> None:
    from oaicli.media import embeddings
    from oaicli.output import writers as out
    if not embeddings.Matrix.fast:
        out.notice(embeddings.SLOWER_WITHOUT_NUMPY)


def _bar(total):
    import contextlib

    from oaicli.output.progress import progress_bar
    if total is None:  # a handful of TEXT arguments: no bar
        return contextlib.nullcontext(_Uncounted())
    return progress_bar(total or None, "Embedding")


class _Uncounted:
    def update(self, amount: int) -> None:
        pass


def _open_inputs(texts, input_file, field):
    import contextlib
    return contextlib.contextmanager(_inputs)(texts, input_file, field)


def _inputs(texts, input_file, field):
    """Yield the inputs as (text, bytes) pairs and their total size for the bar (0 when unknown,
    None for TEXT arguments); an input file stays open until the run ends."""
    import os
    import sys

    from oaicli.core.errors import InputError
    from oaicli.media import embeddings
    if texts:
        if input_file:
            raise click.UsageError("Give TEXT arguments or --input-file, not both.")
        yield ((text, len(text)) for text in texts if text.strip()), None
    elif input_file in (None, "-"):
        if input_file is None and sys.stdin.isatty():
            raise InputError("Nothing to embed: give TEXT arguments, --input-file, or pipe lines on stdin.")
        yield embeddings.lines_of(sys.stdin.buffer, field, "standard input"), 0
    else:
        try:
            handle = open(input_file, "rb")
        except OSError as exc:
            raise InputError(f"Cannot read {input_file}: {exc.strerror}.")
        with handle:
            yield embeddings.lines_of(handle, field, input_file), os.fstat(handle.fileno()).st_size
