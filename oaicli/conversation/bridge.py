"""Plain (blocking-style) code run on an asyncio loop, awaiting where it would block: `run_awaiting(f, ...)`
runs f in a greenlet of the loop's own thread, and inside it `wait_for(awaitable)` hands the awaitable to the
loop and returns its result. No thread: the store's SQL layer, written once as plain calls, runs over
psycopg's async connections (the same way SQLAlchemy's asyncio extension drives its sync core)."""

import contextlib
import contextvars

import greenlet


class _Bridged(greenlet.greenlet):
    """A greenlet started by run_awaiting: only these may wait_for."""


async def run_awaiting(function, *args):
    """function(*args) on this thread; each awaitable it passes to wait_for is awaited here on the loop.
    It runs in a copy of the caller's context, so context variables set by the caller (the turn's held
    connection) are seen inside."""
    child = _Bridged(function)
    child.gr_context = contextvars.copy_context()
    request = child.switch(*args)
    while not child.dead:
        try:
            value = await request
        except BaseException as exc:  # noqa: B036 (cancellation too: the waiting code unwinds, then it goes on)
            request = child.throw(exc)
        else:
            request = child.switch(value)
    return request


def wait_for(awaitable):
    """Inside run_awaiting: the awaitable's result, awaited on the loop meanwhile."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("wait_for() is only possible inside run_awaiting()")
    return current.parent.switch(awaitable)


@contextlib.contextmanager
def entered(manager):
    """An async context manager used as a plain one inside run_awaiting."""
    value = wait_for(manager.__aenter__())
    try:
        yield value
    except BaseException as exc:
        if not wait_for(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        wait_for(manager.__aexit__(None, None, None))
