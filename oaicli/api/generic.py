"""Any operation of the table, sent as a plain request description: a JSON or multipart body, the three
pagination kinds of OpenAI's API, server-sent events and binary answers (generated commands, `oaicli api`)."""

import contextlib
import os
from typing import Iterator

from oaicli.core.mime import mime_type

# Pagination kinds the compiler finds in the spec (openapi/compile.py):
#   cursor     has_more + last_id, sent back as `after`        (batches, vector stores, ...)
#   cursor-id  has_more; the cursor is the last item's `id`    (chat completions, conversation items, ...)
#   page       has_more + next_page, sent back as `page`       (organization usage and costs)
PAGINATION = ("cursor", "cursor-id", "page")


def send(client, request):
    """The answer's JSON (or its text when it is not JSON)."""
    with _body(request) as body:
        return client.request(request.method, request.path, params=request.query or None,
                              headers=request.headers or None, parse="json-or-text", **body)


def pages(client, path: str, query: dict, kind: str, method: str = "GET", headers=None) -> Iterator[dict]:
    """Each page object of a list, following its pagination (`kind`, one of PAGINATION) while the server says
    there is more (and it moves on: a server that repeats a cursor would page for ever)."""
    query = dict(query)
    seen = set()
    while True:
        page = client.request(method, path, params=query, headers=headers or None)
        yield page
        cursor = next_cursor(kind, page)
        if not isinstance(page, dict) or not page.get("has_more") or not cursor or cursor in seen:
            return
        seen.add(cursor)
        query["page" if kind == "page" else "after"] = cursor


def next_cursor(kind: str, page) -> str | None:
    if not isinstance(page, dict):
        return None
    if kind == "page":
        return page.get("next_page")
    data = page.get("data") or []
    if kind == "cursor" and page.get("last_id"):
        return page["last_id"]
    return data[-1].get("id") if data and isinstance(data[-1], dict) else None


def collect(client, request) -> dict:
    """Every page (up to request.max_items items) as one page object: the first page's fields, all items."""
    first, items, cut = None, [], False
    for page in pages(client, request.path, request.query, request.paginate, request.method, request.headers):
        first = page if first is None else first
        items.extend(page.get("data") or [])
        more = bool(page.get("has_more"))
        if request.max_items is not None and len(items) >= request.max_items:
            cut = len(items) > request.max_items
            items = items[:request.max_items]
            break
    return {**(first or {}), "data": items, "has_more": more or cut}


def events(client, request) -> Iterator[dict]:
    """Each event's JSON as it arrives. Chat completions end with [DONE]; the Responses API ends with its
    last typed event and no [DONE], so a stream that simply ends is complete here."""
    with _body(request) as body:
        yield from client.stream_events(request.path, body.get("json"), method=request.method,
                                        params=request.query or None, require_done=False,
                                        files=body.get("files"), headers=request.headers or None)


def download(client, request, sink, bar, where) -> int:
    with _body(request) as body:
        return client.download(request.path, sink, bar, method=request.method, json=body.get("json"),
                               files=body.get("files"), params=request.query or None, where=where)


@contextlib.contextmanager
def _body(request):
    """httpx keyword arguments for the body. Multipart is sent as multipart even with no file (httpx would
    send form fields alone urlencoded, which multipart-only operations refuse): each field is a part with
    no filename. Files are opened here and streamed; the client rewinds them on a retry."""
    if request.json is not None:
        yield {"json": request.json}
        return
    if not request.multipart:
        yield {}
        return
    with contextlib.ExitStack() as stack:
        parts = [(name, (None, value)) for name, value in request.form]
        for name, path in request.files:
            handle = stack.enter_context(open(path, "rb"))
            parts.append((name, (os.path.basename(path), handle, mime_type(path))))
        yield {"files": parts}
