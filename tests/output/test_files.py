"""Atomic files: a download replaces its destination without ever leaving a half-written file, and
without the forced write-out that renaming over an existing file costs on ext4."""

import os

import pytest

from oaicli.core.errors import InputError
from oaicli.output import files


def unlinked(monkeypatch):
    calls = []
    real = os.unlink

    def unlink(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", unlink)
    return calls


def test_a_download_removes_the_old_file_before_moving_the_new_one_in(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    calls = unlinked(monkeypatch)
    with files.atomic_writer(target, durable=False) as sink:
        sink.write(b"new")
    assert target.read_bytes() == b"new"
    assert calls == [str(target)]  # not renamed over: ext4 would write the new blocks out inside rename()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no .part left


def test_a_download_to_a_new_name_has_nothing_to_remove(tmp_path):
    with files.atomic_writer(tmp_path / "new.bin", durable=False) as sink:
        sink.write(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin"]


def test_a_failed_download_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.atomic_writer(target, durable=False) as sink:
            sink.write(b"half")
            raise RuntimeError("the connection dropped")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_durable_write_replaces_atomically_and_never_removes_first(tmp_path, monkeypatch):
    target = tmp_path / "sessions.json"
    target.write_bytes(b"old")
    calls = unlinked(monkeypatch)
    with files.atomic_writer(target) as sink:
        sink.write(b"new")
    assert target.read_bytes() == b"new" and calls == []


def test_a_folder_in_the_way_of_a_download_is_one_clear_error(tmp_path):
    (tmp_path / "out.bin").mkdir()
    with pytest.raises(InputError, match="Cannot write .*out.bin: Is a directory"):
        with files.atomic_writer(tmp_path / "out.bin", durable=False) as sink:
            sink.write(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"] and (tmp_path / "out.bin").is_dir()
