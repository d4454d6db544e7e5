"""The client over real HTTP against the loopback fake: streaming, multipart, retries, drops, timeouts, 401s."""

import hashlib
import json
import os
import re
import threading

import pytest

from oaicli.api.client import ApiClient
from oaicli.api.uploads import ProgressReader
from oaicli.core.errors import StreamError
from oaicli.core.settings import Settings
from tests.conftest import TEST_KEY
from tests.fake.server import EAGER_BODY, Scripted


def make_client(fake, sleeps=None, **flags) -> ApiClient:
    settings = Settings({"api_key": TEST_KEY, "base_url": fake.url, **flags}, environ={})
    return ApiClient(settings, sleep=(sleeps.append if sleeps is not None else lambda s: None))


# Streaming

def test_events_arrive_while_the_server_is_still_sending(fake):
    gate = threading.Event()

    def chunks():
        yield b'data: {"n": 1}\n\n'
        gate.wait(10)  # the server holds the rest until the client has seen the first event
        yield b'data: {"n": 2}\n\ndata: [DONE]\n\n'

    fake.route("POST", "/v1/test/stream")(lambda request, reply: reply.sse(None, raw_chunks=chunks()))
    seen, gate_open_when_first_arrived = [], None
    for event in make_client(fake).stream_events("/test/stream", {"stream": True}):
        if not seen:
            gate_open_when_first_arrived = gate.is_set()
            gate.set()
        seen.append(event)
    assert seen == [{"n": 1}, {"n": 2}]
    assert gate_open_when_first_arrived is False


