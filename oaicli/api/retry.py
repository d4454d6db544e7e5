"""The one retry policy: which failures are tried again, how long to wait first, and how many times.
Used by every API request and by the image downloads from result URLs."""

import random
import time
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUSES = {408, 409, 429, 500, 502, 503, 504}
MAX_HONOURED_RETRY_AFTER = 60.0


class RetryPolicy:
    """Up to `max_retries` more attempts after a retryable status or a network error, each after the
    wait the server asks for (Retry-After) or an exponential backoff with jitter."""

    def __init__(self, max_retries: int, sleep, notice=None):
        self.max_retries = max_retries
        self.sleep = sleep
        self.notice = notice  # says "Retrying in ..." (None: silently)

    def attempts(self):
        """(attempt number from 0, whether it is the last one)."""
        for attempt in range(self.max_retries + 1):
            yield attempt, attempt == self.max_retries

    @staticmethod
    def retries(status: int, last: bool) -> bool:
        return status in RETRYABLE_STATUSES and not last

    def wait(self, response: httpx.Response | None, attempt: int, why: str | None = None) -> None:
        self.sleep(self.pause(response, attempt, why))

    def pause(self, response: httpx.Response | None, attempt: int, why: str | None = None) -> float:
        """The seconds to wait before the next attempt, said in a notice; the async client awaits them."""
        delay = retry_delay(response, attempt)
        if why and self.notice:
            self.notice(f"Retrying in {delay:.1f}s: {why} (attempt {attempt + 2} of {self.max_retries + 1}).")
        return delay


def retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Honour retry-after-ms and Retry-After (seconds or a date) when sane; else backoff with jitter."""
    if response is not None:
        hinted = _retry_after(response.headers)
        if hinted is not None and 0 <= hinted <= MAX_HONOURED_RETRY_AFTER:
            return hinted
    base = min(0.5 * 2 ** attempt, 8.0)
    return base * (1 - 0.25 * random.random())


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())  # a past date: now
    except (TypeError, ValueError):
        return None
