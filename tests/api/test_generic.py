"""Any operation sent generically (api/generic.py), with httpx.MockTransport: the three pagination kinds,
--max-items, a repeated cursor, multipart with and without files, SSE without [DONE], the admin key."""

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oaicli.api import generic
from oaicli.api.client import ApiClient
from oaicli.commands.generated.request import Request
from oaicli.core.errors import ConfigError
from oaicli.core.settings import Settings

KEY, ADMIN_KEY = "sk-test-generic-0123456789", "sk-admin-generic-0123456789"


class Server:
    """Answers from a function of the request; keeps every request with its body."""

    def __init__(self, answer, **settings):
        self.answer, self.requests = answer, []
        environ = {"OPENAI_ADMIN_KEY": ADMIN_KEY} if settings.pop("admin_key", True) else {}
        flags = {"api_key": KEY, "base_url": "http://fake.test/v1", "max_retries": 0, **settings}
        self.settings = Settings(flags, environ=environ)

    def client(self, admin=False):
        return ApiClient(self.settings, transport=httpx.MockTransport(self._handle), admin=admin)

    def _handle(self, request):
        request.read()
        self.requests.append(request)
        return self.answer(request)

    def queries(self):
        return [{k: v[-1] for k, v in parse_qs(urlsplit(str(r.url)).query).items()} for r in self.requests]


def items_page(request, kind):
    """20 items a0..a19, 5 per page, paged the way `kind` pages."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
    cursor = query.get("page" if kind == "page" else "after")
    start = 0 if cursor is None else int(cursor[1:]) + 1 if kind != "page" else int(cursor)
    data = [{"id": f"a{i}"} for i in range(start, min(start + 5, 20))]
    page = {"object": "page" if kind == "page" else "list", "data": data, "has_more": start + 5 < 20}
    if kind == "cursor":
        page["last_id"] = data[-1]["id"]
    if kind == "page":
        page["next_page"] = str(start + 5) if start + 5 < 20 else None
    return httpx.Response(200, json=page)


@pytest.mark.parametrize("kind", ["cursor", "cursor-id", "page"])
def test_every_pagination_kind_is_followed_to_the_end(kind):
    server = Server(lambda request: items_page(request, kind))
    request = Request("op", "GET", "/things", query={"limit": "5"}, paginate=kind, fetch_all=True)
    page = generic.collect(server.client(), request)
    assert [item["id"] for item in page["data"]] == [f"a{i}" for i in range(20)]
    assert page["has_more"] is False and len(server.requests) == 4
    sent_cursor = "page" if kind == "page" else "after"
    assert [q.get(sent_cursor) for q in server.queries()] == [None, *(["5", "10", "15"] if kind == "page"
                                                                    else ["a4", "a9", "a14"])]


def test_max_items_stops_paging_early_and_says_there_is_more():
    server = Server(lambda request: items_page(request, "cursor"))
    request = Request("op", "GET", "/things", paginate="cursor", fetch_all=True, max_items=7)
    page = generic.collect(server.client(), request)
    assert [item["id"] for item in page["data"]] == [f"a{i}" for i in range(7)]
    assert page["has_more"] is True and len(server.requests) == 2  # the third page is never asked for


def test_a_server_repeating_its_cursor_does_not_page_for_ever():
    server = Server(lambda request: httpx.Response(200, json={"object": "list", "data": [{"id": "x"}],
                                                              "has_more": True, "last_id": "x"}))
    page = generic.collect(server.client(), Request("op", "GET", "/loop", paginate="cursor", fetch_all=True))
    assert len(server.requests) == 2 and len(page["data"]) == 2


def test_multipart_without_files_is_still_multipart(tmp_path):
    server = Server(lambda request: httpx.Response(200, json={"ok": True}))
    generic.send(server.client(), Request("op", "POST", "/form", form=[("name", "a"), ("tags", "x"), ("tags", "y")]))
    (sent,) = server.requests
    assert sent.headers["content-type"].startswith("multipart/form-data")
    body = sent.content.decode()
    assert body.count('name="tags"') == 2 and 'name="name"' in body and "filename" not in body


def test_multipart_streams_the_named_files(tmp_path):
    upload = tmp_path / "table.csv"
    upload.write_bytes(b"a,b\n1,2\n")
    server = Server(lambda request: httpx.Response(200, json={"id": "f"}))
    generic.send(server.client(), Request("op", "POST", "/up", form=[("purpose", "x")], files=[("file", str(upload))]))
    body = server.requests[0].content
    assert b'filename="table.csv"' in body and b"a,b\n1,2\n" in body and b"Content-Type: text/csv" in body


def test_events_end_without_done_for_typed_streams():
    stream = b'data: {"type": "response.created"}\n\ndata: {"type": "response.completed"}\n\n'
    server = Server(lambda request: httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"}))
    events = list(generic.events(server.client(), Request("op", "POST", "/responses", json={"stream": True},
                                                          expects="sse")))
    assert [e["type"] for e in events] == ["response.created", "response.completed"]


def test_the_admin_client_sends_the_admin_key_and_only_it():
    server = Server(lambda request: httpx.Response(200, json={"object": "page", "data": []}))
    generic.send(server.client(admin=True), Request("op", "GET", "/organization/costs", admin=True))
    assert server.requests[0].headers["authorization"] == f"Bearer {ADMIN_KEY}"


def test_a_missing_admin_key_names_the_variable_before_any_request():
    server = Server(lambda request: httpx.Response(200, json={}), admin_key=False)
    with pytest.raises(ConfigError) as caught:
        server.client(admin=True)
    assert "OPENAI_ADMIN_KEY" in caught.value.one_line() and caught.value.exit_code == 3
    assert server.requests == []


def test_a_text_answer_is_kept_as_text():
    server = Server(lambda request: httpx.Response(200, text="1\n00:00:00,000 --> 00:00:01,000\nhi\n"))
    assert generic.send(server.client(), Request("op", "POST", "/audio/transcriptions")).startswith("1\n00:00")


def test_json_answers_are_parsed():
    server = Server(lambda request: httpx.Response(200, json={"id": "vs_1"}))
    assert generic.send(server.client(), Request("op", "POST", "/vector_stores", json={"name": "d"})) == {"id": "vs_1"}
    assert json.loads(server.requests[0].content) == {"name": "d"}
