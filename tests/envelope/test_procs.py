"""serve --processes: the frames between the HTTP process and its workers, and the ProcessRunner driven
in-process against real worker processes and the loopback fake (no HTTP front)."""

import asyncio
from functools import partial

import pytest

pytest.importorskip("uvicorn")

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
