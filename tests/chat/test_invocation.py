"""Engines take an explicit Invocation: they run from a worker thread with streams of their own, and
nothing they print reaches the process's stdout or stderr."""

import io
import json
import threading

import httpx

from oaicli.api.client import ApiClient
from oaicli.chat import run as chat_run
from oaicli.core.invocation import Invocation
from oaicli.core.settings import Settings
from tests.conftest import TEST_KEY

OPTS = dict(model=None, system=None, messages=[], session=None, continue_=False, interactive=False, api=None,
            context_window=None, max_history=None, max_tokens=None, max_completion_tokens=None, stream=False,
            usage=True, n=None, stop=(), logit_bias=None, response_format=None, params=None)


def answering(text: str, seen: list):
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                                         "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
    return handle


def invocation_with(handler, stdin_text: str = "") -> Invocation:
    settings = Settings({"api_key": TEST_KEY, "base_url": "http://127.0.0.1:9/v1", "format": "json"})
    return Invocation(settings, lambda inv: ApiClient(inv.settings, transport=httpx.MockTransport(handler),
                                                      echo=inv.say),
                      stdin=io.StringIO(stdin_text), stdout=io.StringIO(), stderr=io.StringIO())


def test_a_chat_turn_runs_on_a_worker_thread_with_its_own_streams(capsys):
    seen: list = []
    invocations = [invocation_with(answering(f"answer {n}", seen), stdin_text=f"question {n}") for n in range(2)]
    threads = [threading.Thread(target=chat_run.main, args=(None, OPTS, inv)) for inv in invocations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, inv in enumerate(invocations):
        assert json.loads(inv.stdout.getvalue())["choices"][0]["message"]["content"] == f"answer {n}"
        assert "Usage: 3 prompt + 2 completion = 5 tokens." in inv.stderr.getvalue()
    assert sorted(body["messages"][-1]["content"] for body in seen) == ["question 0", "question 1"]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_the_client_says_retries_on_the_stream_it_is_given(capsys):
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503, headers={"retry-after": "0"}, json={"error": {"message": "busy"}})
        return answering("ok", [])(request)
    inv = invocation_with(flaky)
    client = inv.client()
    client.sleep = lambda seconds: None
    assert client.post("/chat/completions", json={"model": "m", "messages": []})["choices"][0]["message"]["content"] == "ok"
    assert "Retrying in" in inv.stderr.getvalue()
    assert capsys.readouterr().err == ""
    inv.close()
