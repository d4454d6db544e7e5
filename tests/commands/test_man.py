"""oaicli man: the pages of this version, written to a folder or installed where `man oaicli` finds them."""

import os
import shutil
import subprocess

import pytest

from oaicli.cli import manpages
from tests.conftest import run_process


def test_man_writes_the_generated_pages_into_a_folder(invoke, tmp_path):
    result = invoke("man", tmp_path / "man1")
    assert result.exit_code == 0, result.stderr
    pages = manpages.generate()
    assert sorted(p.name for p in (tmp_path / "man1").iterdir()) == sorted(pages)
    assert (tmp_path / "man1" / "oaicli-chat.1").read_text() == pages["oaicli-chat.1"]
    assert result.stderr == f"Wrote {len(pages)} man pages to {tmp_path / 'man1'}.\n"


def test_man_install_puts_them_where_man_finds_them(tmp_path):
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)  # pipx's bin folder, on PATH
    env = {"HOME": str(home), "PATH": f"{home / '.local' / 'bin'}:{os.environ['PATH']}", "XDG_DATA_HOME": ""}
    env = {k: v for k, v in {**os.environ, **env}.items() if k not in ("MANPATH", "XDG_DATA_HOME")}
    result = run_process("man", "--install", env=env)
    installed = home / ".local" / "share" / "man" / "man1" / "oaicli.1"
    assert result.returncode == 0 and installed.exists(), result.stderr
    if shutil.which("man"):
        found = subprocess.run(["man", "-w", "oaicli"], env=env, capture_output=True, text=True)
        assert found.stdout.strip() == str(installed)
        assert "Read them with: man oaicli" in result.stderr


@pytest.mark.parametrize("args", [[], ["--install", "somewhere"]])
def test_man_needs_a_folder_or_install(invoke, args):
    result = invoke("man", *args)
    assert result.exit_code == 2 and "Give a DIRECTORY or --install" in result.stderr
