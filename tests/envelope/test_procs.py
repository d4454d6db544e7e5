"""serve --processes: the frames between the HTTP process and its workers, and the ProcessRunner driven
in-process against real worker processes and the loopback fake (no HTTP front)."""

import asyncio
import threading
import time
from functools import partial

import pytest

pytest.importorskip("uvicorn")

from oaicli.envelope.http.app import Service  # noqa: E402
from oaicli.envelope.http.procs import Frames, ProcessRunner, frame  # noqa: E402

ENGINE = {"model": "gpt-3.5-turbo", "system": None}


def test_frames_come_out_whole_however_the_bytes_are_split():
    messages = [("job", 1, {"question": "日本語 " * 300}, False), ("final", 1, ({"code": 0}, 200, 0.25)),
                ("delta", 2, {"delta": ""}), ("ready",)]
    stream = b"".join(frame(message) for message in messages)
    for size in (1, 3, 7, len(stream)):  # byte by byte, odd pieces, all at once
        received, lost = [], []
        frames = Frames(received.append, partial(lost.append, True))
        for start in range(0, len(stream), size):
            frames.data_received(stream[start:start + size])
        assert received == messages and not frames.buffer and not lost
        frames.connection_lost(None)
        assert lost == [True]


def parsed_request(runner: ProcessRunner, question: str, user: str):
    return runner.parser.parse({"version": "1.0.0", "pars": {"user_id": user, "group_id": "g", "question": question,
                                                             "question_id": ""}})


def test_a_worker_answers_streams_deltas_before_its_final_and_close_stops_every_worker(home, fake):
    fake.state["chunks"] = 3
    runner = ProcessRunner(2, {"flags": {}, "engine": ENGINE, "workers": 4, "api": "chat"})
    processes = [worker.current.process for worker in runner._workers]

    async def ask():
        await runner.start()
        deltas = []
        streamed = await runner.run(parsed_request(runner, "tell me", "u1"), deltas.append)
        plain = await asyncio.gather(*(runner.run(parsed_request(runner, f"q{n}", f"user{n}")) for n in range(6)))
        return deltas, streamed, plain

    try:
        deltas, streamed, plain = asyncio.run(ask())
        assert not runner.busy()
    finally:
        runner.close()
    response, status, upstream = streamed
    assert status == 200 and response["data"]["answer"] == "echo: tell me" and upstream > 0
    assert "".join(line["data"]["delta"] for line in deltas) == "echo: tell me" and len(deltas) == 3
    assert [(r["data"]["answer"], status) for r, status, _ in plain] == [(f"echo: q{n}", 200) for n in range(6)]
    assert all(process.poll() is not None for process in processes)  # close() waited for them to exit


def test_contexts_on_both_workers_are_each_answered_in_arrival_order(home, fake):
    """The HTTP process's queues (Service) in front of two real workers: three requests per context, all
    taken in at once, for two contexts owned by each worker."""
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def answer(messages):
        user = messages[-1]["content"].split("-")[0]
        with lock:
            active[user] = active.get(user, 0) + 1
            peak[user] = max(peak.get(user, 0), active[user])
        time.sleep(0.5 if messages[-1]["content"].endswith("-0") else 0.05)
        with lock:
            active[user] -= 1
        return "answer to " + messages[-1]["content"]

    fake.state["answer"] = answer
    runner = ProcessRunner(2, {"flags": {}, "engine": ENGINE, "workers": 8, "api": "chat"})
    service = Service(runner, runner.parser, token=None, max_body=65536)
    owners: dict[int, list[str]] = {0: [], 1: []}
    for n in range(64):  # two contexts of each worker (the HTTP process routes by this hash)
        key = parsed_request(runner, "?", f"user{n}").context_key
        if len(owners[hash(key) % 2]) < 2:
            owners[hash(key) % 2].append(f"user{n}")
    users = owners[0] + owners[1]
    assert len(users) == 4

    async def ask_all():
        await runner.start()
        answers = []
        for number in range(3):
            for user in users:
                parsed = parsed_request(runner, f"{user}-{number}", user)
                ticket = service.join(parsed)  # the place in the context's queue, taken on arrival
                answers.append(asyncio.ensure_future(service.answer(parsed, ticket)))
            # The later rounds arrive while the first is upstream, the third just before it ends: without
            # the queues the session's file lock, retried with a growing pause, would let the third go
            # before the second. (The order asserted holds however the pauses fall.)
            await asyncio.sleep((0.03, 0.4, 0)[number])
        return await asyncio.gather(*answers)

    try:
        results = asyncio.run(ask_all())
    finally:
        runner.close()
    assert [(status, response["code"]) for response, status, _, _ in results] == [(200, 0)] * 12
    calls = [call.json()["messages"] for call in fake.calls("POST", "/v1/chat/completions")]
    for user in users:
        mine = [messages for messages in calls if messages[-1]["content"].startswith(user + "-")]
        assert [messages[-1]["content"] for messages in mine] == [f"{user}-{n}" for n in range(3)]
        for number, messages in enumerate(mine):  # each saw every earlier exchange of its context, in order
            assert [m["content"] for m in messages if m["role"] == "user"] == [f"{user}-{n}" for n in range(number + 1)]
        assert peak[user] == 1
