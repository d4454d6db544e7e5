"""`--help` stays fast: it must not import the heavy libraries (checked in fresh processes, not timed)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("httpx", "httpcore", "tabulate", "tqdm", "sqlite3", "tiktoken", "oaicli.api.client")

# Runs `--help` for each command path in one fresh interpreter and reports, per path, the heavy
# modules imported so far: the first path that shows one is the culprit.
WALK = """
import json, sys
from oaicli.cli.root import cli
import click
heavy = %r
ctx = click.Context(cli)
def paths(command, prefix=()):
    yield prefix
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            yield from paths(command.get_command(ctx, name), prefix + (name,))
report = {}
for path in list(paths(cli)):
    cli.main([*path, "--help"], prog_name="oaicli", standalone_mode=False)
    report[" ".join(path)] = sorted(m for m in heavy if m in sys.modules)
sys.stderr.write("REPORT=" + json.dumps(report) + "\\n")
"""


def imported_modules(*args) -> set[str]:
    """The modules a real `python -X importtime -m oaicli ARGS` imports."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "oaicli", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage: oaicli" in result.stdout
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["models", "list", "--help"], ["-h"], ["models", "--help"]])
def test_help_does_not_import_heavy_modules(args):
    modules = imported_modules(*args)
    assert "click" in modules  # the measurement works
    assert sorted(m for m in HEAVY if m in modules) == []


def test_no_command_help_in_the_tree_imports_heavy_modules():
    result = subprocess.run([sys.executable, "-c", WALK % (HEAVY,)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert "REPORT=" in result.stderr, result.stderr[-3000:]
    report = json.loads(result.stderr.rsplit("REPORT=", 1)[1])
    assert "models list" in report and "" in report
    offenders = {path: modules for path, modules in report.items() if modules}
    assert offenders == {}, f"--help imported heavy modules (first offender first): {offenders}"


def test_a_command_imports_only_its_own_module():
    code = ("import sys\nfrom oaicli.cli.root import cli\n"
            "cli.main(['models', 'list', '--help'], prog_name='oaicli', standalone_mode=False)\n"
            "print(sorted(m for m in sys.modules if m.startswith('oaicli.commands.')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "['oaicli.commands.models']", result.stderr


def test_a_stateless_chat_loads_no_store_and_no_token_counter(fake):
    """The one-shot path (the most common call from scripts) opens no SQLite store and loads no encoding."""
    code = ("import sys\nfrom oaicli.cli.root import cli\n"
            "cli.main(['chat', 'hi'], prog_name='oaicli', standalone_mode=False)\n"
            "print(sorted(m for m in ('sqlite3', 'tiktoken', 'oaicli.conversation.store', 'oaicli.conversation.tokens')"
            " if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
