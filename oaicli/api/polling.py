"""The one deadline poller: the pause between two polls of a job or file, never past --timeout."""

import time

from oaicli.core.errors import ExitCode, OaicliError


def pause(deadline: float | None, delay: float, sleep, pending: str, hint: str) -> None:
    """Sleep `delay` before the next poll, but not past `deadline` (a time.monotonic() value, or None for
    no limit). Once the deadline has passed: exit 8 with "<pending> after the --timeout." and `hint`."""
    if deadline is not None and time.monotonic() >= deadline:
        raise OaicliError(f"{pending} after the --timeout.", hint, exit_code=ExitCode.TIMEOUT)
    sleep(delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic())))
