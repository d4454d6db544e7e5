"""The client layer with httpx.MockTransport: error mapping, retries, uploads, pagination, Azure, tracing."""

import email.utils
import json
import re
import ssl
import time

import certifi
import httpx
import pytest

from oaicli.api import client as client_module
from oaicli.api.client import ApiClient, error_from_response
from oaicli.core.errors import ApiError, ConfigError, ExitCode, NetworkError
from oaicli.core.settings import Settings

KEY = "sk-test-client-0123456789abcdef"


class Harness:
    """A client whose transport is a list of scripted answers (or a function); records requests and sleeps."""

    def __init__(self, answers, **flags):
        self.answers = list(answers) if isinstance(answers, list) else answers
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.sleeps: list[float] = []
        settings = Settings({"api_key": KEY, "base_url": "http://fake.test/v1", **flags}, environ={})
        self.client = ApiClient(settings, transport=httpx.MockTransport(self._handle), sleep=self.sleeps.append)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answer = self.answers(request) if callable(self.answers) else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(body=None, **kwargs):
    return httpx.Response(200, json=body if body is not None else {"ok": True}, **kwargs)


def openai_error(status, message="boom", type="invalid_request_error", code=None, headers=None):
    return httpx.Response(status, json={"error": {"message": message, "type": type, "param": None, "code": code}},
                          headers=headers)


# Error mapping

def test_openai_json_error_keeps_status_type_code_message_and_request_id():
    response = openai_error(404, "The model 'x' does not exist", code="model_not_found",
                            headers={"x-request-id": "req_123"})
    error = error_from_response(response)
    assert (error.status, error.type, error.code, error.message, error.request_id) == (
        404, "invalid_request_error", "model_not_found", "The model 'x' does not exist", "req_123")
    assert error.exit_code == ExitCode.REQUEST
    assert error.one_line() == "Error: The model 'x' does not exist (invalid_request_error, HTTP 404)"


def test_problem_json_validation_error():
    response = httpx.Response(422, headers={"content-type": "application/problem+json"}, json={
        "type": "https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY", "title": "Invalid request",
        "status": 422, "detail": "Your request is not valid",
        "validation": [{"location": ["body", "model"], "severity": "Error", "message": "must be string"}]})
    error = error_from_response(response)
    assert error.status == 422
    assert error.message == "Invalid request: body.model: must be string"
    assert "HTTP 422" in error.one_line()


def test_problem_json_detail_only():
    error = error_from_response(httpx.Response(400, json={"title": "Bad", "detail": "the detail"}))
    assert error.message == "the detail"


