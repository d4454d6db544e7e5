"""Fine-tuning across both APIs: which one a server offers, each one's paths, and following a job's events."""

import json
import time
from collections import Counter
from datetime import datetime
from typing import Iterator

import click

from oaicli.api.polling import Backoff, ended, passing, pause
from oaicli.core.errors import ApiError, ExitCode, InputError, NetworkError, OaicliError, redact
from oaicli.output.remembered import PerServer

TERMINAL = {"succeeded", "failed", "cancelled"}
EVENTS_PAGE = 100
MIN_DELAY, MAX_DELAY = 1.0, 15.0
REQUEST_TIMEOUT = 30.0


class JobsApi:
    """The current API, /v1/fine_tuning/jobs: event ids, newest-first pages, `after` cursors."""

    name = "jobs"
    base = "/fine_tuning/jobs"

    def list_jobs(self, api, limit, fetch_all, after=None) -> dict:
        return api.list_all(self.base, {"limit": limit, "after": after}, fetch_all=fetch_all)

    def events(self, api, job_id, limit, fetch_all, after=None) -> list[dict]:
        page = api.list_all(f"{self.base}/{job_id}/events", {"limit": limit, "after": after}, fetch_all=fetch_all)
        return list(reversed(page["data"]))

    def tracker(self):
        return set()

    def new_events(self, api, job_id: str, seen: set, timeout=None, stream_timeout=None) -> list[dict]:
        """Re-read the newest page; page back with `after` only while a whole page is new."""
        fresh, params, fresh_ids = [], {"limit": EVENTS_PAGE}, set()
        while True:
            page = api.get(f"{self.base}/{job_id}/events", params=params, timeout=timeout)
            items = page.get("data", [])
            for event in items:
                if event.get("id") in seen or event.get("id") in fresh_ids:  # a server repeating a page
                    return self._mark(fresh, seen)
                fresh.append(event)
                fresh_ids.add(event.get("id"))
            if not page.get("has_more") or not items:
                return self._mark(fresh, seen)
            params = {"limit": EVENTS_PAGE, "after": items[-1]["id"]}

    def listed_events(self, api, job_id: str, seen: set, timeout=None) -> list[dict]:
        return self.new_events(api, job_id, seen, timeout=timeout)  # already plain reads, no stream

    @staticmethod
    def _mark(fresh: list[dict], seen: set) -> list[dict]:
        seen.update(event.get("id") for event in fresh)
        return list(reversed(fresh))


class LegacyApi:
    """The 2023 API, /v1/fine-tunes: the whole event list, oldest first, events without ids."""

    name = "legacy"
    base = "/fine-tunes"

    def list_jobs(self, api, limit, fetch_all, after=None) -> dict:
        return api.get(self.base)

    def events(self, api, job_id, limit, fetch_all, after=None) -> list[dict]:
        return api.get(f"{self.base}/{job_id}/events").get("data", [])

    def tracker(self):
        return Counter()

    def new_events(self, api, job_id: str, seen: Counter, timeout=None, stream_timeout=None) -> Iterator[dict]:
        """The event stream (`?stream=true`): every event so far, then each as it happens until the job
        ends. A server without the stream answers with the list, which works the same, as a poll.

        Events have no ids: they are told apart by time and message, and an identical pair counts as
        seen once per copy, so a stream that replays from the start after a reconnect prints nothing twice."""
        counts = Counter()
        for item in api.stream_events(f"{self.base}/{job_id}/events", None, method="GET",
                                      params={"stream": "true"}, timeout=stream_timeout):
            yield from self._unseen(item["data"] if isinstance(item.get("data"), list) else [item], counts, seen)

    def listed_events(self, api, job_id: str, seen: Counter, timeout=None) -> list[dict]:
        """The whole list without the stream: the catch-up once the job has ended while its stream kept dropping."""
        return list(self._unseen(self.events(api, job_id, None, False), Counter(), seen))

    @staticmethod
    def _unseen(events, counts: Counter, seen: Counter) -> Iterator[dict]:
        for event in events:
            key = (event.get("created_at"), event.get("message"))
            counts[key] += 1
            if counts[key] > seen[key]:
                seen[key] += 1
                yield event


APIS = {"jobs": JobsApi(), "legacy": LegacyApi()}


REMEMBERED = PerServer("fine_tune_api.json")


