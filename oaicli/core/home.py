"""Why oaicli's config and data folder (OAICLI_HOME) cannot be written: one message for the session
store, the keys and the config, instead of advice that does not fit (such as moving a file aside)."""

import errno
import os
from pathlib import Path

from oaicli.core.errors import ConfigError


def unwritable(path: Path, exc: BaseException) -> ConfigError | None:
    """A ConfigError (exit 3) saying that `path` (a file in the folder, or the folder) cannot be written
    because it is read-only, or None when that is not why `exc` happened."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return None
    read_only_fs = getattr(exc, "errno", None) == errno.EROFS or _read_only_fs(existing)
    if not read_only_fs and os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        return None
    why = "is on a read-only file system" if read_only_fs else "is not writable (permission denied)"
    return ConfigError(f"Cannot write {path}: {'it' if existing == path else existing} {why}.",
                       "Set OAICLI_HOME to a writable folder, or make this one writable.")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows)
        return False