def test_html_502_from_a_proxy():
    response = httpx.Response(502, headers={"content-type": "text/html"},
                              content=b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>")
    error = error_from_response(response)
    assert error.status == 502 and error.type is None
    assert "HTML page" in error.message and "<h1>" not in error.one_line()
    assert error.one_line().startswith("Error: The server answered 502 Bad Gateway with an HTML page")
    assert error.exit_code == ExitCode.SERVER


def test_empty_body():
    error = error_from_response(httpx.Response(500, content=b""))
    assert error.message == "The server answered 500 Internal Server Error with an empty body"
    assert error.one_line().endswith("(HTTP 500). The server failed; try again later.")


def test_plain_text_body_first_line():
    error = error_from_response(httpx.Response(503, content=b"upstream overloaded\nmore detail"))
    assert error.message == "The server answered 503 Service Unavailable: upstream overloaded"


def test_error_as_plain_string():
    assert error_from_response(httpx.Response(400, json={"error": "bad thing"})).message == "bad thing"


@pytest.mark.parametrize("status,code", [(400, ExitCode.REQUEST), (401, ExitCode.AUTH), (403, ExitCode.AUTH),
                                         (404, ExitCode.REQUEST), (409, ExitCode.REQUEST),
                                         (422, ExitCode.REQUEST), (408, ExitCode.SERVER),
                                         (429, ExitCode.SERVER), (500, ExitCode.SERVER), (503, ExitCode.SERVER)])
def test_exit_code_per_status(status, code):
    assert error_from_response(openai_error(status)).exit_code == code


def test_hints_for_401_and_quota_versus_rate_limit():
    assert "Check your API key and organization" in error_from_response(openai_error(401)).one_line()
    quota = error_from_response(openai_error(429, "quota", type="insufficient_quota", code="insufficient_quota"))
    assert "quota is used up" in quota.one_line()
    rate = error_from_response(openai_error(429, "slow down", type="requests", code="rate_limit_exceeded"))
    assert "Rate limited" in rate.one_line()


def test_404_on_a_model_suggests_models_list():
    harness = Harness([openai_error(404, "no such model", code="model_not_found")])
    with pytest.raises(ApiError) as caught:
        harness.client.get("/models/nope")
    assert "oaicli models list" in caught.value.one_line()


def test_non_json_success_body_is_a_clear_error():
    harness = Harness([httpx.Response(200, content=b"<html>hello</html>")])
    with pytest.raises(NetworkError, match="not JSON"):
        harness.client.get("/models")


def test_no_key_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        ApiClient(Settings({"base_url": "http://fake.test/v1"}, environ={}))
    assert caught.value.exit_code == ExitCode.AUTH
    assert "oaicli keys set" in caught.value.one_line()


@pytest.mark.parametrize("base_url", ["localhost:8080/v1", "", "ftp://files.test/v1"])
def test_a_base_url_without_http_is_a_config_error_before_any_request(base_url):
    with pytest.raises(ConfigError) as caught:
        ApiClient(Settings({"api_key": KEY, "base_url": base_url}, environ={}))
    assert caught.value.exit_code == ExitCode.AUTH
    assert f"The base URL {base_url!r} (flag --base-url) does not start with http:// or https://" \
        in caught.value.one_line()


# Retries

@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(status):
    harness = Harness([openai_error(status), ok({"n": 1})])
    assert harness.client.get("/models") == {"n": 1}
    assert len(harness.requests) == 2 and len(harness.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_not_retried(status):
    harness = Harness([openai_error(status), ok()])
    with pytest.raises(ApiError) as caught:
        harness.client.get("/models")
    assert caught.value.status == status
    assert len(harness.requests) == 1 and harness.sleeps == []


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                 httpx.ConnectTimeout("slow"), httpx.RemoteProtocolError("dropped")])
def test_network_errors_and_timeouts_are_retried(exc):
    harness = Harness([exc, ok({"n": 2})])
    assert harness.client.get("/models") == {"n": 2}
    assert len(harness.requests) == 2 and len(harness.sleeps) == 1


def test_gives_up_after_max_retries_with_the_last_error():
    harness = Harness([openai_error(500, "down", type="server_error")] * 3)
    with pytest.raises(ApiError) as caught:
        harness.client.get("/models")
    assert caught.value.status == 500 and "down" in caught.value.message
    assert len(harness.requests) == 3 and len(harness.sleeps) == 2


def test_timeouts_exhausted_become_a_network_error():
    harness = Harness([httpx.ReadTimeout("slow")] * 3)
    with pytest.raises(NetworkError, match="timed out after 3 attempts") as caught:
        harness.client.get("/models")
    assert caught.value.exit_code == ExitCode.SERVER


def test_connection_refused_exhausted_names_the_server():
    harness = Harness([httpx.ConnectError("Connection refused")] * 3)
    with pytest.raises(NetworkError, match=r"Cannot reach http://fake.test: Connection refused"):
        harness.client.get("/models")


@pytest.mark.parametrize("max_retries,attempts", [(0, 1), (1, 2), (4, 5)])
def test_max_retries_flag(max_retries, attempts):
    harness = Harness([openai_error(503)] * 10, max_retries=max_retries)
    with pytest.raises(ApiError):
        harness.client.get("/models")
    assert len(harness.requests) == attempts and len(harness.sleeps) == attempts - 1


def test_backoff_grows_exponentially_with_jitter():
    harness = Harness([openai_error(503)] * 4, max_retries=3)
    with pytest.raises(ApiError):
        harness.client.get("/models")
    for attempt, delay in enumerate(harness.sleeps):
        base = 0.5 * 2 ** attempt
        assert 0.75 * base <= delay <= base


def test_retry_after_seconds_is_honoured():
    harness = Harness([openai_error(429, headers={"retry-after": "3"}), ok()])
    harness.client.get("/models")
    assert harness.sleeps == [3.0]


def test_retry_after_http_date_is_honoured():
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    harness = Harness([openai_error(503, headers={"retry-after": when}), ok()])
    harness.client.get("/models")
    assert 17 <= harness.sleeps[0] <= 20.5


def test_retry_after_ms_wins_over_retry_after():
    harness = Harness([openai_error(429, headers={"retry-after-ms": "250", "retry-after": "9"}), ok()])
    harness.client.get("/models")
    assert harness.sleeps == [0.25]


def test_absurd_retry_after_falls_back_to_backoff():
    harness = Harness([openai_error(429, headers={"retry-after": "3600"}), ok()])
    harness.client.get("/models")
    assert harness.sleeps[0] <= 0.5


