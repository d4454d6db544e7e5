"""`oaicli serve`: real HTTP requests against a real server process, which talks to the loopback fake."""

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import REPO, TEST_KEY, run_process
from tests.fake.server import Scripted

pytest.importorskip("uvicorn")

TOKEN = "serve-token-0123456789abcdef"
# The same behaviour with the answers in worker processes (--processes 2) as on the one process's event loop.
PROCESSES = pytest.mark.parametrize("procs", [(), ("--processes", "2")], ids=["one-process", "processes"])


def body(question, user_id="u1", group_id="g1", question_id="", version="1.0.0"):
    return {"version": version, "pars": {"user_id": user_id, "group_id": group_id, "question": question,
                                         "question_id": question_id}}


class Served:
    """A running `python -m oaicli serve --port 0`; its stderr is collected in `log`."""

    def __init__(self, home, fake, *args, env=None):
        full_env = {**os.environ, "OAICLI_HOME": str(home), "OPENAI_BASE_URL": fake.url,
                    "OPENAI_API_KEY": TEST_KEY, **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "oaicli", "serve", "--port", "0", *args],
                                        cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.log: list[str] = []
        self.base = self._wait_for_url()
        self.url = self.base + "/v1/envelope"
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stderr], [], [], 0.5)
            if ready:
                line = self.process.stderr.readline()
                if not line:
                    break
                self.log.append(line)
                if line.startswith("Serving the envelope on "):
                    return line.split()[4].removesuffix("/v1/envelope")
        self.process.kill()
        raise AssertionError("serve did not start: " + "".join(self.log))

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)

    def post(self, payload, headers=None, **kwargs) -> httpx.Response:
        content = payload if isinstance(payload, (str, bytes)) else json.dumps(payload, ensure_ascii=False)
        return httpx.post(self.url, content=content, headers=headers, timeout=30, **kwargs)

    def stop(self, sig=signal.SIGTERM, timeout=20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


@pytest.fixture
def serve(home, fake):
    started = []

    def start(*args, env=None) -> Served:
        server = Served(home, fake, *args, env=env)
        started.append(server)
        return server

    yield start
    stop_all(started)


def chat_calls(fake):
    return [call.json() for call in fake.calls("POST", "/v1/chat/completions")]


def stored_messages(home, name):
    from oaicli.conversation.store import Store
    with Store.open(home / "sessions.db") as store:
        if store.get_session(name) is None:
            return []
        return store.export_messages(name)


# The contract


@PROCESSES
def test_second_request_is_answered_in_the_context_of_the_first(procs, serve, fake):
    server = serve(*procs)
    first = server.post(body("昨天下雨了,我出门没带伞,会怎么样"))
    second = server.post(body("如果带了呢"))
    assert first.status_code == 200 and second.status_code == 200
    answer = first.json()
    assert answer["version"] == "1.0.0" and answer["code"] == 0 and answer["msg"] == "ok"
    assert answer["data"]["answer"] == "echo: 昨天下雨了,我出门没带伞,会怎么样"
    assert answer["data"]["user_id"] == "u1" and answer["data"]["group_id"] == "g1"
    assert answer["data"]["question_id"]  # generated for an empty one
    sent = chat_calls(fake)[1]["messages"]
    assert [m["content"] for m in sent] == ["昨天下雨了,我出门没带伞,会怎么样", "echo: 昨天下雨了,我出门没带伞,会怎么样",
                                            "如果带了呢"]
    other_user = server.post(body("如果带了呢", user_id="u2"))
    assert [m["content"] for m in chat_calls(fake)[2]["messages"]] == ["如果带了呢"]
    assert other_user.json()["data"]["user_id"] == "u2"


def test_model_system_prompt_and_sampling_options_reach_the_request(serve, fake):
    server = serve("-m", "gpt-4o", "-s", "Be brief.", "--max-tokens", "50", "--temperature", "0.5")
    assert server.post(body("Hi")).json()["data"]["model"] == "gpt-4o"
    sent = chat_calls(fake)[0]
    assert sent["model"] == "gpt-4o" and sent["max_tokens"] == 50 and sent["temperature"] == 0.5
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert "stream" not in sent


def test_a_completions_only_model_is_refused_at_start(fake):
    result = run_process("serve", "--port", "0", "-m", "text-davinci-003",
                         env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY})
    assert result.returncode == 2 and "completions-only" in result.stderr and result.stderr.count("\n") == 1


