"""Checks that a result can be saved where the user asked, made before the request that pays for it."""

import os
from pathlib import Path

from oaicli.errors import InputError


def ready_directory(directory: Path) -> Path:
    """Create the folder (like mkdir -p) and check it is writable; one clear error otherwise."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"Cannot save into {directory}: part of that path is a file, not a folder.")
    except OSError as exc:
        raise InputError(f"Cannot save into {directory}: {exc.strerror or exc}.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"Cannot save into {directory}: permission denied.")
    return directory


def ready_file(path: Path) -> Path:
    """The folder of an output file is ready (see ready_directory)."""
    ready_directory(path.parent)
    return path
