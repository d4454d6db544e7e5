"""Locks that serialize work on one session: a per-session mutex for the threads of one process, and a lock
between processes (see Store.exclusive): one byte of a shared lock file per session where the system has
open-file-description locks (Linux), else an flock'ed file per session."""

import hashlib
import os
import struct
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


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


class ByteLocks:
    """Locks between processes as one byte each of ONE lock file, at an offset hashed from the session name:
    taking and releasing one is a single fcntl call on a file kept open, where a file per session cost an
    open, a stat and an unlink, journaled metadata writes that stalled serve's event loop on a busy disk.
    Open-file-description (OFD) locks belong to this open file, not to the process: released when it is
    closed or the process dies, and never dropped by closing another descriptor of the file. Two names
    whose offsets collide only wait for each other, which is harmless."""

    FILE_NAME = "sessions.lock"

    def __init__(self, folder: Path):
        self.folder = folder
        self._handle = None
        self._pid = None
        self._guard = threading.Lock()

    @staticmethod
    def supported() -> bool:
        return fcntl is not None and hasattr(fcntl, "F_OFD_SETLK")

    def lock(self, name: str) -> "ByteLock":
        return ByteLock(self, int(digest(name)[:15], 16))  # 60 bits: offset + 1 never overflows off_t

    def fileno(self) -> int:
        """The lock file, opened by this process: a forked child opens its own, since sharing the parent's
        open file would share its locks, and neither would keep the other out."""
        with self._guard:
            if self._handle is None or self._pid != os.getpid():
                self.folder.mkdir(parents=True, exist_ok=True)
                self._handle = open(os.open(self.folder / self.FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
                self._pid = os.getpid()
            return self._handle.fileno()

    def close(self) -> None:
        with self._guard:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class ByteLock:
    """One session's byte in ByteLocks' file; the same interface as FileLock."""

    def __init__(self, locks: ByteLocks, offset: int):
        self.locks = locks
        self.offset = offset

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; with blocking=False, False at once when another holds it."""
        try:
            self._set(fcntl.F_WRLCK, fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held by another open file
            return False
        return True

    def release(self) -> None:
        self._set(fcntl.F_UNLCK, fcntl.F_OFD_SETLK)

    def _set(self, kind: int, command: int) -> None:
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0, as OFD locks require), native layout.
        fcntl.fcntl(self.locks.fileno(), command, struct.pack("hhqqi4x", kind, os.SEEK_SET, self.offset, 1, 0))
