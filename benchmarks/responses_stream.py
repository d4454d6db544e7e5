"""Responses streaming benchmark (issue 12): `oaicli chat --api responses` streaming an answer against a
bare httpx script reading the same stream (split lines, `json.loads` each `data:`, print the deltas), and
the engine alone (`oaicli.api.sse.SSEParser` + `oaicli.api.responses.ResponseStream`) for reference.

    .venv/bin/python benchmarks/responses_stream.py [--deltas 1000] [--runs 15]

All are whole processes streaming the same answer of `--deltas` words from the loopback fake.
Goal: the command within 1.1 x the bare script.
"""

import argparse
import json
import sys

import _common


def bare(url: str) -> None:
    import httpx
    body = {"model": "gpt-5-mini", "input": "go", "stream": True}
    with httpx.stream("POST", url + "/responses", json=body, headers={"Authorization": "Bearer sk-bench"}) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "response.output_text.delta":
                    sys.stdout.write(event["delta"])
                    sys.stdout.flush()


def engine(url: str) -> None:
    import httpx

    from oaicli.api.responses import ResponseStream, TextDelta
    from oaicli.api.sse import SSEParser
    parser, stream = SSEParser(), ResponseStream()
    body = {"model": "gpt-5-mini", "input": "go", "stream": True}
    with httpx.stream("POST", url + "/responses", json=body, headers={"Authorization": "Bearer sk-bench"}) as answer:
        for chunk in answer.iter_bytes():
            for event in parser.feed(chunk):
                for happening in stream.feed(json.loads(event.data), event.event):
                    if isinstance(happening, TextDelta):
                        sys.stdout.write(happening.text)
                        sys.stdout.flush()
    if not stream.finished:
        raise SystemExit("the stream ended early")


CHILDREN = {"bare httpx": bare, "oaicli engine": engine}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return CHILDREN[sys.argv[2]](sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(_common.describe_machine())
    from tests.fake.server import FakeOpenAI
    answer = " ".join(f"w{i}" for i in range(args.deltas))
    # In this process (the measured clients are child processes): its state holds a function.
    with FakeOpenAI() as server:
        server.state["responses_answer"] = lambda body: answer
        cases = {name: [_common.PYTHON, __file__, "--child", name, server.url] for name in CHILDREN}
        cases["oaicli chat --api responses"] = [_common.PYTHON, "-m", "oaicli", "chat", "--api", "responses", "go"]
        results = _common.compare(cases, runs=args.runs, env=_common.env_for(server.url))
        _common.report(results, baseline="bare httpx", title=f"Stream {args.deltas} output_text deltas:")


if __name__ == "__main__":
    main()