@PROCESSES
def test_a_repeated_question_id_returns_the_stored_answer_without_calling_the_api(procs, serve, fake, home):
    server = serve(*procs)
    first = server.post(body("Hi", question_id="q-1")).json()
    fake.state["answer"] = lambda messages: "a different answer"
    again = server.post(body("Hi", question_id="q-1")).json()
    assert again == first
    assert len(chat_calls(fake)) == 1
    assert stored_messages(home, "envelope:g1:u1") == [{"role": "user", "content": "Hi"},
                                                       {"role": "assistant", "content": "echo: Hi"}]


@pytest.mark.parametrize("payload, code, message", [
    ("not json", 1001, "not JSON"),
    (json.dumps(body("Hi", version="2.0.0")), 1002, "2.0.0"),
    (json.dumps({"version": "1.0.0", "pars": {"user_id": "u1", "group_id": "g1"}}), 1003, "question is missing"),
    (json.dumps(body(42)), 1003, "pars.question must be a string"),
    (json.dumps(body("   ")), 1003, "question is empty"),
])
def test_a_bad_body_is_a_400_with_the_envelope_error_and_no_api_call(serve, fake, payload, code, message):
    server = serve()
    response = server.post(payload)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["version"] == "1.0.0" and answer["code"] == code and message in answer["msg"]
    if code == 1003 and "pars" in payload:
        assert answer["data"].get("user_id") == "u1"  # the ids it could read are echoed
    assert chat_calls(fake) == []


@pytest.mark.parametrize("field", ["user_id", "group_id", "question_id", "question"])
def test_a_lone_surrogate_in_any_field_is_one_coded_400_and_the_server_goes_on(serve, fake, field):
    server = serve()
    payload = json.dumps(body("Hi", question_id="q1")).replace(f'"{field}": "', f'"{field}": "\\ud800', 1)
    response = server.post(payload)
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    assert response.json()["code"] == 1003 and f"pars.{field}" in response.json()["msg"]
    assert chat_calls(fake) == []
    version = server.post(json.dumps(body("Hi")).replace('"1.0.0"', '"\\ud800"'))
    assert version.status_code == 400 and version.json()["code"] == 1002
    assert server.post(body("Hi")).json()["code"] == 0  # and the next good request is answered
    assert "Traceback" not in "".join(server.log)


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_an_html_page_instead_of_an_answer_is_a_502_with_code_2002(serve, fake, home, accept):
    server = serve(env={"OAICLI_MAX_RETRIES": "0"})
    fake.queue("POST", "/v1/chat/completions",
               Scripted(200, raw=b"<!doctype html><html><body>Sign in to the Wi-Fi</body></html>",
                        content_type="text/html"))
    response = server.post(body("Hi"), headers={"Accept": accept})
    assert response.status_code == 502 and response.json()["code"] == 2002
    assert "JSON" in response.json()["msg"]  # said what came instead of an answer
    assert stored_messages(home, "envelope:g1:u1") == []


