"""The one check of an input path (a file to upload, read or send): a missing, unreadable or folder path
is bad input, one line and exit 4, in every command."""

import os
from pathlib import Path

from oaicli.core.errors import InputError


def input_file(path, what: str = "File") -> Path:
    """`path` as a Path when it names a readable file; else InputError saying what is wrong with it."""
    file = Path(path)
    if file.is_dir():
        raise InputError(f"{path} is a directory, not a file.", "Give the path of a file inside it.")
    if not file.exists():
        raise InputError(f"{what} not found: {path}.")
    if not os.access(file, os.R_OK):
        raise InputError(f"Cannot read {path}: permission denied.")
    return file
