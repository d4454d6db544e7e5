"""Docs: every command has a one-line summary and an example, man pages are fresh, completion works."""

import inspect
import os
import re
import shutil
import subprocess
import sys

import click
import pytest

from oaicli.cli import manpages
from oaicli.cli.root import cli
from tests.conftest import REPO

MAN_DIR = REPO / "man"


def subcommand(group: click.Group, name: str) -> click.Command:
    return group.get_command(click.Context(group), name)


def command_paths(command=cli, prefix=()):
    yield prefix
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            if not subcommand(command, name).hidden:
                yield from command_paths(subcommand(command, name), prefix + (name,))


PATHS = list(command_paths())


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "oaicli" for p in PATHS])
def test_help_has_a_one_line_summary_and_an_example(invoke, path):
    command = cli
    for name in path:
        command = subcommand(command, name)
    summary = inspect.cleandoc(command.help or "").split("\n\n")[0]  # the docstring's first paragraph
    assert summary and "\n" not in summary, f"the summary must be one line: {summary!r}"
    assert summary.endswith("."), summary
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert _unwrapped(summary) in _unwrapped(result.stdout)
    assert re.search(r"(?m)^\s+Example:\n\s+\S", result.stdout), f"no `Example:` block in {path} --help"


@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=[" ".join(p) for p in PATHS if p])
def test_help_lists_own_options_first_and_the_shared_ones_in_one_short_section(invoke, path):
    text = invoke(*path, "--help").stdout
    if "--api-key" not in text:  # a group: it lists its commands, which take the options
        return
    own, _, shared = text.partition("Global options (before or after the command; described in oaicli --help):")
    assert "Options:" in own and shared, text
    assert "--api-key KEY" not in own and "--api-key KEY" in shared and "-q, --quiet" in shared
    assert len(shared.strip().splitlines()) <= 4  # short: names only, described once in `oaicli --help`
    assert "API key (else OPENAI_API_KEY" not in text
    assert "API key (else OPENAI_API_KEY" in invoke("--help").stdout


def _unwrapped(text: str) -> str:
    """Text as one line: Click wraps help at spaces and after hyphens (`input-` / `items`)."""
    return re.sub(r"-\s+", "-", " ".join(text.split()))


def test_every_command_module_is_reachable():
    assert {"models", "keys", "config"} <= {p[0] for p in PATHS if p}
    assert ("models", "list") in PATHS


def test_man_pages_are_fresh():
    generated = manpages.generate()
    committed = {p.name: p.read_text(encoding="utf-8") for p in MAN_DIR.glob("oaicli*.1")}
    missing = sorted(set(generated) - set(committed))
    stale = sorted(n for n in generated if n in committed and committed[n] != generated[n])
    extra = sorted(set(committed) - set(generated))
    assert not (missing or stale or extra), (
        f"man/ is out of date (missing {missing}, stale {stale}, removed commands {extra}); run `make man`")


def test_man_pages_cover_the_tree_and_are_deterministic():
    pages = manpages.generate()
    assert "oaicli.1" in pages and "oaicli-models-list.1" in pages and "oaicli-models.1" in pages
    assert len(pages) == len(PATHS)
    assert pages == manpages.generate()
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", "".join(pages.values()))  # no generation date


def test_root_page_has_exit_codes_and_environment():
    page = manpages.generate()["oaicli.1"]
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS", "ENVIRONMENT"):
        assert f".SH {section}\n" in page
    exit_status = page.split(".SH EXIT STATUS")[1].split(".SH ")[0]
    assert re.findall(r"\\fB(\d+)\\fR", exit_status) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "130", "143"]
    assert "OPENAI_API_KEY" in page and "OAICLI_HOME" in page and "SSL_CERT_FILE" in page


def test_command_page_content():
    page = manpages.generate()["oaicli-models-list.1"]
    assert page.startswith('.TH "OAICLI-MODELS-LIST" "1" "" "oaicli')
    assert "oaicli\\-models\\-list \\- List the models the key can use\n" in page
    assert "\\fBoaicli models list\\fR [OPTIONS]" in page
    assert "\\fB\\-\\-all\\fR" in page
    own, _, shared = page.partition(".SH GLOBAL OPTIONS")  # as --help: own options, then the shared ones' names
    assert "api\\-key" not in own and "\\-\\-api\\-key KEY  \\-\\-base\\-url URL" in shared
    assert ".nf" in page and "Example:" in page


def test_escape():
    assert manpages.escape(".dot\n'quote\\ back-slash") == "\\&.dot\n\\&'quote\\e back\\-slash"