def test_chat_stream_in_many_small_writes(fake):
    fake.state["answer"] = lambda messages: "one two three four"
    events = list(make_client(fake).stream_events("/chat/completions", {
        "model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}))
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert text == "one two three four" and events[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_dropped_mid_way_is_an_error_not_a_short_answer(fake):
    fake.state["drop_after"] = 2
    received = []
    with pytest.raises(StreamError):
        for event in make_client(fake).stream_events("/chat/completions", {
                "model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "a b c d e"}]}):
            received.append(event)
    assert len(received) == 2


def test_stream_without_done_is_an_error(fake):
    fake.state["send_done"] = False
    with pytest.raises(StreamError, match=r"\[DONE\] missing"):
        list(make_client(fake).stream_events("/chat/completions", {
            "model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}))


# Multipart

@pytest.fixture
def upload_route(fake):
    """Answers with the size and SHA-256 of the uploaded file part, and the request's framing."""
    def handler(request, reply):
        fields = request.multipart()
        name, content, ctype = fields["file"]
        reply.json({"filename": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                    "content_type": ctype, "purpose": fields["purpose"],
                    "content_length": request.headers.get("content-length"),
                    "chunked": request.headers.get("transfer-encoding")})
    fake.route("POST", "/v1/test/upload")(handler)


class CountingBar:
    def __init__(self):
        self.n, self.largest, self.resets = 0, 0, 0

    def update(self, amount):
        self.n += amount
        self.largest = max(self.largest, amount)

    def reset(self, total=None):
        self.n, self.resets = 0, self.resets + 1


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def test_multipart_upload_is_streamed_and_arrives_intact(fake, upload_route, big_file):
    bar = CountingBar()
    with big_file.open("rb") as handle:
        answer = make_client(fake).post("/test/upload", data={"purpose": "fine-tune"},
                                        files={"file": ("train.jsonl", ProgressReader(handle, bar),
                                                        "application/jsonl")})
    payload = big_file.read_bytes()
    assert answer["sha256"] == hashlib.sha256(payload).hexdigest() and answer["bytes"] == len(payload)
    assert (answer["filename"], answer["content_type"], answer["purpose"]) == (
        "train.jsonl", "application/jsonl", "fine-tune")
    assert bar.n == len(payload)
    assert bar.largest <= 1024 * 1024  # read in pieces, never the whole file at once
    assert int(answer["content_length"]) > len(payload) and answer["chunked"] is None


def test_retried_upload_streams_the_file_again_from_the_start(fake, upload_route, big_file):
    fake.queue("POST", "/v1/test/upload", Scripted(503, {"error": {"message": "busy", "type": "server_error"}}))
    bar, sleeps = CountingBar(), []
    with big_file.open("rb") as handle:
        answer = make_client(fake, sleeps).post("/test/upload", data={"purpose": "fine-tune"},
                                                files={"file": ("train.jsonl", ProgressReader(handle, bar))})
    assert answer["sha256"] == hashlib.sha256(big_file.read_bytes()).hexdigest()
    first = fake.calls("POST", "/v1/test/upload")[0]
    assert big_file.read_bytes() in first.body  # the refused first attempt carried the whole file too
    assert len(sleeps) == 1 and bar.resets >= 1 and bar.n == big_file.stat().st_size


# Retries, drops, timeouts

def test_retry_after_is_honoured_through_the_cli(invoke, fake):
    sleeps = []
    invoke.obj["sleep"] = sleeps.append
    fake.queue("GET", "/v1/models", Scripted(429, {"error": {"message": "slow down", "type": "requests"}},
                                             headers={"Retry-After": "2"}),
               Scripted(503, {}, headers={"retry-after-ms": "150"}))
    result = invoke("models", "list")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 4
    assert sleeps == [2.0, 0.15] and len(fake.calls("GET", "/v1/models")) == 3
    assert "Retrying in 2.0s: HTTP 429 (attempt 2 of 3)." in result.stderr


def test_dropped_connection_is_retried(fake):
    fake.queue("GET", "/v1/models", Scripted(drop=True))
    sleeps = []
    assert len(make_client(fake, sleeps).get("/models")["data"]) == 4
    assert len(sleeps) == 1 and len(fake.calls("GET", "/v1/models")) == 2


def test_dropped_every_time_is_exit_5(invoke, fake):
    fake.queue("GET", "/v1/models", *[Scripted(drop=True)] * 3)
    result = invoke("models", "list", "-q")
    assert result.exit_code == 5 and result.stdout == ""
    # the connection was made: the server closed it, which "Cannot reach" would misreport
    assert re.fullmatch(r"Error: The server at http://127\.0\.0\.1:\d+ closed the connection without answering: "
                        r".+\. Try again; if it keeps happening, check that --base-url points at an HTTP API\.\n",
                        result.stderr)


def test_an_upload_the_server_cuts_mid_body_says_so(invoke, fake, tmp_path):
    def cut(request, reply):
        request.abandon_body(after=100_000)
        reply.drop()

    fake.route("POST", "/v1/files")(cut)
    fake.routes.insert(0, fake.routes.pop())
    big = tmp_path / "big.bin"
    with open(big, "wb") as sparse:  # above the fake's EAGER_BODY, so the route sees the body unread
        sparse.truncate(EAGER_BODY + 1_000_000)
    result = invoke("files", "upload", big, "--purpose", "batch", "--max-retries", "0", "--timeout", "30")
    assert result.exit_code == 5
    assert "Cannot reach" not in result.stderr and "--base-url" not in result.stderr
    assert "closed the connection during the upload" in result.stderr


def test_https_against_a_plain_http_server_says_to_use_http(invoke, fake):
    plain = fake.url.rsplit("/v1", 1)[0]
    result = invoke("models", "list", "--base-url", fake.url.replace("http://", "https://"), "--max-retries", "0")
    assert result.exit_code == 5
    assert result.stderr == (f"Error: Cannot reach {plain.replace('http://', 'https://')} over HTTPS: the server "
                             f"answered in plain HTTP. Use {plain} in --base-url.\n")


def test_a_tls_handshake_nobody_answers_hints_at_plain_http(invoke):
    import socket
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = invoke("models", "list", "--base-url", f"https://127.0.0.1:{port}/v1", "--api-key", "sk-x",
                        "--timeout", "0.3", "--max-retries", "0")
    assert result.exit_code == 5 and "timed out" in result.stderr
    assert f"If the server speaks plain HTTP, use http://127.0.0.1:{port} in --base-url." in result.stderr


def test_timeout_then_success(fake):
    fake.queue("GET", "/v1/models", Scripted(200, {"data": []}, delay=5))
    sleeps = []
    answer = make_client(fake, sleeps, timeout=1.0).get("/models")  # 1 s: the retry must not time out too
    assert len(answer["data"]) == 4 and len(sleeps) == 1


def test_timeout_exhausted_is_exit_5(invoke, fake):
    fake.queue("GET", "/v1/models", Scripted(200, {"data": []}, delay=3))
    result = invoke("models", "list", "--timeout", "0.3", "--max-retries", "0")
    assert result.exit_code == 5
    assert "timed out after 1 attempts. Raise --timeout or try again later." in result.stderr


# Keys and headers

def test_401_echoing_the_key_never_shows_it(invoke, fake):
    fake.state["valid_keys"] = {"sk-the-right-one"}
    for args in (["models", "list"], ["-vv", "models", "list"], ["models", "get", "gpt-4o", "-vv"]):
        result = invoke(*args)
        assert result.exit_code == 3
        assert "Incorrect API key provided: sk-...cdef" in result.stderr
        assert TEST_KEY not in result.stdout + result.stderr


def test_key_given_as_a_flag_is_redacted_too(invoke, fake):
    fake.state["valid_keys"] = {"sk-the-right-one"}
    flagged = "sk-flagged-key-9876543210fedcba"
    result = invoke("models", "list", "--api-key", flagged, "-vv")
    assert result.exit_code == 3 and flagged not in result.stdout + result.stderr
    assert fake.calls()[-1].headers["authorization"] == f"Bearer {flagged}"


def test_connection_options_before_and_after_the_subcommand(invoke, fake):
    before = invoke("-v", "--organization", "org-1", "--project", "proj-1", "models", "list")
    after = invoke("models", "list", "-v", "--organization", "org-1", "--project", "proj-1")
    mixed = invoke("-v", "--organization", "org-1", "models", "list", "--project", "proj-1")
    for result in (before, after, mixed):
        assert result.exit_code == 0
        assert result.stdout == before.stdout
        assert re.sub(r"\d+ ms|req_\w+", "", result.stderr) == re.sub(r"\d+ ms|req_\w+", "", before.stderr)
        assert "> GET http://127.0.0.1" in result.stderr
    for call in fake.calls("GET", "/v1/models"):
        assert call.headers["openai-organization"] == "org-1" and call.headers["openai-project"] == "proj-1"


def test_verbose_counts_add_up_across_positions(invoke, fake):
    result = invoke("-v", "models", "list", "-v")
    assert "> authorization: [redacted]" in result.stderr  # -v twice is -vv


def test_azure_against_the_fake(invoke, fake):
    fake.route("GET", "/v1/openai/models")(lambda request, reply: reply.json({
        "data": [{"id": "azure-model"}], "query": request.query, "api_key_header": "api-key" in request.headers}))
    result = invoke("models", "list", "--api-type", "azure", "--base-url", fake.url + "/openai", "--raw")
    page = json.loads(result.stdout)
    assert page["query"] == {"api-version": "2024-10-21"} and page["api_key_header"] is True
    assert "authorization" not in fake.calls()[-1].headers


def test_unknown_error_body_from_a_proxy(invoke, fake):
    fake.queue("GET", "/v1/models", *[Scripted(502, raw=b"<html><body>Bad Gateway</body></html>",
                                               content_type="text/html", headers={"Retry-After": "0"})] * 3)
    result = invoke("models", "list", "-q")
    assert result.exit_code == 5
    assert result.stderr.startswith("Error: The server answered 502 Bad Gateway with an HTML page")
    assert "<html>" not in result.stderr


# The fake itself: nothing from its threads reaches the process's stderr

def test_a_failing_route_is_kept_in_the_fake_not_printed_into_the_command_output(invoke, fake):
    def broken(request, reply):
        raise RuntimeError("route failed on purpose")

    fake.route("GET", "/v1/models")(broken)
    fake.routes.insert(0, fake.routes.pop())  # ahead of the real models route
    result = invoke("models", "list", "--max-retries", "0")
    # socketserver prints "Exception occurred during processing of request" to sys.stderr before it
    # closes the socket, i.e. while CliRunner still holds the swapped stderr of this command
    assert result.exit_code == 5
    assert "Exception occurred" not in result.stderr and "Traceback" not in result.stderr
    assert len(fake.errors) == 1 and "route failed on purpose" in fake.errors[0]
