"""Streaming benchmark (issue 3): a stateless `oaicli chat` against the loopback fake streaming 1,000 chunks
with no delay, side by side with `curl -N` of the same request and a bare ~30-line httpx streaming script
(plain http, so it builds no TLS context). Goal: oaicli within 1.1 x the bare script.

Then the latency of the first delta: the fake records when it flushed the first chunk with text
(time.time()), and this script timestamps the first byte oaicli writes to its stdout pipe.
Goal: under 5 ms median.

    .venv/bin/python benchmarks/streaming.py [--runs 20] [--latency-runs 30]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import _common

GOAL_RATIO = 1.1
GOAL_LATENCY_MS = 5.0
CHUNKS = 1000
# The fake answers "echo: <prompt>"; 1,994 characters make a 2,000-character answer, cut into 1,000 chunks.
PROMPT = "x" * 1994

BARE_SCRIPT = '''\
import json, os, sys
import httpx

url = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
headers = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
body = {"model": "gpt-3.5-turbo", "stream": True,
        "messages": [{"role": "user", "content": sys.argv[1]}]}
out = sys.stdout
with httpx.Client(timeout=600) as client:
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            event = json.loads(data)
            for choice in event.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    out.write(text)
                    out.flush()
out.write("\\n")
out.flush()
'''


def bench_env(url: str) -> dict:
    """As users run it: with bytecode caches (a PYTHONDONTWRITEBYTECODE=1 shell would make every run
    compile oaicli from source, tens of milliseconds the bare script does not pay)."""
    env = _common.env_for(url)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def whole_process(runs: int) -> dict:
    state = {"chunks": CHUNKS}
    with _common.fake_server(state=state) as url:
        env = bench_env(url)
        body = json.dumps({"model": "gpt-3.5-turbo", "stream": True, "messages": [{"role": "user", "content": PROMPT}]})
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(BARE_SCRIPT)
        try:
            _check_same_output(url, env, body, script.name)
            cases = {
                "bare httpx script": [_common.PYTHON, script.name, PROMPT],
                "curl -N": ["curl", "-sSN", "-X", "POST", url + "/chat/completions", "-H",
                            f"Authorization: Bearer {_common.TEST_KEY}", "-H", "Content-Type: application/json",
                            "-d", body],
                "oaicli chat": _common.oaicli("chat", PROMPT),
            }
            results = _common.compare(cases, runs=runs, env=env)
        finally:
            os.unlink(script.name)
    _common.report(results, baseline="bare httpx script",
                   title=f"Whole process, {CHUNKS} chunks, no delay, median of {runs} interleaved runs:")
    ratio = results["oaicli chat"].median / results["bare httpx script"].median
    print(f"oaicli chat: {ratio:.2f} x the bare script (goal <= {GOAL_RATIO}) -> "
          f"{'met' if ratio <= GOAL_RATIO else 'MISSED'}; "
          f"{results['oaicli chat'].median / results['curl -N'].median:.2f} x curl -N")
    return results


def _check_same_output(url, env, body, script) -> None:
    """The three print the same answer (curl prints the raw events), so the comparison is fair."""
    ours = subprocess.run(_common.oaicli("chat", PROMPT), env=env, capture_output=True, text=True, check=True).stdout
    bare = subprocess.run([_common.PYTHON, script, PROMPT], env=env, capture_output=True, text=True, check=True).stdout
    if ours != bare or ours != f"echo: {PROMPT}\n":
        raise SystemExit("oaicli and the bare script printed different answers; the benchmark is not fair")


def first_delta_latency(runs: int) -> list[float]:
    """Milliseconds from the server flushing the first text chunk to oaicli's first byte on stdout."""
    from tests.fake.server import FakeOpenAI
    latencies = []
    with FakeOpenAI() as fake:  # in this process, so its record of the first flush can be read
        fake.state.update(chunk_delay=0.01, chunks=20)
        env = bench_env(fake.url)
        for _ in range(runs + 2):
            process = subprocess.Popen(_common.oaicli("chat", "twenty small chunks please"), env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            os.read(process.stdout.fileno(), 1)
            seen = time.time()
            process.stdout.read()
            process.wait()
            latencies.append((seen - fake.state["first_chunk_at"][-1]) * 1000)
    return latencies[2:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-runs", type=int, default=30)
    args = parser.parse_args()
    print(_common.describe_machine())
    whole_process(args.runs)
    latencies = first_delta_latency(args.latency_runs)
    median = statistics.median(latencies)
    print(f"First delta, server flush -> oaicli stdout, {len(latencies)} runs: median {median:.2f} ms, "
          f"p90 {sorted(latencies)[int(len(latencies) * 0.9) - 1]:.2f} ms, max {max(latencies):.2f} ms "
          f"(goal < {GOAL_LATENCY_MS} ms) -> {'met' if median < GOAL_LATENCY_MS else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