def test_write_removes_pages_of_vanished_commands(tmp_path):
    (tmp_path / "oaicli-gone.1").write_text("old")
    (tmp_path / "README").write_text("keep")
    names = manpages.write(tmp_path)
    assert not (tmp_path / "oaicli-gone.1").exists() and (tmp_path / "README").exists()
    assert sorted(p.name for p in tmp_path.glob("*.1")) == names


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
def test_pages_render_without_warnings(tmp_path):
    manpages.write(tmp_path)
    for page in ("oaicli.1", "oaicli-models-list.1"):
        result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(tmp_path / page)],
                                capture_output=True, text=True)
        assert result.returncode == 0 and result.stderr == "", result.stderr


def complete(words: str) -> list[str]:
    """What bash completion offers for the last word, via Click's protocol (as the sourced script asks)."""
    parts = words.split(" ")
    env = {**os.environ, "_OAICLI_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    result = subprocess.run([sys.executable, "-m", "oaicli"], env=env, capture_output=True, text=True, cwd=REPO,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_completion_offers_subcommands():
    offered = complete("oaicli mod")
    assert "models" in offered and all(name.startswith("mod") for name in offered)
    assert complete("oaicli models ") == ["delete", "get", "list"]
    assert "--format" in complete("oaicli models list --fo")


def test_completion_script_for_the_readme_line():
    env = {**os.environ, "_OAICLI_COMPLETE": "bash_source"}
    result = subprocess.run([sys.executable, "-m", "oaicli"], env=env, capture_output=True, text=True, cwd=REPO)
    assert "_oaicli_completion()" in result.stdout and "complete -o nosort -F _oaicli_completion oaicli" in \
        result.stdout
    assert 'eval "$(_OAICLI_COMPLETE=bash_source oaicli)"' in (REPO / "README.md").read_text()


def test_every_registered_command_has_the_name_it_is_listed_under():
    from oaicli.cli.root import LAZY_COMMANDS
    for name, path in LAZY_COMMANDS.items():
        command = subcommand(cli, name)
        assert command.name == name, f"{path} is listed as {name!r} but is named {command.name!r}"


def test_completion_offers_session_names_from_the_store_without_a_request(home, fake):
    from oaicli.conversation.store import Store
    with Store.open(home / "sessions.db") as store:
        for name in ("trip", "travel", "work"):
            store.import_messages(name, [{"role": "user", "content": "hi"}])
    assert sorted(complete("oaicli sessions show tr")) == ["travel", "trip"]  # OAICLI_HOME is `home`
    assert sorted(complete("oaicli chat --session w")) == ["work"]
    assert fake.requests == []


def test_completion_offers_model_ids_that_models_list_saw(home, fake, invoke):
    assert complete("oaicli chat -m gpt") == []  # nothing cached yet, and no request made for it
    assert fake.requests == []
    assert invoke("models", "list", "--format", "json").exit_code == 0
    offered = complete("oaicli chat -m gpt")
    assert offered and set(offered) <= {m["id"] for m in fake.state["models"]}
    assert all(model.startswith("gpt") for model in offered)
    assert complete("oaicli models get ") == sorted(m["id"] for m in fake.state["models"])
    assert len(fake.requests) == 1  # only the list itself


def test_completion_of_names_creates_no_store(home):
    assert complete("oaicli sessions show ") == []
    assert not home.exists()


def test_completion_covers_generated_groups_verbs_and_enum_values():
    assert complete("oaicli vector-st") == ["vector-stores"]
    assert complete("oaicli vector-stores files ") == ["content", "create", "delete", "get", "list", "update"]
    assert "/v1/embeddings" in complete("oaicli batches create --endpoint ")
    assert complete("oaicli admin usage completions --bucket-width ") == ["1m", "1h", "1d"]


def test_man_pages_cover_generated_commands():
    page = (MAN_DIR / "oaicli-vector-stores-create.1").read_text(encoding="utf-8")
    assert "POST /vector_stores" in page and "\\-\\-name" in page


def test_command_summaries_are_fresh():
    """`oaicli --help` lists the hand-written commands from oaicli/cli/summaries.py; it must say what the
    commands' own help says (regenerated by `make man`)."""
    committed = manpages.SUMMARIES_FILE.read_text(encoding="utf-8")
    assert committed == manpages.summaries_module(), "oaicli/cli/summaries.py is out of date; run `make man`"


def test_root_help_imports_no_command_module():
    code = ("import sys\nfrom oaicli.cli.root import cli\n"
            "try:\n    cli.main(['--help'], prog_name='oaicli')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('oaicli.commands.')), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "chat" in done.stdout and "fine-tunes" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"
