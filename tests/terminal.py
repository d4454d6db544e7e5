"""Run `python -m oaicli` on a pseudo-terminal, as a person at a keyboard would, and answer its prompts."""

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time

from tests.conftest import REPO


def _own_terminal():
    """In the child: make the pty its controlling terminal, so /dev/tty (getpass) and ^C reach it."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TtyResult:
    def __init__(self, returncode: int, output: str):
        self.returncode = returncode
        self.output = output  # stdout and stderr together, as the terminal shows them


def run_tty(*args, env=None, answers=(), timeout=30.0, columns: int | None = None) -> TtyResult:
    """`answers` is a list of (text to wait for, what to type). Raises if the process outlives `timeout`.
    `columns` gives the terminal a size (a new pty has none, and tqdm draws no bar at width 0)."""
    master, slave = pty.openpty()
    if columns:
        import struct
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "oaicli", *map(str, args)], stdin=slave, stdout=slave,
                               stderr=slave, env={**os.environ, "TERM": "xterm", **(env or {})}, cwd=REPO,
                               start_new_session=True, preexec_fn=_own_terminal)
    os.close(slave)
    output, pending, answered_upto = b"", list(answers), 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                output += data
            if pending and pending[0][0].encode() in output[answered_upto:]:
                answered_upto = len(output)
                os.write(master, pending.pop(0)[1].encode())
            if process.poll() is not None and not ready:
                # It may have written its last lines between our select and its exit: read what is left.
                output += _drain(master)
                break
        else:
            raise TimeoutError(f"oaicli {' '.join(map(str, args))} still running; output so far: {output!r}")
        return TtyResult(process.wait(timeout=5), output.decode("utf-8", errors="replace"))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def _drain(master: int) -> bytes:
    """Whatever the exited child left in the terminal's buffer (the read ends at EIO once it is empty)."""
    left = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        left += data
    return left