def choose(api, requested: str, job_id: str | None = None):
    """--api: legacy or jobs as asked; auto goes by the job id's prefix, else by what the server offers."""
    if requested != "auto":
        return APIS[requested]
    if job_id and job_id.startswith("ftjob-"):
        return APIS["jobs"]
    if job_id and job_id.startswith("ft-") and not job_id.startswith("ft:"):
        return APIS["legacy"]
    base_url = api.settings.base_url.rstrip("/")
    known = REMEMBERED.get(base_url)
    if known in APIS:
        return APIS[known]
    name = _probe(api)
    REMEMBERED.set(base_url, name)
    return APIS[name]


def _probe(api) -> str:
    for name, path in (("jobs", "/fine_tuning/jobs"), ("legacy", "/fine-tunes")):
        try:
            api.get(path, params={"limit": 1} if name == "jobs" else None)
            return name
        except ApiError as exc:
            if exc.status not in (404, 405):
                raise
    raise OaicliError("This server offers neither /fine_tuning/jobs nor /fine-tunes.",
                      "Check --base-url.", exit_code=ExitCode.REQUEST)


def event_line(event: dict) -> str:
    when = datetime.fromtimestamp(event.get("created_at") or 0).strftime("%Y-%m-%d %H:%M:%S")
    return f"[{when}] {event.get('message', '')}"


def follow(api, flavour, job_id: str, emit, deadline: float | None, sleep=time.sleep) -> dict:
    """Print each event once, oldest first, until the job ends; back off while nothing changes.

    Network errors, 429 and 5xx (after the client's own retries) only pause the loop: the events
    already seen are remembered, so nothing prints twice when the connection comes back. The job's
    status is read before each (re)connect, so a job that ended while its event stream kept dropping
    still ends the loop, after a plain read of the events not printed yet."""
    from oaicli.output import writers as output
    seen, backoff, plain = flavour.tracker(), Backoff(MIN_DELAY, MAX_DELAY, factor=1.6), False
    while True:
        # A poll waits at most 30 s; a stream may rightly stay quiet for long, up to the deadline.
        stream_timeout = None if deadline is None else max(1.0, deadline - time.monotonic())
        timeout = REQUEST_TIMEOUT if deadline is None else min(REQUEST_TIMEOUT, stream_timeout)
        lost, job, fresh = None, None, 0
        try:
            job = api.get(f"{flavour.base}/{job_id}", timeout=timeout)
            events = flavour.listed_events(api, job_id, seen, timeout=timeout) if plain else \
                flavour.new_events(api, job_id, seen, timeout=timeout, stream_timeout=stream_timeout)
            for event in events:
                emit(event)
                fresh += 1
        except (NetworkError, ApiError) as exc:
            if not passing(exc):
                raise
            lost = exc
        status = job.get("status") if job else backoff.last
        if status in TERMINAL and lost is None:
            return job
        # The job has ended but its events were cut off: read the rest as a plain list, as a stream
        # of an ended job may keep breaking at the same place.
        plain = job is not None and status in TERMINAL
        backoff.saw(status, changed=bool(fresh))
        if lost is not None:
            # The server's own error text, which may quote the key: redacted even without -v.
            output.notice(redact(f"Lost contact with the server ({lost.message.rstrip('.')}); "
                                 f"trying again in {backoff.delay:.0f}s."))
        pause(deadline, backoff.delay, sleep, f"Job {job_id} is still {status or 'unreachable'}",
              f"Resume with `oaicli fine-tunes follow {job_id}`.")


def outcome(job: dict) -> None:
    """Raise the documented exit code for a failed or cancelled job."""
    job_id, error = job.get("id"), job.get("error") or {}
    reason = error.get("message") if isinstance(error, dict) else None
    ended(job.get("status"), {"failed": f"Fine-tuning job {job_id} failed: {reason or 'no reason given'}.",
                              "cancelled": f"Fine-tuning job {job_id} was cancelled."})


def interrupted(job_id: str, say) -> None:
    """After Ctrl-C: `say` (a line on stderr) how to resume or cancel, then exit 130."""
    say(f"\nStopped following {job_id}; the job goes on.\n"
        f"  Resume: oaicli fine-tunes follow {job_id}\n"
        f"  Cancel: oaicli fine-tunes cancel {job_id}")
    raise click.exceptions.Exit(ExitCode.INTERRUPTED)


def parse_value(text: str):
    """A KEY=VALUE value: JSON when it parses (numbers, true, lists), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def pairs(values: tuple[str, ...], option: str) -> dict:
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} expects KEY=VALUE, got {item!r}.")
        result[key] = value
    return result
