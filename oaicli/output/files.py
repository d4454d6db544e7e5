"""Local file helpers: atomic writes, so an interrupted command never leaves a partial file behind."""

import contextlib
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def atomic_writer(destination: Path, mode: str = "wb", durable: bool = True):
    """Write to a hidden temporary file beside the destination; rename it into place only on success.

    `durable` fsyncs before the rename (safe against power loss); a download that can simply be
    fetched again skips it, as curl and wget do: on a 1 GiB file it costs seconds."""
    destination = Path(destination)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    ready_directory(destination.parent)
    with _cannot_write(destination):
        sink = open(temporary, mode)
    try:
        with sink:
            yield sink
            sink.flush()
            if durable:
                os.fsync(sink.fileno())
        with _cannot_write(destination):
            _move_into_place(temporary, destination, durable)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _move_into_place(temporary: Path, destination: Path, durable: bool) -> None:
    """Rename the finished file to its name. A durable write keeps rename's atomic replace (the old file or
    the new one, always). A download that can be fetched again (not durable, like curl -o) removes the old
    file first: renaming over an existing file makes ext4 write the new file's blocks out inside rename()
    (its replace-via-rename safeguard, auto_da_alloc), 0.26-0.46 s for 1 GiB; the name is then absent for
    an instant, never half-written."""
    if not durable:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(destination)
    os.replace(temporary, destination)


def ready_directory(directory: Path) -> Path:
    """Create the folder (like mkdir -p) and check it is writable: called before a request whose result
    is to be saved there, so a bad -o costs nothing; one clear error (exit 4) otherwise."""
    directory = Path(directory)
    with _cannot_write(directory, "save into", is_folder=True):
        directory.mkdir(parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK | os.X_OK):
        from oaicli.core.errors import InputError
        raise InputError(f"Cannot save into {directory}: permission denied.")
    return directory


def ready_file(path: Path) -> Path:
    """The folder of an output file is ready (see ready_directory)."""
    ready_directory(Path(path).parent)
    return path


@contextlib.contextmanager
def _cannot_write(destination: Path, verb: str = "write", is_folder: bool = False):
    """A destination we cannot create (a file where a folder should be, a folder in its place) is bad
    input, one line and exit 4, not an unexpected error; errors while the caller writes are left alone."""
    try:
        yield
    except OSError as exc:
        from oaicli.core.errors import InputError
        folders = [*reversed(destination.parents), *([destination] if is_folder else [])]
        in_the_way = next((p for p in folders if p.exists() and not p.is_dir()), None)
        why = f"{in_the_way} is a file, not a folder" if in_the_way else exc.strerror or str(exc)
        raise InputError(f"Cannot {verb} {destination}: {why}.") from exc


@contextlib.contextmanager
def download_target(destination: Path | None):
    """Where a download goes: stdout's byte stream (after any text already written), or a file written
    atomically without fsync (a download can simply be fetched again, as curl and wget assume)."""
    if destination is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        return
    with atomic_writer(destination, durable=False) as sink:
        yield sink
