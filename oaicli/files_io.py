"""Local file helpers: atomic writes, so an interrupted command never leaves a partial file behind."""

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_writer(destination: Path, mode: str = "wb", durable: bool = True):
    """Write to a hidden temporary file beside the destination; rename it into place only on success.

    `durable` fsyncs before the rename (safe against power loss); a download that can simply be
    fetched again skips it, as curl and wget do: on a 1 GiB file it costs seconds."""
    destination = Path(destination)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    with _cannot_write(destination):
        destination.parent.mkdir(parents=True, exist_ok=True)
        sink = open(temporary, mode)
    try:
        with sink:
            yield sink
            sink.flush()
            if durable:
                os.fsync(sink.fileno())
        with _cannot_write(destination):
            os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _cannot_write(destination: Path):
    """A destination we cannot create (its folder is a file, a directory is in its place) is bad input,
    one line and exit 4, not an unexpected error; errors while the caller writes are left alone."""
    try:
        yield
    except OSError as exc:
        from oaicli.errors import InputError
        in_the_way = next((p for p in reversed(destination.parents) if p.exists() and not p.is_dir()), None)
        why = f"{in_the_way} is a file, not a folder" if in_the_way else exc.strerror or str(exc)
        raise InputError(f"Cannot write {destination}: {why}.") from exc
