"""The one poller's pieces: the backoff, which errors only pause a loop, and the exit code of an ending."""

import pytest

from oaicli.api.polling import Backoff, ended, passing
from oaicli.core.errors import ApiError, ExitCode, InputError, NetworkError, OaicliError


def test_backoff_grows_while_nothing_changes_and_resets_on_a_change():
    backoff = Backoff(1.0, 4.0, factor=2.0)
    assert backoff.saw("queued") is True and backoff.delay == 1.0
    assert backoff.saw("queued") is False and backoff.delay == 2.0
    assert backoff.saw("queued") is False and backoff.delay == 4.0
    assert backoff.saw("queued") is False and backoff.delay == 4.0  # capped at `high`
    assert backoff.saw("running") is True and backoff.delay == 1.0
    assert backoff.last == "running"


def test_backoff_resets_when_told_something_changed():
    backoff = Backoff(1.0, 10.0)
    backoff.saw("running")
    backoff.saw("running")
    assert backoff.delay == 1.5
    assert backoff.saw("running", changed=True) is True and backoff.delay == 1.0


def test_backoff_first_state_none_is_no_change():
    backoff = Backoff(1.0, 10.0)
    assert backoff.saw(None) is False and backoff.delay == 1.5


@pytest.mark.parametrize("exc, pauses", [
    (NetworkError("down"), True),
    (ApiError(500, "boom"), True),
    (ApiError(503, "busy"), True),
    (ApiError(429, "slow down"), True),
    (ApiError(408, "timeout"), True),
    (ApiError(404, "gone"), False),
    (ApiError(401, "key"), False),
    (InputError("bad"), False),
])
def test_passing(exc, pauses):
    assert passing(exc) is pauses


@pytest.mark.parametrize("status, code", [
    ("failed", ExitCode.JOB_FAILED), ("cancelled", ExitCode.JOB_CANCELLED),
    ("expired", ExitCode.JOB_CANCELLED), ("incomplete", ExitCode.JOB_CANCELLED)])
def test_ended_raises_the_documented_code(status, code):
    messages = {"failed": "it failed", "cancelled": "c", "expired": "e", "incomplete": "i"}
    with pytest.raises(OaicliError) as caught:
        ended(status, messages)
    assert caught.value.exit_code == code and caught.value.message == messages[status]


@pytest.mark.parametrize("status", ["completed", "succeeded", None, "expired"])
def test_ended_returns_for_a_status_it_was_not_given(status):
    ended(status, {"failed": "f", "cancelled": "c"})