def test_retry_notice_on_stderr_unless_quiet(capsys):
    Harness([openai_error(429, headers={"retry-after": "1"}), ok()]).client.get("/models")
    assert "Retrying in 1.0s: HTTP 429 (attempt 2 of 3)." in capsys.readouterr().err
    Harness([openai_error(429, headers={"retry-after": "1"}), ok()], quiet=True).client.get("/models")
    assert capsys.readouterr().err == ""


def test_upload_is_sent_whole_again_on_retry(tmp_path):
    payload = bytes(range(256)) * 1000
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    harness = Harness([openai_error(500), ok({"id": "file-1"})])
    with path.open("rb") as handle:
        result = harness.client.post("/files", data={"purpose": "fine-tune"},
                                     files={"file": ("data.bin", handle, "application/octet-stream")})
    assert result == {"id": "file-1"}
    assert len(harness.bodies) == 2
    for body in harness.bodies:
        assert payload in body and b'name="purpose"' in body


# Pagination

def paged(models: list[str], size: int):
    def handler(request):
        after = request.url.params.get("after")
        start = models.index(after) + 1 if after else 0
        page = [{"id": m} for m in models[start:start + size]]
        return ok({"object": "list", "data": page, "has_more": start + size < len(models),
                   "last_id": page[-1]["id"] if page else None})
    return handler


def test_first_page_only_without_all():
    harness = Harness(paged(list("abcde"), 2))
    page = harness.client.list_all("/models", {"limit": 2})
    assert [m["id"] for m in page["data"]] == ["a", "b"] and page["has_more"] is True
    assert len(harness.requests) == 1 and harness.requests[0].url.params["limit"] == "2"


def test_all_follows_the_cursor_to_the_end():
    harness = Harness(paged(list("abcde"), 2))
    page = harness.client.list_all("/models", {"limit": 2, "after": None}, fetch_all=True)
    assert [m["id"] for m in page["data"]] == list("abcde") and page["has_more"] is False
    assert [r.url.params.get("after") for r in harness.requests] == [None, "b", "d"]


def test_cursor_falls_back_to_last_item_id():
    def handler(request):
        if request.url.params.get("after") == "b":
            return ok({"data": [{"id": "c"}], "has_more": False})
        return ok({"data": [{"id": "a"}, {"id": "b"}], "has_more": True})
    page = Harness(handler).client.list_all("/x", fetch_all=True)
    assert [m["id"] for m in page["data"]] == ["a", "b", "c"]


def test_repeated_cursor_stops_paging(capsys):
    harness = Harness(lambda request: ok({"data": [{"id": "same"}], "has_more": True, "last_id": "same"}))
    page = harness.client.list_all("/x", fetch_all=True)
    assert len(harness.requests) == 2 and len(page["data"]) == 2
    assert "repeated a page cursor" in capsys.readouterr().err


def test_cursor_cycle_stops_paging(capsys):
    cycle = {None: "a", "a": "b", "b": "a"}
    harness = Harness(lambda request: ok({"data": [{"id": cycle[request.url.params.get("after")]}],
                                          "has_more": True}))
    harness.client.list_all("/x", fetch_all=True)
    assert len(harness.requests) == 3
    assert "repeated a page cursor" in capsys.readouterr().err


# Headers and routing

def test_openai_headers():
    harness = Harness([ok()], organization="org-1", project="proj-2")
    harness.client.get("/models")
    headers = harness.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-2"
    assert "api-key" not in headers


def test_no_org_or_project_headers_by_default():
    harness = Harness([ok()])
    harness.client.get("/models")
    assert "openai-organization" not in harness.requests[0].headers
    assert "openai-project" not in harness.requests[0].headers


def test_azure_routes_deployments_and_uses_the_api_key_header():
    harness = Harness([ok(), ok()], api_type="azure", base_url="https://res.openai.azure.com/openai",
                      api_version="2024-06-01")
    harness.client.post("/chat/completions", json={"model": "my-gpt4", "messages": []})
    harness.client.get("/models")
    chat, models = harness.requests
    assert chat.url.path == "/openai/deployments/my-gpt4/chat/completions"
    assert chat.url.params["api-version"] == "2024-06-01"
    assert chat.headers["api-key"] == KEY and "authorization" not in chat.headers
    assert models.url.path == "/openai/models" and models.url.params["api-version"] == "2024-06-01"


def test_azure_multipart_uses_the_model_field_for_the_deployment():
    harness = Harness([ok()], api_type="azure", base_url="https://res.openai.azure.com/openai")
    harness.client.post("/audio/transcriptions", data={"model": "whisper-dep"}, files={"file": ("a.wav", b"RIFF")})
    assert harness.requests[0].url.path == "/openai/deployments/whisper-dep/audio/transcriptions"


