"""A read-only OAICLI_HOME: every command that writes there says it is read-only or not writable (exit 3),
never that a file should be moved aside."""

import contextlib
import os
import subprocess

import pytest

from oaicli.conversation.store import Store


@contextlib.contextmanager
def read_only(folder):
    """Make `folder` read-only for real: by its mode for a normal user; root writes through modes, so
    for root a read-only tmpfs is mounted there instead (skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
        try:
            yield "is not writable (permission denied)"
        finally:
            for path in [folder, *folder.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)
        return
    if subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root, and this folder cannot be remounted read-only")
    yield "is on a read-only file system"


@pytest.fixture
def mounted(tmp_path):
    """A folder that can be made read-only: for root, its own tmpfs."""
    folder = tmp_path / "mnt"
    folder.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)],
                                            capture_output=True).returncode != 0:
        pytest.skip("root, and a tmpfs cannot be mounted here")
    yield folder
    if os.geteuid() == 0:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)  # lazy: the store may still hold it open


@pytest.mark.parametrize("args", [["sessions", "list"], ["sessions", "import", "trip", "-"],
                                  ["chat", "--session", "trip", "hi"], ["keys", "set"]])
def test_a_read_only_home_is_said_so_and_exit_3(invoke, fake, mounted, monkeypatch, args):
    home = mounted / "home"
    monkeypatch.setenv("OAICLI_HOME", str(home))
    with Store.open(home / "sessions.db") as store:
        store.import_messages("trip", [{"role": "user", "content": "hi"}])
    with read_only(mounted) as why:
        result = invoke(*args, input="sk-new-key-0123456789\n" if "keys" in args else "[]")
    assert result.exit_code == 3, result.stderr
    assert why in result.stderr and "OAICLI_HOME" in result.stderr
    assert "aside" not in result.stderr and "unexpected" not in result.stderr
    assert fake.calls("POST", "/v1/chat/completions") == []
