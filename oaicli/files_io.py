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
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    try:
        with open(temporary, mode) as sink:
            yield sink
            sink.flush()
            if durable:
                os.fsync(sink.fileno())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
