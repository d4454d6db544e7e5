"""Local file helpers: atomic writes, so an interrupted command never leaves a partial file behind."""

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_writer(destination: Path, mode: str = "wb"):
    """Write to a hidden temporary file beside the destination; rename it into place only on success."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    try:
        with open(temporary, mode) as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
