"""The one poller of a job, file or background response: the pause between two polls, never past
--timeout, the backoff that resets when what is watched changes, which errors only pause the loop, and
the exit code for the way the job ended."""

import time

from oaicli.core.errors import ApiError, ExitCode, NetworkError, OaicliError


def pause(deadline: float | None, delay: float, sleep, pending: str, hint: str) -> None:
    """Sleep `delay` before the next poll, but not past `deadline` (a time.monotonic() value, or None for
    no limit). Once the deadline has passed: exit 8 with "<pending> after the --timeout." and `hint`."""
    expire(deadline, pending, hint)
    sleep(delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic())))


def expire(deadline: float | None, pending: str, hint: str) -> None:
    """Once `deadline` has passed: exit 8 with "<pending> after the --timeout." and `hint`."""
    if deadline is not None and time.monotonic() >= deadline:
        raise OaicliError(f"{pending} after the --timeout.", hint, exit_code=ExitCode.TIMEOUT)


class Backoff:
    """The delay before the next poll: `low` again whenever the watched state changes, else grown by
    `factor` up to `high`. `last` is the state seen last (None before the first)."""

    def __init__(self, low: float, high: float, factor: float = 1.5):
        self.low, self.high, self.factor = low, high, factor
        self.delay, self.last = low, None

    def saw(self, state, changed: bool = False) -> bool:
        """Note one poll's state (`changed` forces a reset, e.g. new events); whether it changed."""
        changed = changed or state != self.last
        self.delay = self.low if changed else min(self.delay * self.factor, self.high)
        self.last = state
        return changed


def passing(exc: Exception) -> bool:
    """Whether a poll's error only pauses the loop: a network error, 408, 429 or 5xx (after the client's
    own retries). Any other API error is final."""
    return isinstance(exc, NetworkError) or (isinstance(exc, ApiError) and (exc.status >= 500
                                                                           or exc.status in (408, 429)))


def ended(status: str | None, messages: dict[str, str]) -> None:
    """Raise the documented exit code for the way a job ended: "failed" exits 6, any other status in
    `messages` (cancelled, expired, incomplete) exits 7, each with its message; any other status returns."""
    if status in messages:
        code = ExitCode.JOB_FAILED if status == "failed" else ExitCode.JOB_CANCELLED
        raise OaicliError(messages[status], exit_code=code)
