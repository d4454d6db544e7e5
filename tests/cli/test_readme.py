"""The README's shell snippets marked `<!-- runnable -->` run, as written, against the loopback fake."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, assert_no_key

MARKED = re.compile(r"<!-- runnable -->\n```(?:sh|bash)\n(.*?)```", re.S)
SNIPPETS = MARKED.findall((REPO / "README.md").read_text(encoding="utf-8"))


def test_the_readme_marks_snippets():
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.splitlines()[0][:40] for s in SNIPPETS])
def test_snippet_runs(snippet, fake, tmp_path):
    for tool in ("jq", "grep"):
        if re.search(rf"\b{tool}\b", snippet) and not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    # The files the snippets name, as a reader following along would have them.
    (tmp_path / "train.jsonl").write_text("".join(
        f'{{"messages": [{{"role": "user", "content": "Q{n}"}}, {{"role": "assistant", "content": "A{n}"}}]}}\n'
        for n in range(3)))
    (tmp_path / "docs").mkdir()
    for name, text in (("refunds.md", "Refunds take five days."), ("shipping.md", "We ship worldwide.")):
        (tmp_path / "docs" / name).write_text(text)
    (tmp_path / "requests.jsonl").write_text("".join(
        f'{{"custom_id": "r{n}", "method": "POST", "url": "/v1/chat/completions", '
        f'"body": {{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Q{n}"}}]}}}}\n'
        for n in range(3)))
    bin_dir = Path(sys.executable).parent  # `oaicli` as the README's reader has it: the installed script
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", snippet], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)  # a hang guard only
    assert result.returncode == 0, f"{snippet}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Error" not in result.stderr
    assert_no_key(result.stdout, result.stderr)


def test_the_first_command_installs_with_pipx_and_nothing_suggests_the_other_pypi_project():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)```", readme, re.S).group(1).strip()
    # a fresh Debian or Ubuntu refuses pip into the system Python (externally-managed-environment)
    assert first == "sudo apt install -y pipx && pipx install . && ~/.local/bin/oaicli --help"
    sources = [readme, *(p.read_text(encoding="utf-8") for p in (REPO / "man").glob("*.1")),
               *(p.read_text(encoding="utf-8") for p in (REPO / "oaicli").rglob("*.py"))]
    for text in sources:  # `oaicli` on PyPI is someone else's package
        assert not re.search(r"pip3? install\s+['\"]?oaicli", text)
