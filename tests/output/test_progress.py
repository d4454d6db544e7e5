"""Progress bars and the lines printed while one is on screen."""

import io
import re
import sys

import httpx

from oaicli.api.client import ApiClient
from oaicli.core.invocation import Invocation, activate
from oaicli.core.settings import Settings
from oaicli.output.progress import count_bar, progress_bar
from tests.conftest import TEST_KEY


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def invocation_on(stream, handler) -> Invocation:
    settings = Settings({"api_key": TEST_KEY, "base_url": "http://127.0.0.1:9/v1"})
    invocation = Invocation(settings, lambda inv: ApiClient(inv.settings, transport=httpx.MockTransport(handler),
                                                            sleep=lambda seconds: None, echo=inv.say),
                            stderr=stream)
    activate(invocation)
    return invocation


def busy_then_ok():
    answers = iter([httpx.Response(503, json={"error": {"message": "busy"}}), httpx.Response(200, content=b"x" * 10)])
    return lambda request: next(answers)


def segments(text: str) -> list[str]:
    """What each redraw leaves: tqdm moves back with \\r, lines end with \\n."""
    return re.split(r"[\r\n]", text)


def test_a_retry_notice_during_a_download_bar_gets_a_line_of_its_own(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    invocation = invocation_on(terminal, busy_then_ok())
    try:
        with progress_bar(10, "results.jsonl") as bar:
            bar.refresh()
            invocation.client().download("/files/f/content", io.BytesIO(), bar)
        notice = [s for s in segments(terminal.getvalue()) if "Retrying" in s]
        # Written straight to stderr, the notice would follow the bar's text on the bar's line.
        assert len(notice) == 1 and notice[0].startswith("Retrying in ") and "results.jsonl" not in notice[0]
        assert "results.jsonl" in terminal.getvalue().split("Retrying")[1]  # the bar is drawn again below it
        assert invocation.write_above_bar is None  # once the bar is gone, lines go straight to stderr
    finally:
        activate(None)


def test_a_notice_under_a_count_bar_on_the_invocation_s_stream(monkeypatch):
    terminal = Terminal()
    invocation = invocation_on(terminal, busy_then_ok())
    try:
        with count_bar("Batch", "req", terminal) as bar:
            bar.total, bar.n = 10, 4
            bar.refresh()
            invocation.notice("Saved batch_1.output.jsonl.")
        assert "Saved batch_1.output.jsonl." in segments(terminal.getvalue())
        invocation.notice("after")
        assert terminal.getvalue().endswith("after\n")
    finally:
        activate(None)