def test_limits_on_question_length_and_request_size(serve, fake, home):
    server = serve("--max-question-chars", "10", "--max-body", "300")
    too_long = server.post(body("x" * 11))
    assert too_long.status_code == 400 and too_long.json()["code"] == 1004
    assert "limit is 10" in too_long.json()["msg"]
    huge = server.post(json.dumps(body("y" * 5)) + " " * 400)
    assert huge.status_code == 413 and huge.json()["code"] == 1004 and "300 bytes" in huge.json()["msg"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 100

    streamed = httpx.post(server.url, content=chunks(), timeout=30)
    assert streamed.status_code == 413
    assert chat_calls(fake) == []
    assert server.post(body("fits")).json()["code"] == 0


def test_a_token_is_required_when_set_and_no_secret_is_ever_shown(serve, fake):
    server = serve("--token", TOKEN)
    missing = server.post(body("Hi"))
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["code"] == 1005 and missing.json()["version"] == "1.0.0"
    wrong = server.post(body("Hi"), headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
    assert wrong.status_code == 401
    assert chat_calls(fake) == []
    ok = server.post(body("Hi"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["data"]["answer"] == "echo: Hi"
    fake.queue("POST", "/v1/chat/completions", Scripted(401, {"error": {
        "message": f"Incorrect API key provided: {TEST_KEY}.", "type": "invalid_request_error",
        "code": "invalid_api_key"}}))
    refused = server.post(body("Again"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 502 and refused.json()["code"] == 2004
    assert TEST_KEY not in refused.text and TEST_KEY[:12] not in refused.text
    server.stop()
    log = "".join(server.log)
    assert TEST_KEY not in log and TOKEN not in log


def test_the_token_can_come_from_the_environment(serve, fake):
    server = serve(env={"OAICLI_SERVE_TOKEN": TOKEN})
    assert server.post(body("Hi")).status_code == 401
    assert server.post(body("Hi"), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_refuses_a_non_loopback_address_without_a_token(fake):
    result = run_process("serve", "--host", "0.0.0.0", "--port", "0",
                         env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "without a token" in result.stderr and "--insecure" in result.stderr
    assert result.stdout == ""


def test_listens_on_a_non_loopback_address_with_insecure(serve):
    server = serve("--host", "0.0.0.0", "--insecure")
    assert server.base.startswith("http://0.0.0.0:")
    port = server.base.rsplit(":", 1)[1]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["status"] == "ok"


def test_without_the_extra_installed_it_says_what_to_install(tmp_path, fake):
    blocker = tmp_path / "blocker"
    (blocker / "uvicorn").mkdir(parents=True)
    (blocker / "uvicorn" / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = run_process("serve", "--port", "0", env={"PYTHONPATH": str(blocker), "OPENAI_BASE_URL": fake.url,
                                                     "OPENAI_API_KEY": TEST_KEY})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: `oaicli serve` needs the server libraries: pipx inject oaicli uvicorn httptools (in a venv: pip install '.[serve]' from the clone)"]
    assert "pip install 'oaicli" not in result.stderr  # that PyPI name is another project


def test_the_rest_of_oaicli_never_imports_the_server_libraries():
    code = ("import sys, oaicli.cli.root; oaicli.cli.root.cli.main(['--help'], standalone_mode=False); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio') "
            "or m.startswith('oaicli.envelope.http')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_without_a_key_or_with_the_port_taken_it_says_so_in_one_line(serve, fake):
    no_key = run_process("serve", "--port", "0", env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": ""})
    assert no_key.returncode == 3 and no_key.stderr.startswith("Error: No API key.")
    assert no_key.stderr.count("\n") == 1
    server = serve()
    port = server.base.rsplit(":", 1)[1]
    taken = run_process("serve", "--port", port, env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY})
    assert taken.returncode == 1 and f"Cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert taken.stderr.count("\n") == 1


def test_verbose_logs_requests_but_never_the_key(serve, fake):
    server = serve("-vv")
    assert server.post(body("Hi")).status_code == 200
    server.stop()
    log = "".join(server.log)
    assert '"POST /v1/envelope HTTP/1.1" 200' in log and "> POST " + fake.url + "/chat/completions" in log
    assert TEST_KEY not in log and server.process.stdout.read() == ""


def test_an_answer_is_saved_even_when_its_client_gave_up_and_a_retry_gets_it(serve, fake, home):
    arrived = slow_answers(fake, 1.0)
    server = serve()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url, json=body("Hi", question_id="q-7"), timeout=httpx.Timeout(30, read=0.3))
    wait_for_arrivals(arrived, 1)
    retried = server.post(body("Hi", question_id="q-7"))  # waits its turn behind the first, then replays it
    assert retried.status_code == 200 and retried.json()["data"]["answer"] == "echo: Hi"
    assert len(chat_calls(fake)) == 1
    assert stored_messages(home, "envelope:g1:u1") == [{"role": "user", "content": "Hi"},
                                                       {"role": "assistant", "content": "echo: Hi"}]


def worker_pids(server) -> list[int]:
    """serve --processes N's worker processes: the HTTP process's children."""
    pid = server.process.pid
    return [int(child) for child in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def wait_for_log(server, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in "".join(server.log):
        assert time.monotonic() < deadline, f"serve never said {text!r}: {''.join(server.log)}"
        time.sleep(0.02)


def test_a_worker_process_that_dies_fails_its_answers_in_flight_and_a_new_one_takes_its_place(serve, fake, home):
    arrived = slow_answers(fake, 5.0)
    server = serve("--processes", "2")
    killed = worker_pids(server)
    assert len(killed) == 2
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("response", server.post(body("Hi"))))
    thread.start()
    wait_for_arrivals(arrived, 1)
    for pid in killed:  # whichever one holds the request
        os.kill(pid, signal.SIGKILL)
    thread.join(10)
    assert outcome["response"].status_code == 500 and outcome["response"].json()["code"] == 5000
    assert "not saved" in outcome["response"].json()["msg"]
    assert outcome["response"].json()["data"]["user_id"] == "u1"
    wait_for_log(server, "was killed by signal 9; 1 answer(s) in flight got an error")

    fake.state["answer"] = lambda messages: "echo: " + messages[-1]["content"]
    again = server.post(body("Again"))  # the same context, now answered by the new worker
    assert again.status_code == 200 and again.json()["data"]["answer"] == "echo: Again"
    assert stored_messages(home, "envelope:g1:u1") == [{"role": "user", "content": "Again"},
                                                       {"role": "assistant", "content": "echo: Again"}]
    other = server.post(body("Hi", user_id="u9")).json()
    assert other["code"] == 0, other  # and the other context's worker too
    started = worker_pids(server)
    assert len(started) == 2 and not set(started) & set(killed)
    assert "Traceback" not in "".join(server.log)
    assert server.stop(signal.SIGTERM) == 0


def test_a_stream_whose_worker_process_dies_ends_with_an_error_event_and_saves_nothing(serve, fake, home):
    fake.state.update(chunks=3, chunk_delay=5.0)
    server = serve("--processes", "2")
    killed = worker_pids(server)
    events = []
    with httpx.stream("POST", server.url, json=body("tell me a story"), timeout=30,
                      headers={"Accept": "text/event-stream"}) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("event: delta"):
                break
        for pid in killed:  # the first delta came through the worker: kill it mid-answer
            os.kill(pid, signal.SIGKILL)
        events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    final = json.loads(events[-1])
    assert final["code"] == 5000 and "not saved" in final["msg"]
    assert stored_messages(home, "envelope:g1:u1") == []
    fake.state["chunk_delay"] = 0
    assert server.post(body("Hi"), headers={"Accept": "text/event-stream"}).text.count("event: delta") == 3


def test_a_worker_process_that_cannot_start_is_one_error_line_at_start(home, fake, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    result = run_process("serve", "--store", f"sqlite:///{blocked}/sessions.db", "--port", "0", "--processes", "2",
                         env={"OAICLI_HOME": str(home)})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: A worker process failed to start:")
    assert TEST_KEY not in result.stderr


def test_healthz(serve):
    server = serve()
    health = httpx.get(server.base + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert TEST_KEY not in health.text


# Upstream failures


@pytest.mark.parametrize("scripted, status, code", [
    (Scripted(500, {"error": {"message": "boom", "type": "server_error"}}), 502, 2002),
    (Scripted(400, {"error": {"message": "bad temperature", "type": "invalid_request_error"}}), 502, 2001),
    (Scripted(504, {"error": {"message": "gateway timeout", "type": "server_error"}}), 504, 2002),
])
@PROCESSES
def test_upstream_failures_map_to_gateway_statuses_and_save_nothing(procs, serve, fake, home, scripted, status, code):
    server = serve(*procs, env={"OAICLI_MAX_RETRIES": "0"})
    fake.queue("POST", "/v1/chat/completions", scripted)
    response = server.post(body("Hi", question_id="q-9"))
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["data"]["question_id"] == "q-9"
    assert stored_messages(home, "envelope:g1:u1") == []
    retried = server.post(body("Hi", question_id="q-9"))  # the same question_id may be retried
    assert retried.status_code == 200 and retried.json()["data"]["answer"] == "echo: Hi"


def test_an_upstream_timeout_is_a_504(serve, fake, home):
    server = serve(env={"OAICLI_MAX_RETRIES": "0", "OAICLI_TIMEOUT": "0.3"})
    fake.queue("POST", "/v1/chat/completions", Scripted(200, {}, delay=2))
    response = server.post(body("Hi"))
    assert response.status_code == 504 and response.json()["code"] == 2002
    assert "timed out" in response.json()["msg"]
    assert stored_messages(home, "envelope:g1:u1") == []


# Streaming


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@PROCESSES
def test_server_sent_events_deltas_then_the_final_object(procs, serve, fake, home):
    server = serve(*procs)
    fake.state["chunks"] = 4
    response = server.post(body("tell me a story"), headers={"Accept": "text/event-stream"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    names = [name for name, _ in events]
    assert names == ["delta"] * 4 + ["final"]
    final = events[-1][1]
    assert final["code"] == 0 and final["data"]["answer"] == "echo: tell me a story"
    assert "".join(e["data"]["delta"] for _, e in events[:-1]) == final["data"]["answer"]
    assert all(e["data"]["question_id"] == final["data"]["question_id"] for _, e in events)
    assert chat_calls(fake)[0]["stream"] is True
    assert stored_messages(home, "envelope:g1:u1")[-1] == {"role": "assistant", "content": "echo: tell me a story"}


def test_a_stream_that_fails_before_any_delta_is_a_plain_error(serve, fake, home):
    server = serve(env={"OAICLI_MAX_RETRIES": "0"})
    fake.queue("POST", "/v1/chat/completions", Scripted(503, {"error": {"message": "overloaded"}}))
    response = server.post(body("Hi"), headers={"Accept": "text/event-stream"})
    assert response.status_code == 502 and response.json()["code"] == 2002


def test_a_stream_that_drops_mid_way_ends_with_an_error_event_and_saves_nothing(serve, fake, home):
    server = serve(env={"OAICLI_MAX_RETRIES": "0"})
    fake.state.update(chunks=4, drop_after=3)
    response = server.post(body("tell me a story"), headers={"Accept": "text/event-stream"})
    events = sse_events(response)
    assert [name for name, _ in events][-1] == "final" and "delta" in [name for name, _ in events]
    assert events[-1][1]["code"] == 2002
    assert stored_messages(home, "envelope:g1:u1") == []


# Ordering and concurrency


@PROCESSES
def test_one_context_is_strictly_ordered_while_contexts_run_concurrently(procs, serve, fake):
    active: dict[str, int] = {}
    peak = {"overall": 0}
    peak_per_context: dict[str, int] = {}
    lock = threading.Lock()

    def answer(messages):
        context = messages[-1]["content"].split("-")[0]
        with lock:
            active[context] = active.get(context, 0) + 1
            peak_per_context[context] = max(peak_per_context.get(context, 0), active[context])
            peak["overall"] = max(peak["overall"], sum(active.values()))
        time.sleep(0.25)
        with lock:
            active[context] -= 1
        return "answer to " + messages[-1]["content"]

    fake.state["answer"] = answer
    server = serve(*procs)
    results: dict[str, dict] = {}

    clients = {}
    for number in range(4):  # connected beforehand, so a request arrives as soon as it is sent
        for user in ("alice", "bob", "carol"):
            clients[user, number] = httpx.Client(timeout=30)
            clients[user, number].get(server.base + "/healthz")

    def ask(user, number):
        question = f"{user}-{number}"
        results[question] = clients[user, number].post(server.url, json=body(question, user_id=user)).json()

    threads = []
    for number in range(4):  # each round is sent once the server has queued the one before
        for user in ("alice", "bob", "carol"):
            threads.append(threading.Thread(target=ask, args=(user, number)))
            threads[-1].start()
        deadline = time.monotonic() + 20
        while httpx.get(server.base + "/healthz", timeout=10).json()["received"] < 3 * (number + 1):
            assert time.monotonic() < deadline, "requests did not arrive"
            time.sleep(0.01)
    for thread in threads:
        thread.join(30)

    assert all(result["code"] == 0 for result in results.values()) and len(results) == 12
    for user in ("alice", "bob", "carol"):
        calls = [c["messages"] for c in chat_calls(fake) if c["messages"][-1]["content"].startswith(user)]
        assert [m[-1]["content"] for m in calls] == [f"{user}-{n}" for n in range(4)]
        for number, messages in enumerate(calls):  # each saw every earlier exchange, in order
            assert [m["content"] for m in messages if m["role"] == "user"] == [f"{user}-{n}" for n in
                                                                                 range(number + 1)]
        assert peak_per_context[user] == 1
    assert peak["overall"] >= 2  # different contexts were answered at the same time
    health = httpx.get(server.base + "/healthz", timeout=10).json()
    assert health["contexts"] == 0 and health["in_flight"] == 0  # idle contexts' locks are dropped


# Shutdown


def slow_answers(fake, seconds: float) -> threading.Semaphore:
    """Answers that take `seconds`; the semaphore is released as each request reaches the upstream."""
    arrived = threading.Semaphore(0)

    def answer(messages):
        arrived.release()
        time.sleep(seconds)
        return "echo: " + messages[-1]["content"]

    fake.state["answer"] = answer
    return arrived


def wait_for_arrivals(arrived: threading.Semaphore, count: int) -> None:
    for _ in range(count):
        assert arrived.acquire(timeout=20), "a request never reached the upstream"


@PROCESSES
def test_sigterm_lets_answers_in_flight_finish_and_saves_them_whole(procs, serve, fake, home):
    arrived = slow_answers(fake, 1.0)
    server = serve(*procs)
    results = {}
    threads = [threading.Thread(target=lambda u=u: results.__setitem__(u, server.post(body("Hi", user_id=u))))
               for u in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    wait_for_arrivals(arrived, 3)
    assert server.stop(signal.SIGTERM) == 0
    for thread in threads:
        thread.join(10)
    assert {u: (r.status_code, r.json()["code"]) for u, r in results.items()} == {u: (200, 0) for u in "abc"}
    for user in "abc":
        assert stored_messages(home, f"envelope:g1:{user}") == [{"role": "user", "content": "Hi"},
                                                                {"role": "assistant", "content": "echo: Hi"}]
    assert "Stopped." in "".join(server.log)


def test_sigterm_lets_a_stream_in_flight_finish(serve, fake, home):
    fake.state.update(chunks=5, chunk_delay=0.2)
    server = serve()
    events = []

    def ask():
        with httpx.stream("POST", server.url, json=body("tell me a story"), timeout=30,
                          headers={"Accept": "text/event-stream"}) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))

    thread = threading.Thread(target=ask)
    thread.start()
    deadline = time.monotonic() + 20
    while "delta" not in events:
        assert time.monotonic() < deadline, "no delta arrived"
        time.sleep(0.02)
    assert server.stop(signal.SIGTERM) == 0
    thread.join(10)
    assert events[-1] == "final" and events.count("delta") == 5
    assert stored_messages(home, "envelope:g1:u1")[-1] == {"role": "assistant", "content": "echo: tell me a story"}


@PROCESSES
def test_answers_still_in_flight_past_the_shutdown_timeout_are_not_saved(procs, serve, fake, home):
    arrived = slow_answers(fake, 1.5)
    server = serve("--shutdown-timeout", "0.3", *procs)
    outcome = {}

    def ask():
        try:
            outcome["response"] = server.post(body("Hi"))
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=ask)
    thread.start()
    wait_for_arrivals(arrived, 1)
    assert server.stop(signal.SIGINT) == 130
    thread.join(10)
    response = outcome["response"]  # the envelope's own answer, not uvicorn's plain-text 500
    assert response.status_code == 503 and response.headers["content-type"] == "application/json"
    assert response.json()["code"] == 5000 and "not saved" in response.json()["msg"]
    time.sleep(1.5)  # past the upstream answer: nothing may arrive late in the store either
    assert stored_messages(home, "envelope:g1:u1") == []
    assert "not saved" in "".join(server.log) and "Traceback" not in "".join(server.log)


@PROCESSES
def test_a_second_signal_answers_what_is_in_flight_with_the_envelope_503(procs, serve, fake, home):
    arrived = slow_answers(fake, 3.0)
    server = serve("--shutdown-timeout", "60", *procs)
    results = {}
    threads = [threading.Thread(target=lambda u=u: results.__setitem__(u, server.post(body("Hi", user_id=u))))
               for u in ("a", "b")]
    for thread in threads:
        thread.start()
    wait_for_arrivals(arrived, 2)
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while not any(line.startswith("Stopping") for line in server.log):  # the first signal was handled
        assert time.monotonic() < deadline, "the first signal was not handled"
        time.sleep(0.02)
    assert server.stop(signal.SIGTERM) == 0
    for thread in threads:
        thread.join(10)
    assert {u: (r.status_code, r.json()["code"]) for u, r in results.items()} == {u: (503, 5000) for u in "ab"}
    assert "Traceback" not in "".join(server.log)
    time.sleep(3.0)  # past the upstream answers: nothing may arrive late in the store either
    assert stored_messages(home, "envelope:g1:a") == [] and stored_messages(home, "envelope:g1:b") == []


# Metrics


@PROCESSES
def test_metrics_count_requests_by_outcome_and_sit_behind_the_token(procs, serve, fake):
    server = serve("--token", TOKEN, *procs)  # with worker processes, the HTTP process counts for them all
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for user in ("u1", "u2", "u3", "u4", "u5", "u6"):  # contexts spread over the workers
        assert server.post(body("Hi", user_id=user), headers=auth).json()["code"] == 0
    assert server.post("not json", headers=auth).status_code == 400
    assert server.post(body("Hi")).status_code == 401
    assert httpx.get(server.base + "/metrics", timeout=10).status_code == 401
    metrics = httpx.get(server.base + "/metrics", headers=auth, timeout=10)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    for outcome, count in (("ok", 6), ("rejected", 1), ("unauthorized", 1)):
        assert f'oaicli_envelope_requests_total{{outcome="{outcome}"}} {count}' in lines
    assert 'oaicli_envelope_added_seconds_count{outcome="ok"} 6' in lines
    assert "oaicli_envelope_upstream_seconds_count 6" in lines
    assert TEST_KEY not in metrics.text and TOKEN not in metrics.text


def test_no_metrics_turns_the_endpoint_off(serve):
    server = serve("--no-metrics")
    assert httpx.get(server.base + "/metrics", timeout=10).status_code == 404


def stop_all(servers) -> None:
    """Kill whichever of the started serve processes still run, and close their pipes."""
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        server.process.stdout.close()
