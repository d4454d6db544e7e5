"""The layers hold: import-linter checks that imports flow down the folders (pyproject.toml's contracts),
ruff lints the code, and only cli/ and commands/ read Click's current context."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_imports_flow_down_the_layers():
    result = run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_passes():
    result = run("ruff", "check", "--no-cache", "oaicli", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_cli_reads_clicks_current_context():
    """Engines get an explicit Invocation; Click's context is cli's business (and the commands')."""
    readers = sorted(str(path.relative_to(REPO)) for path in (REPO / "oaicli").rglob("*.py")
                     if re.search(r"get_current_context|find_root\(\)", path.read_text())
                     and path.relative_to(REPO / "oaicli").parts[0] not in ("cli", "commands"))
    assert readers == []
