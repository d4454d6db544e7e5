"""Shared fixtures: an isolated home directory, the loopback fake server, and ways to run oaicli."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fake.server import FakeOpenAI

# A shell starts a background job (`make test &` in a script, some CI runners) with SIGINT ignored, and
# every process it starts inherits that, so the Ctrl-C tests' oaicli would never see the interrupt.
# A handler, unlike SIG_IGN, is reset to the default across exec: children get a normal Ctrl-C again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
TEST_KEY = "sk-test-0123456789abcdef0123456789abcdef"
CLEARED_ENV = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION",
               "OPENAI_PROJECT_ID", "OPENAI_API_TYPE", "OPENAI_API_VERSION", "OAICLI_PROFILE", "OAICLI_FORMAT",
               "OAICLI_TIMEOUT", "OAICLI_MAX_RETRIES", "OAICLI_DEBUG", "OAICLI_SERVE_TOKEN", "NO_COLOR",
               "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own OAICLI_HOME and a clean environment."""
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "oaicli-home"
    monkeypatch.setenv("OAICLI_HOME", str(path))
    return path


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC, so rendered timestamps are predictable."""
    import time
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def fake(monkeypatch):
    """The loopback fake, with OPENAI_BASE_URL and OPENAI_API_KEY pointing oaicli at it."""
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
        yield server


class Invoker:
    """Runs oaicli in-process through CliRunner; `obj` may inject an httpx transport and a sleep."""

    def __init__(self):
        self.obj = {"sleep": lambda seconds: None}

    def __call__(self, *args, input=None, env=None, **kwargs):
        from oaicli.cli.root import cli
        runner = CliRunner()
        result = runner.invoke(cli, [str(a) for a in args], input=input, env=env, obj=dict(self.obj), **kwargs)
        assert_no_key(result.stdout, result.stderr)
        return result


def assert_no_key(*outputs) -> None:
    """The API key is never printed, in any test: every run through `invoke` and `run_process` checks."""
    for text in outputs:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        assert TEST_KEY not in (text or ""), "the API key was printed"


@pytest.fixture
def invoke() -> Invoker:
    return Invoker()


def run_process(*args, input=None, env=None, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m oaicli` as a real process (for exit codes, pipes, signals and several processes)."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "oaicli", *map(str, args)], input=input, env=full_env,
                            capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)
    assert_no_key(result.stdout, result.stderr)
    return result


def run_process_bytes(*args: bytes, input: bytes | None = None, env=None, timeout=60) -> subprocess.CompletedProcess:
    """`python -m oaicli` with raw bytes for arguments and stdin, under a real UTF-8 locale (LANG=C.UTF-8
    decodes stdin strictly, unlike the C locale's surrogateescape): for input that is not UTF-8."""
    full_env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "oaicli", *args], input=input, env=full_env,
                            capture_output=True, timeout=timeout, cwd=REPO)
    assert_no_key(result.stdout, result.stderr)
    return result
