"""Progress bars on stderr: tqdm only when stderr is a terminal and --quiet is not given."""

import contextlib
import sys

from oaicli.core.invocation import active


class _NoBar:
    n = 0

    def update(self, amount: int) -> None:
        self.n += amount

    def reset(self, total=None) -> None:
        self.n = 0


def bars_enabled() -> bool:
    invocation = active()
    return sys.stderr.isatty() and not (invocation and invocation.quiet)


@contextlib.contextmanager
def progress_bar(total: int | None, label: str):
    """A byte-counting bar (bytes, rate, ETA), redrawn at most ten times a second."""
    if not bars_enabled():
        yield _NoBar()
        return
    from tqdm import tqdm
    # A terminal that reports a 0x0 size (a fresh pty, some CI runners) would get no bar at all.
    sized = _columns() > 0
    with tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
              mininterval=0.1, file=sys.stderr, leave=True, dynamic_ncols=sized,
              ncols=None if sized else 80, nrows=None if sized else 24) as bar, _lines_above(sys.stderr):
        yield bar


@contextlib.contextmanager
def count_bar(label: str, unit: str, stream=None):
    """A bar of things done out of a total that may change (a batch's requests): the caller sets `total`
    and `n`, the description and postfix, then calls refresh(). Shown on `stream` (stderr by default)."""
    from tqdm import tqdm
    stream = stream or sys.stderr
    with tqdm(total=None, desc=label, unit=unit, file=stream, leave=True,
              dynamic_ncols=_columns() > 0, ncols=None if _columns() > 0 else 80) as bar, _lines_above(stream):
        yield bar


@contextlib.contextmanager
def _lines_above(stream):
    """While the bar is open, the active invocation's lines (notices, retries) go through tqdm.write,
    which clears the bars on `stream`, writes the line and draws them again below it."""
    from tqdm import tqdm
    invocation = active()
    if invocation is None:
        yield
        return
    previous = invocation.write_above_bar
    invocation.write_above_bar = lambda text: tqdm.write(text, file=stream)
    try:
        yield
    finally:
        invocation.write_above_bar = previous


def _columns() -> int:
    import os
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0
