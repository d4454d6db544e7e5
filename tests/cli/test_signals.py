"""A Ctrl-C or SIGTERM still ends oaicli when its handler is pending while the main thread sits in a blocking
call, and when its handler runs inside a __del__ or weakref callback, where Python drops the exception."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# The race, made certain: a signal that lands just before a blocking call leaves its handler pending (only
# a flag is set) while the call blocks. `_thread.interrupt_main` sets exactly that flag, without any
# signal to interrupt the call; a helper thread does it once the main thread is asleep in its read of a
# pipe nobody writes to (Linux shows a thread's current system call and its first argument, the fd, in
# /proc). Without oaicli's guard the read never returns and the child is killed at the timeout.
CHILD = r"""
import _thread, os, signal, sys, threading, time
from oaicli.cli import signals
if sys.argv[1] == "guarded":
    signals.never_lose_signals()
signals.unwind_on_sigterm()
number = getattr(signal, sys.argv[2])
read_end, _write_end = os.pipe()
where = f"/proc/self/task/{threading.get_native_id()}/syscall"

def pend_once_the_main_thread_blocks():
    give_up = time.monotonic() + 60
    while open(where).read().split()[1:2] != [hex(read_end)]:
        if time.monotonic() > give_up:
            os.write(1, b"never saw the main thread block\n")
            os._exit(3)
        time.sleep(0.01)
    os.write(1, b"pending\n")
    _thread.interrupt_main(number)

_thread.start_new_thread(pend_once_the_main_thread_blocks, ())
try:
    os.read(read_end, 1)
except KeyboardInterrupt:
    os.write(1, b"KeyboardInterrupt\n")
except SystemExit as exc:
    os.write(1, f"SystemExit {exc.code}\n".encode())
"""


def start_child(mode: str, signal_name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, signal_name], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not hasattr(signal, "SIGURG"),
                                reason="needs Linux's /proc to see the main thread block, and SIGURG")


@needs_proc
@pytest.mark.parametrize(("signal_name", "outcome"), [("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "SystemExit 143")])
def test_a_pending_signal_interrupts_a_blocked_main_thread(signal_name, outcome):
    child = start_child("guarded", signal_name)
    try:
        stdout, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert stdout.split() == ["pending", *outcome.split()] and child.returncode == 0, stderr


@needs_proc
def test_the_race_is_real_without_the_guard():
    """The same child, unguarded, stays blocked with its SIGINT pending: the test above proves the guard,
    not a lucky schedule. (Nothing could wake it: the pipe has no writer that writes.)"""
    child = start_child("unguarded", "SIGINT")
    try:
        assert child.stdout.readline() == "pending\n"
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1)
    finally:
        child.kill()
        child.communicate()


# The second way: a handler that runs inside a __del__ (or the weakref callback an import's module lock
# has, as when ^C lands during `import encodings.idna` in the first connect) raises where Python can only
# print "Exception ignored" and drop the exception. The child sets the flag inside a __del__ and makes the
# interpreter check it there (a loop's backward jump and a call both do); guarded, it then waits on a pipe
# nobody writes to, which only the signal delivered again can end.
DROPPED = r"""
import _thread, os, signal, sys
from oaicli.cli import signals
if sys.argv[1] == "guarded":
    signals.never_lose_signals()
signals.unwind_on_sigterm()
number = getattr(signal, sys.argv[2])

class Dropped:
    def __del__(self):
        _thread.interrupt_main(number)
        for _ in range(3):
            len("check the flag here")

read_end, _write_end = os.pipe()
try:
    Dropped()
    if sys.argv[1] == "guarded":
        os.read(read_end, 1)  # delivered again, the signal ends this wait
    os.write(1, b"lost\n")
except KeyboardInterrupt:
    os.write(1, b"KeyboardInterrupt\n")
except SystemExit as exc:
    os.write(1, f"SystemExit {exc.code}\n".encode())
"""


@pytest.mark.parametrize(("signal_name", "outcome"), [("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "SystemExit 143")])
def test_a_signal_whose_exception_python_drops_is_delivered_again(signal_name, outcome):
    result = subprocess.run([sys.executable, "-c", DROPPED, "guarded", signal_name], cwd=REPO, capture_output=True,
                            text=True, timeout=60)  # raises if the signal is lost: the wait never ends
    assert result.stdout.split() == outcome.split() and result.returncode == 0, result.stderr
    assert "Exception ignored" not in result.stderr  # delivered, not printed and dropped


def test_python_drops_it_without_the_guard():
    result = subprocess.run([sys.executable, "-c", DROPPED, "unguarded", "SIGINT"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split() == ["lost"] and "Exception ignored" in result.stderr


# The third way: a signal whose handler raised inside a context manager's __enter__ just after it took a
# lock (httpcore's ThreadLock does `self._lock.acquire()` in a Python __enter__) left the lock taken, since
# __exit__ only runs once __enter__ has returned: closing the client on the way out then waited for ever.
AT_THE_EDGE = r"""
import _thread, os, signal, sys, threading
from oaicli.cli import signals
if sys.argv[1] == "guarded":
    signals.never_lose_signals()
signals.unwind_on_sigterm()
number = getattr(signal, sys.argv[2])
lock = threading.Lock()

class Locked:
    def __enter__(self):
        lock.acquire()
        _thread.interrupt_main(number)  # as if the signal came during acquire(): the next check raises
        for _ in range(3):
            len("check the flag here")
        return self

    def __exit__(self, *exc):
        lock.release()

read_end, _write_end = os.pipe()
try:
    with Locked():
        os.read(read_end, 1)  # delivered past the edge, the signal ends this wait
except KeyboardInterrupt:
    os.write(1, b"KeyboardInterrupt\n")
except SystemExit as exc:
    os.write(1, f"SystemExit {exc.code}\n".encode())
os.write(1, b"lock still taken\n" if lock.locked() else b"lock released\n")
"""


@pytest.mark.parametrize(("signal_name", "outcome"), [("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "SystemExit 143")])
def test_a_signal_at_the_edge_of_a_with_statement_is_raised_inside_it(signal_name, outcome):
    result = subprocess.run([sys.executable, "-c", AT_THE_EDGE, "guarded", signal_name], cwd=REPO,
                            capture_output=True, text=True, timeout=60)  # raises if the signal is lost
    assert result.stdout.splitlines() == [outcome, "lock released"] and result.returncode == 0, result.stderr


def test_without_the_guard_the_lock_stays_taken():
    result = subprocess.run([sys.executable, "-c", AT_THE_EDGE, "unguarded", "SIGINT"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["KeyboardInterrupt", "lock still taken"]