# Tracing

def test_verbose_traces_request_and_response_without_the_key(capsys):
    harness = Harness([ok(headers={"x-request-id": "req_abc"})], verbose=1)
    harness.client.get("/models", params={"limit": 5})
    err = capsys.readouterr().err
    assert "> GET http://fake.test/v1/models?limit=5" in err
    assert "< 200 OK in" in err and "(x-request-id: req_abc)" in err
    assert KEY not in err and "authorization" not in err.lower()


def test_very_verbose_adds_headers_and_bodies_redacted(capsys):
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    harness = Harness([httpx.Response(401, json=echo)], verbose=2, max_retries=0)
    with pytest.raises(ApiError) as caught:
        harness.client.post("/chat/completions", json={"model": "m", "note": KEY})
    err = capsys.readouterr().err
    assert "> authorization: [redacted]" in err
    assert '> {"model": "m", "note": "sk-...cdef"}' in err
    assert '< {"error":{"message":"Incorrect API key provided: sk-...cdef"' in err
    assert KEY not in err and KEY not in caught.value.one_line()


def test_verbose_off_prints_nothing(capsys):
    Harness([ok()]).client.get("/models")
    assert capsys.readouterr().err == ""


def test_verify_skips_certificates_for_plain_http(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert client_module.verify_for("https://api.openai.com/v1") is True
    assert client_module.verify_for("http://127.0.0.1:1/v1") is not True
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert client_module.verify_for("http://127.0.0.1:1/v1") is True
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # a corporate bundle: loaded by oaicli itself
    assert isinstance(client_module.verify_for("https://api.openai.com/v1"), ssl.SSLContext)


def test_json_request_body_is_sent():
    harness = Harness([ok()])
    harness.client.post("/embeddings", json={"model": "m", "input": "héllo"})
    assert json.loads(harness.bodies[0]) == {"model": "m", "input": "héllo"}
    assert harness.requests[0].headers["content-type"] == "application/json"


def test_very_verbose_multipart_shows_size_not_content(capsys):
    harness = Harness([ok()], verbose=2)
    harness.client.post("/files", data={"purpose": "x"}, files={"file": ("a.bin", b"SECRET-BYTES" * 10)})
    err = capsys.readouterr().err
    assert re.search(r"> <multipart body, \d+ bytes>", err) and "SECRET-BYTES" not in err


def test_404_for_a_missing_endpoint_does_not_blame_the_model():
    harness = Harness([openai_error(404, "Unknown path POST /v1/edits", code="unknown_url")])
    with pytest.raises(ApiError) as caught:
        harness.client.post("/edits", json={"model": "text-davinci-edit-001", "instruction": "x"})
    assert "models list" not in caught.value.one_line()


def test_404_naming_the_requested_model_suggests_models_list():
    harness = Harness([openai_error(404, "The model `gpt-9` does not exist", code=None)])
    with pytest.raises(ApiError) as caught:
        harness.client.post("/chat/completions", json={"model": "gpt-9", "messages": []})
    assert "oaicli models list" in caught.value.one_line()


def test_a_client_closed_mid_request_does_not_retry():
    """Ctrl-C closes the client from the main thread while a worker's request is in flight."""
    def closed_under_it(request):
        harness.client.close()
        raise httpx.ReadError("Bad file descriptor")

    harness = Harness(closed_under_it)
    with pytest.raises(NetworkError):
        harness.client.get("/models")
    assert harness.sleeps == [] and len(harness.requests) == 1


class CountingBar:
    def __init__(self):
        self.updates: list[int] = []

    def update(self, amount: int) -> None:
        self.updates.append(amount)

    def reset(self, total=None) -> None:
        self.total = total


def test_a_download_counts_every_byte_on_the_bar_but_updates_it_at_most_once_a_mib():
    import io
    body = bytes(range(256)) * (14 * 1024 + 3)  # 3.5 MiB and a bit, in 4 KiB pieces and an odd tail

    def pieces():
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]
    harness = Harness([httpx.Response(200, content=pieces())])
    sink, bar = io.BytesIO(), CountingBar()
    assert harness.client.download("/files/f/content", sink, bar) == len(body)
    assert sink.getvalue() == body
    assert sum(bar.updates) == len(body)
    assert len(bar.updates) <= len(body) // client_module.BAR_STEP + 1  # not one per read: tqdm costs ~0.1 s a GiB
