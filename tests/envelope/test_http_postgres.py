"""Several `oaicli serve` instances (and `chat --session` processes) on one PostgreSQL store: per-context order
across instances, one API call per question_id, and an instance killed mid-answer. A real throwaway server
(tests/postgres_server.py); skipped, saying why, where PostgreSQL or psycopg is missing.

No timing: each step waits for an observable state (a call reached the fake, a request waits on the
context's advisory lock in PostgreSQL, an instance counted a request) before the next request is sent."""

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import REPO, TEST_KEY
from tests.envelope.test_http import Served, body, chat_calls, stop_all
from tests.postgres_server import fresh_database, postgres_dsn  # noqa: F401 (the fixture)

pytest.importorskip("uvicorn")
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary,pool]')")


@pytest.fixture
def database(postgres_dsn):  # noqa: F811
    return fresh_database(postgres_dsn)


@pytest.fixture
def instances(home, fake, database):
    started = []

    def start(count: int = 2, *args) -> list[Served]:
        for _ in range(count):
            started.append(Served(home, fake, *args, env={"OAICLI_STORE": database}))
        return started

    yield start
    stop_all(started)


def gated_answers(fake) -> tuple[threading.Semaphore, threading.Semaphore]:
    """Upstream answers that wait for the test: (arrived, go). `arrived` is released as each call reaches the
    fake; each call then waits for one `go.release()`."""
    arrived, go = threading.Semaphore(0), threading.Semaphore(0)

    def answer(messages):
        arrived.release()
        assert go.acquire(timeout=60), "the test never let this answer go"
        return "echo: " + messages[-1]["content"]

    fake.state["answer"] = answer
    return arrived, go


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def lock_waiters(url: str) -> int:
    """Requests waiting on a context's advisory lock (the turn lock of the PostgreSQL store)."""
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                                  ).fetchone()[0]


def received(server: Served) -> int:
    return httpx.get(server.base + "/healthz", timeout=10).json()["received"]


def stored(url: str, name: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT t.role, t.content, t.question_id FROM turns t JOIN sessions s "
                                  "ON s.id = t.session_id WHERE s.name = %s ORDER BY t.id", (name,)).fetchall()


def post_in_thread(server: Served, payload, results: dict, key) -> threading.Thread:
    def ask():
        try:
            results[key] = server.post(payload)
        except httpx.HTTPError as exc:
            results[key] = exc
    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def test_one_context_sent_alternately_to_two_instances_is_answered_in_order(instances, fake, database):
    arrived, go = gated_answers(fake)
    first, second = instances(2)
    results, threads = {}, []
    # r1 -> first (reaches the upstream); r2 -> second (waits on the context's lock in PostgreSQL);
    # r3 -> first (waits behind r1 in first's own queue); r4 -> second (behind r2 in second's queue).
    threads.append(post_in_thread(first, body("r1"), results, 1))
    assert arrived.acquire(timeout=30)
    threads.append(post_in_thread(second, body("r2"), results, 2))
    wait_until(lambda: lock_waiters(database) == 1, "r2 waits for the context's lock")
    threads.append(post_in_thread(first, body("r3"), results, 3))
    wait_until(lambda: received(first) == 2, "first instance received r3")
    threads.append(post_in_thread(second, body("r4"), results, 4))
    wait_until(lambda: received(second) == 2, "second instance received r4")
    for _ in range(4):
        go.release()
    for thread in threads:
        thread.join(60)
    assert {k: r.json()["code"] for k, r in results.items()} == {1: 0, 2: 0, 3: 0, 4: 0}
    calls = [call["messages"] for call in chat_calls(fake)]
    assert [m[-1]["content"] for m in calls] == ["r1", "r2", "r3", "r4"]
    for number, messages in enumerate(calls):  # each saw every earlier exchange of the context
        assert [m["content"] for m in messages if m["role"] == "user"] == [f"r{n}" for n in range(1, number + 2)]
    assert [content for _, content, _ in stored(database, "envelope:g1:u1")] == [
        "r1", "echo: r1", "r2", "echo: r2", "r3", "echo: r3", "r4", "echo: r4"]


def test_the_same_question_id_at_two_instances_at_once_calls_the_api_once(instances, fake, database):
    arrived, go = gated_answers(fake)
    first, second = instances(2)
    results = {}
    threads = [post_in_thread(first, body("Hi", question_id="q-1"), results, "first")]
    assert arrived.acquire(timeout=30)
    threads.append(post_in_thread(second, body("Hi", question_id="q-1"), results, "second"))
    wait_until(lambda: lock_waiters(database) == 1, "the second copy waits for the first")
    go.release()
    for thread in threads:
        thread.join(60)
    answers = {name: (r.status_code, r.json()["data"].get("answer", r.text)) for name, r in results.items()}
    assert answers == {"first": (200, "echo: Hi"), "second": (200, "echo: Hi")}
    assert len(chat_calls(fake)) == 1
    assert stored(database, "envelope:g1:u1") == [("user", "Hi", "q-1"), ("assistant", "echo: Hi", "q-1")]


