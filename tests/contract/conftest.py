"""The contract tier: Prism serves OpenAI's own OpenAPI specs and rejects (422) any request that does not
validate. Each spec gets one Prism process for the whole session; the tier skips with the reason when
Node, Prism (`make prism`) or the specs are missing."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_process

# The specs carried in the repo (openapi/README.md); OAICLI_SPECS may point at another copy of them.
SPECS = Path(os.environ.get("OAICLI_SPECS", REPO / "openapi"))
PRISM = REPO / ".prism" / "node_modules" / ".bin" / "prism"
SPEC_FILES = {"2023": "openai-openapi-2023-v1-patched.yaml", "current": "openai-openapi-current-v1-patched.yaml"}
START_TIMEOUT = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(spec: str) -> str | None:
    if not shutil.which("node"):
        return "Node.js is not installed, so Prism cannot run"
    if not PRISM.exists():
        return f"Prism is not installed at {PRISM}; run `make prism`"
    if not (SPECS / SPEC_FILES[spec]).exists():
        return f"the OpenAPI spec {SPECS / SPEC_FILES[spec]} is absent"
    return None


class PrismExited(RuntimeError):
    pass


class Prism:
    def __init__(self, spec: str, log_dir: Path, attempts: int = 3):
        self.spec = spec
        self.log = log_dir / f"prism-{spec}.log"
        for attempt in range(attempts):
            # A free port can be taken by another worker's server before Prism binds it; Prism then exits
            # printing its usage, so it gets a fresh port (seen once in a clean-clone run under -n 2).
            self.port = _free_port()
            self.process = subprocess.Popen(
                [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(self.port), str(SPECS / SPEC_FILES[spec])],
                stdout=self.log.open("w"), stderr=subprocess.STDOUT)
            try:
                self._wait_until_listening()
                return
            except PrismExited:
                if attempt == attempts - 1:
                    raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _wait_until_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if "Prism is listening" in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise PrismExited(f"Prism exited early: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Prism did not start within {START_TIMEOUT}s: {self.log.read_text()[-2000:]}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def run(self, *args, input=None, env=None, timeout=60):
        """Run oaicli as a process against this Prism. A 422 (invalid request) makes the command fail."""
        full_env = {"OPENAI_BASE_URL": self.url, "OPENAI_API_KEY": "sk-test", "OAICLI_FORMAT": "json", **(env or {})}
        return run_process(*args, input=input, env=full_env, timeout=timeout)


def _prism(spec: str, tmp_path_factory):
    reason = _missing(spec)
    if reason:
        pytest.skip(f"contract tier skipped: {reason}")
    server = Prism(spec, tmp_path_factory.mktemp(f"prism-{spec}"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prism_2023(tmp_path_factory):
    """Prism serving the 2023 spec (edits and legacy fine-tunes)."""
    yield from _prism("2023", tmp_path_factory)


@pytest.fixture(scope="session")
def prism_current(tmp_path_factory):
    """Prism serving the current (2026) spec."""
    yield from _prism("current", tmp_path_factory)


@pytest.fixture(params=["2023", "current"])
def prism(request):
    """Both specs, for commands both serve."""
    return request.getfixturevalue(f"prism_{request.param}")


def assert_valid(result):
    """The request validated (no 422) and the command succeeded."""
    assert "HTTP 422" not in result.stderr, result.stderr
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
