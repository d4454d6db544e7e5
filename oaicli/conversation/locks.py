"""Locks that serialize work on one session: a per-session mutex for the threads of one process, and an
flock'ed file for processes (see Store.exclusive)."""

import hashlib
import os
import threading
from pathlib import Path


def digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


class SessionMutex:
    """A per-(store, session) thread lock, dropped from the registry when nobody holds or awaits it,
    so a long-running server does not keep one lock per user ever seen."""

    _registry: dict = {}
    _guard = threading.Lock()

    def __init__(self, path: str, name: str):
        self.key = (path, name)

    def __enter__(self):
        with self._guard:
            entry = self._registry.setdefault(self.key, [threading.Lock(), 0])
            entry[1] += 1
        entry[0].acquire()
        self.entry = entry

    def __exit__(self, *exc):
        self.entry[0].release()
        with self._guard:
            self.entry[1] -= 1
            if self.entry[1] == 0:
                del self._registry[self.key]


class FileLock:
    """An exclusive flock on a lock file that is deleted on release.

    A waiter may end up locking a file that its holder just unlinked; it notices (the path no longer
    names the inode it locked) and tries again on the new file."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = None

    def __enter__(self):
        self.acquire()
        return self

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; with blocking=False, False at once when another holds it (serve's event loop
        must never block on it: it tries again after a short sleep)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path, "a+b")
            if not _lock_file(handle, blocking):
                handle.close()
                return False
            try:
                if os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                    self.handle = handle
                    return True
            except FileNotFoundError:
                pass
            _unlock_file(handle)
            handle.close()

    def __exit__(self, *exc):
        self.release()

    def release(self) -> None:
        try:
            if os.name != "nt":  # Windows cannot unlink an open file; the empty file stays
                self.path.unlink(missing_ok=True)
        finally:
            _unlock_file(self.handle)
            self.handle.close()


def _lock_file(handle, blocking: bool = True) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt
        while True:
            try:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
    import fcntl
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock_file(handle) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