def test_an_instance_killed_mid_answer_loses_nothing_and_the_other_goes_on(instances, fake, database):
    arrived, go = gated_answers(fake)
    victim, survivor = instances(2)
    results, threads = {}, []
    for user in ("a", "b", "c"):  # three contexts answered by the victim, three by the survivor
        threads.append(post_in_thread(victim, body(f"to victim from {user}", user_id=user, question_id=f"{user}-1"),
                                      results, ("victim", user)))
        threads.append(post_in_thread(survivor, body(f"to survivor from {user}2", user_id=f"{user}2",
                                                     question_id=f"{user}2-1"), results, ("survivor", user)))
    for _ in range(6):
        assert arrived.acquire(timeout=30)  # all six are mid-answer, each holding its context's lock
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(30)
    for _ in range(6):
        go.release()
    for thread in threads:
        thread.join(60)
    for user in ("a", "b", "c"):
        assert isinstance(results["victim", user], httpx.HTTPError)  # its clients saw the connection go
        assert results["survivor", user].json()["code"] == 0
        assert stored(database, f"envelope:g1:{user}") == []  # nothing half-written
    # The clients ask the survivor again with the same question_ids: answered (their locks died with the victim).
    for user in ("a", "b", "c"):
        go.release()
        retried = survivor.post(body(f"to victim from {user}", user_id=user, question_id=f"{user}-1"))
        assert retried.json()["code"] == 0 and retried.json()["data"]["answer"] == f"echo: to victim from {user}"
    for user in ("a", "b", "c"):  # exactly one exchange per question, nothing lost, nothing twice
        assert stored(database, f"envelope:g1:{user}") == [
            ("user", f"to victim from {user}", f"{user}-1"), ("assistant", f"echo: to victim from {user}", f"{user}-1")]
        assert stored(database, f"envelope:g1:{user}2") == [
            ("user", f"to survivor from {user}2", f"{user}2-1"),
            ("assistant", f"echo: to survivor from {user}2", f"{user}2-1")]


def test_eight_chat_session_processes_on_one_postgresql_session_take_turns(home, fake, database):
    env = {**os.environ, "OAICLI_HOME": str(home), "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": TEST_KEY,
           "OAICLI_STORE": database}
    script = ("import subprocess, sys\n"
              "for turn in range(3):\n"
              "    subprocess.run([sys.executable, '-m', 'oaicli', 'chat', '--session', 'shared', "
              "f'{sys.argv[1]}-{turn}'], check=True, stdout=subprocess.DEVNULL)\n")
    workers = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"], cwd=REPO, env=env) for n in range(8)]
    for worker in workers:
        assert worker.wait(300) == 0
    calls = [call["messages"] for call in chat_calls(fake)]
    assert len(calls) == 24
    # Each turn saw every earlier one: the numbers of earlier questions sent are 0, 1, ..., 23.
    assert sorted(len([m for m in messages if m["role"] == "user"]) - 1 for messages in calls) == list(range(24))
    turns = stored(database, "shared")
    assert len(turns) == 48
    for index in range(0, 48, 2):  # never interleaved: each question is followed by its own answer
        assert turns[index][0] == "user" and turns[index + 1] == ("assistant", "echo: " + turns[index][1], None)
    assert sorted(content for role, content, _ in turns if role == "user") == sorted(
        f"w{n}-{t}" for n in range(8) for t in range(3))


def threads_of(server: Served) -> int:
    for line in open(f"/proc/{server.process.pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count in /proc")


def held_locks(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="counts threads through /proc")
def test_turns_are_answered_on_the_event_loop_each_holding_its_lock_without_a_thread(instances, fake, database):
    arrived, go = gated_answers(fake)
    (server,) = instances(1)
    contexts = 24
    results = {}
    threads = [post_in_thread(server, body(f"q{n}", user_id=f"u{n}"), results, n) for n in range(contexts)]
    for _ in range(contexts):
        assert arrived.acquire(timeout=60)
    # Every turn is mid-answer now, each holding its context's advisory lock on a connection of its own;
    # answered in threads, there would be a blocked thread per turn.
    assert held_locks(database) == contexts
    assert threads_of(server) < contexts
    for _ in range(contexts):
        go.release()
    for thread in threads:
        thread.join(60)
    assert sorted(r.json()["data"]["answer"] for r in results.values()) == sorted(f"echo: q{n}" for n in range(contexts))
    assert held_locks(database) == 0


def test_a_pool_larger_than_the_server_allows_is_said_at_start(instances, database):
    with psycopg.connect(database) as connection:
        allowed = int(connection.execute("SHOW max_connections").fetchone()[0])
    (server,) = instances(1, "--workers", str(allowed))
    assert any(f"PostgreSQL allows {allowed} connections and this instance may hold up to {allowed + 2}" in line
               for line in server.log)


def test_serve_without_greenlet_says_what_to_install(monkeypatch):
    from oaicli.core.errors import OaicliError
    from oaicli.envelope.http import build

    class Opened:  # the blocking store serve opened first: it worked, so psycopg is there
        url = "postgresql://db/x"
        closed = False

        def server_connections(self):
            return 100

        def close(self):
            self.closed = True

    opened = Opened()
    monkeypatch.setitem(sys.modules, "oaicli.conversation.pgasync", None)  # as when greenlet is missing
    with pytest.raises(OaicliError) as raised:
        build._async_postgres(opened, 4, lambda text: None)
    assert "needs greenlet" in raised.value.message and "greenlet" in raised.value.hint and raised.value.exit_code == 3
    assert opened.closed


def test_worker_processes_answer_on_postgresql_in_order(instances, fake, database):
    (server,) = instances(1, "--processes", "2")
    for number in range(3):
        for user in ("a", "b"):
            reply = server.post(body(f"{user}{number}", user_id=user))
            assert reply.json()["data"]["answer"] == f"echo: {user}{number}"
    for user in ("a", "b"):
        assert [content for _, content, _ in stored(database, f"envelope:g1:{user}")] == [
            text for number in range(3) for text in (f"{user}{number}", f"echo: {user}{number}")]
