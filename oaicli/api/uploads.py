"""Uploading local files: one streamed multipart POST /files, or the Uploads API in parts for large files.

Memory stays constant whatever the size: httpx reads the file in chunks as it sends, and a retry
seeks back and streams the file (or the one failed part) again from its start.
"""

import time
from pathlib import Path

import httpx

from oaicli.api.polling import pause
from oaicli.core.errors import ApiError, ExitCode, OaicliError
from oaicli.core.mime import mime_type

# /files takes files up to 512 MB; larger ones go through /uploads in 64 MB parts.
UPLOADS_THRESHOLD = 512 * 1024 * 1024
PART_SIZE = 64 * 1024 * 1024
READ_SIZE = 1 << 20


class ProgressReader:
    """A file wrapper that reports each read to a bar; seeking back to 0 (a retry) restarts the bar."""

    def __init__(self, handle, bar):
        self._handle = handle
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._bar.update(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0:
            self._bar.reset(total=getattr(self._bar, "total", None))
        return self._handle.seek(offset, whence)

    def __getattr__(self, name):
        return getattr(self._handle, name)


class ChunkedReader(ProgressReader):
    """httpx asks for 64 KiB at a time; reading 1 MiB instead means fewer, larger writes to the socket."""

    def read(self, size: int = -1) -> bytes:
        return super().read(max(size, READ_SIZE) if size >= 0 else size)


class FileSlice:
    """One part's window of an open file. Reads go to the shared bar; rewinding takes them back off it."""

    def __init__(self, handle, start: int, length: int, bar):
        self._handle = handle
        self._start = start
        self._length = length
        self._bar = bar
        self._position = 0
        self._reported = 0

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._position
        size = remaining if size < 0 else min(max(size, READ_SIZE), remaining)
        if size <= 0:
            return b""
        self._handle.seek(self._start + self._position)
        chunk = self._handle.read(size)
        self._position += len(chunk)
        self._reported += len(chunk)
        self._bar.update(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        target = {0: offset, 1: self._position + offset, 2: self._length + offset}[whence]
        if target == 0 and self._reported:
            self._bar.update(-self._reported)
            self._reported = 0
        self._position = target
        return target

    def tell(self) -> int:
        return self._position


def upload(api, path: Path, purpose: str, progress_bar) -> dict:
    """Upload one file and return the API's file object. The name sent is the base name only.
    `progress_bar(total, label)` opens the bar the bytes sent are counted on (output.progress)."""
    path = Path(path)
    size = path.stat().st_size
    label = _label(path)
    if size > UPLOADS_THRESHOLD:
        upload_id = _create_upload(api, path, purpose, size)
        if upload_id:
            return upload_in_parts(api, path, upload_id, size, label, progress_bar)
    with open(path, "rb") as handle, progress_bar(size, label) as bar:
        files = {"file": (path.name, ChunkedReader(handle, bar), mime_type(path))}
        return api.post("/files", data={"purpose": purpose}, files=files)


def _create_upload(api, path: Path, purpose: str, size: int) -> str | None:
    """An Uploads API upload's id, or None when the server has no /uploads (then /files takes the file).
    Only this first request says so: a 404 later (an upload that expired) is an error, not a fallback."""
    try:
        created = api.post("/uploads", json={"filename": path.name, "purpose": purpose, "bytes": size,
                                             "mime_type": mime_type(path)})
    except ApiError as exc:
        if exc.status in (404, 405):
            return None
        raise
    return created["id"]


def upload_in_parts(api, path: Path, upload_id: str, size: int, label: str, progress_bar) -> dict:
    """Add each part of a created upload (each retried on its own by the client), then complete it."""
    try:
        part_ids = []
        with open(path, "rb") as handle, progress_bar(size, label) as bar:
            for start in range(0, size, PART_SIZE):
                part = FileSlice(handle, start, min(PART_SIZE, size - start), bar)
                answer = api.post(f"/uploads/{upload_id}/parts",
                                  files={"data": (path.name, part, "application/octet-stream")})
                part_ids.append(answer["id"])
        completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": part_ids})
    except BaseException:
        _cancel_quietly(api, upload_id)
        raise
    return completed.get("file") or completed


def _cancel_quietly(api, upload_id: str) -> None:
    try:
        api.post(f"/uploads/{upload_id}/cancel")
    except (OaicliError, httpx.HTTPError):
        pass


def _label(path: Path) -> str:
    name = path.name
    return name if len(name) <= 30 else name[:29] + "…"


def wait_processed(api, file_id: str, deadline: float | None, sleep=time.sleep) -> dict:
    """Poll until the file is processed (or the server reports no status); an error status fails."""
    delay = 0.5
    while True:
        info = api.get(f"/files/{file_id}")
        status = info.get("status")
        if status in (None, "processed"):
            return info
        if status in ("error", "deleted"):
            details = info.get("status_details") or "no details given"
            raise OaicliError(f"File {file_id} failed processing: {details}.", exit_code=ExitCode.REQUEST)
        pause(deadline, delay, sleep, f"File {file_id} is still {status}",
              f"Check later with `oaicli files get {file_id}`.")
        delay = min(delay * 1.5, 5.0)


def upload_one(api, path, purpose: str, progress_bar, notice, wait: bool = False,
               deadline: float | None = None) -> dict:
    """Upload one file, announced through `notice`; with `wait`, also wait (until `deadline`, if any)
    for the server to process it."""
    uploaded = upload(api, path, purpose, progress_bar)
    notice(f"Uploaded {path.name} as {uploaded.get('id')}.")
    if wait:
        uploaded = wait_processed(api, uploaded["id"], deadline, sleep=api.sleep)
    return uploaded
