"""Ctrl-C and SIGTERM are never lost: a signal that lands just before a blocking call, or whose exception
Python drops (raised in a __del__ or weakref callback), is delivered again."""

import _thread
import os
import signal
import sys
import time

from oaicli.core.errors import ExitCode

# CPython runs a Python signal handler only between bytecodes: the C-level handler just sets a flag, and a
# blocking system call already under way is interrupted (EINTR) so that the flag is seen. A signal that
# lands after the last check but before the call begins (between writing `> GET ...` and the socket read of
# an answer the server holds) only sets the flag, and the call then blocks until the server answers,
# minutes later: ^C was echoed and nothing happened, in 2 of 100 runs on a loaded machine.
#
# The remedy: Python writes the number of every signal it catches to a wake-up pipe. A thread reading that
# pipe pokes the main thread with a harmless signal until the poke's own handler has run. A poke that finds
# the main thread in a system call interrupts it; and once the poke's handler has run, the pending SIGINT or
# SIGTERM handler has run too (CPython runs pending handlers in order of signal number, and SIGURG's is
# higher). SIGURG is ignored by default and oaicli never asks for urgent socket data: a poke that arrives
# after Python removed the handler at exit does nothing. (Go's runtime preempts goroutines with it for the
# same reasons.)
POKE = getattr(signal, "SIGURG", None)
WATCHED = frozenset({signal.SIGINT, signal.SIGTERM})
POKE_INTERVAL = 0.05  # seconds between pokes while the main thread has not run its handlers

AGAIN = 128  # added to a signal's number on the wake-up pipe: "deliver it again"

# The third way: the exception raised in a context manager's __enter__ just after it took a lock (httpcore's
# ThreadLock: `self._lock.acquire()`, then the check where ^C raised) leaves the lock taken, since __exit__
# is only called once __enter__ has returned; closing the client on the way out then waited for that lock
# for ever. So the handlers do not raise inside __enter__ or __exit__ (nor a function they call directly,
# as a @contextmanager generator is): they have the signal delivered again, and it raises at the next check,
# past the edge. A bounded number of times, so that one that waits for long there is still interrupted.
WITH_EDGES = frozenset({"__enter__", "__exit__"})
MAX_DEFERRALS = 20

_pokes_handled = 0  # a counter, not an Event: a handler must not take a lock (a second poke re-enters it)
_installed = False
_wake_end = -1
_deferrals = 0
_in_unraisable_hook = False  # the watcher may set a flag again before _deliver_again returns


def unwind_on_sigterm() -> None:
    """CI runners stop a cancelled job with SIGTERM, which by default kills Python on the spot. Unwinding
    instead, as Ctrl-C does, lets a download remove its temporary file and a multipart upload cancel
    itself; the exit code is the shell's for a TERM, 143. `serve` installs its own graceful handler over it."""
    def stop():
        raise SystemExit(ExitCode.TERMINATED)
    try:
        signal.signal(signal.SIGTERM, _past_with_edges(stop))
    except ValueError:  # not the main thread (a command invoked from a test's worker thread)
        pass


def never_lose_signals() -> None:
    """In the real process's main thread, before any command runs. Where the platform lacks what it needs
    (no SIGURG or pthread_kill: Windows), Python's own behaviour stays."""
    global _installed, _wake_end
    if _installed or POKE is None or not hasattr(signal, "pthread_kill"):
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd requires it; a full pipe drops a byte, never blocks
    try:
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(read_end)
        os.close(write_end)
        return
    signal.signal(POKE, _count_poke)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with ^C ignored
        signal.signal(signal.SIGINT, _past_with_edges(_keyboard_interrupt))
    _thread.start_new_thread(_watch, (read_end, _thread.get_ident()))
    _wake_end = write_end
    sys.unraisablehook = _deliver_again
    _installed = True


def _keyboard_interrupt():
    raise KeyboardInterrupt


def _past_with_edges(raise_it):
    """A signal handler that raises (with `raise_it`) anywhere but at the edge of a with statement."""
    def handler(signum, frame):
        global _deferrals
        if _deferrals < MAX_DEFERRALS and _wake_end >= 0 and (_in_unraisable_hook or _at_a_with_edge(frame)):
            _deferrals += 1
            _deliver_later(signum)
            return
        _deferrals = 0
        raise_it()
    return handler


def _at_a_with_edge(frame) -> bool:
    return any(f is not None and f.f_code.co_name in WITH_EDGES for f in (frame, frame and frame.f_back))


def _deliver_later(number: int) -> None:
    """Have the watcher set the signal's flag again, from its own thread."""
    try:
        os.write(_wake_end, bytes([AGAIN + number]))
    except OSError:  # the pipe is full of signal numbers: the watcher is behind, not gone
        pass


def _deliver_again(unraisable) -> None:
    """The second way a signal was lost: its handler ran inside a weakref callback or a __del__ (the module
    lock an import frees, when ^C lands during one), where Python can only print the KeyboardInterrupt as
    "Exception ignored" and drop it; oaicli then went on waiting. The watcher sets the signal's flag again
    instead (from here the handler would run inside this hook, and be dropped again), and the next check
    raises it where it can unwind; a blocking call is poked as above. The watcher can set the flag before
    this hook has returned, and a handler run in here would be dropped again (3 of 150 loaded runs hung so):
    while it runs, handlers defer as at a with statement's edge."""
    global _in_unraisable_hook
    dropped = _dropped_signal(unraisable)
    if dropped is None:
        sys.__unraisablehook__(unraisable)
        return
    _in_unraisable_hook = True
    _deliver_later(dropped)
    _in_unraisable_hook = False


def _dropped_signal(unraisable) -> int | None:
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        return signal.SIGINT
    if issubclass(unraisable.exc_type, SystemExit) and getattr(unraisable.exc_value, "code", None) == \
            ExitCode.TERMINATED:
        return signal.SIGTERM
    return None


def _count_poke(_signum, _frame) -> None:
    global _pokes_handled
    _pokes_handled += 1


def _watch(read_end: int, main_thread: int) -> None:
    """The watcher thread: for each SIGINT or SIGTERM Python caught, poke until its handler has run; for
    each one whose exception was dropped, set its flag again (which sends its number here once more)."""
    while True:
        received = os.read(read_end, 512)
        if not received:
            return
        for number in received:
            if number >= AGAIN:
                _thread.interrupt_main(number - AGAIN)
        if WATCHED.intersection(received):
            _poke_until_handled(main_thread)


def _poke_until_handled(main_thread: int) -> None:
    # Two handled pokes, not one: the first may be a poke of an earlier ^C still on its way, or have run in
    # the same pass over the pending handlers as the signal that arrived just behind the check of SIGINT's.
    enough = _pokes_handled + 2
    while _pokes_handled < enough:
        try:
            signal.pthread_kill(main_thread, POKE)
        except OSError:  # the main thread is gone: the process is exiting
            return
        time.sleep(POKE_INTERVAL)
