"""Benchmark `oaicli serve`: many concurrent HTTP clients over many contexts, against the loopback fake.

    .venv/bin/python benchmarks/serve.py [--clients 500] [--contexts 100] [--requests 3000] [--delay 0.2]

Three processes: the fake OpenAI server (answers take --delay seconds), `python -m oaicli serve`, and
this one, which runs the clients on asyncio with a minimal keep-alive HTTP/1.1 client (so the client's
own overhead stays small). Client i asks in context i % contexts, one request after another.

Requests of one context are answered one at a time, by design, so a request also waits for the earlier
requests of its context. The server reports that wait and the upstream time in a Server-Timing header;
the added latency is total - wait - upstream, where total is measured here (client view) and, for
comparison, by the server itself (server view). The baseline, run first in the same invocation, sends
the same number of requests straight to the fake from one client per context: the best a server that
keeps each context in order can do. Memory: the serve process's RSS after a warm-up, after each of two
rounds (new contexts each round) and its peak. Every request is bounded (--requests) and the whole run
has a time limit (--time-limit).
"""

import argparse
import asyncio
import json
import os
import random
import re
import select
import subprocess
import threading
import time
from pathlib import Path

import _common

KEY = _common.TEST_KEY


class Connection:
    """One keep-alive HTTP/1.1 connection: POST a body, read status, headers and body."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, headers: str = "") -> tuple[int, dict, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n{headers}\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        content = await self.reader.readexactly(int(fields.get("content-length", 0)))
        return status, fields, content

    async def get(self, path: str) -> str:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n".encode())
        response = await reader.read()
        writer.close()
        return response.partition(b"\r\n\r\n")[2].decode()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def timing(header: str) -> dict:
    return {name: float(value) / 1000 for name, value in re.findall(r"(\w+);dur=([\d.]+)", header or "")}


def envelope(user: str, number: int) -> bytes:
    return json.dumps({"version": "1.0.0", "pars": {"user_id": user, "group_id": "bench", "question_id": "",
                                                     "question": f"question {number} from {user}"}}).encode()


def chat_body(user: str, number: int) -> bytes:
    return json.dumps({"model": "gpt-3.5-turbo", "messages": [
        {"role": "user", "content": f"question {number} from {user}"}]}).encode()


async def load(host, port, path, make_body, clients, contexts, total, prefix, deadline, headers="", spread=0.0):
    """Run `clients` clients until `total` requests were sent; returns per-request samples and errors.

    Each client starts at a random moment within `spread` seconds. Started all at once, the clients
    would stay in lockstep (every answer takes the same time), and every request would arrive in a burst
    with hundreds of others: a test of bursts, not of the server's added latency."""
    samples, errors = [], []
    issued = 0
    randomness = random.Random(7)
    offsets = [randomness.uniform(0, spread) for _ in range(clients)]

    async def client(index: int) -> None:
        nonlocal issued
        connection = Connection(host, port)
        user = f"{prefix}-{index % contexts}"
        await asyncio.sleep(offsets[index])
        try:
            while issued < total and time.monotonic() < deadline:
                issued += 1
                started = time.perf_counter()
                try:
                    status, fields, content = await connection.post(path, make_body(user, issued), headers)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors.append(f"{exc.__class__.__name__}: {exc}")
                    connection.close()
                    connection = Connection(host, port)
                    continue
                elapsed = time.perf_counter() - started
                if status != 200 or (path.endswith("envelope") and json.loads(content).get("code") != 0):
                    errors.append(f"HTTP {status}: {content[:200]!r}")
                    continue
                samples.append((elapsed, timing(fields.get("server-timing"))))
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return samples, errors, time.perf_counter() - started


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def family(pid: int) -> list[int]:
    """The process and its descendants (serve --processes N starts worker processes)."""
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids += family(int(child))
    return pids


def rss_kib(pid: int) -> dict:
    """VmRSS and VmHWM (peak) summed over the process and its descendants."""
    fields = {"VmRSS": 0, "VmHWM": 0}
    for member in family(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in fields:
                fields[name] += int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants: less disturbed by other load than latency."""
    total = 0
    for member in family(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def start_serve(fake_url: str, workers: int, processes: int) -> tuple[subprocess.Popen, str, int]:
    process = subprocess.Popen(_common.oaicli("serve", "--port", "0", "--workers", str(workers),
                                              "--processes", str(processes)),
                               cwd=_common.REPO, env=_common.env_for(fake_url), stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stderr], [], [], 30)
    line = process.stderr.readline() if ready else ""
    match = re.search(r"http://([\d.]+):(\d+)/v1/envelope", line)
    if not match:
        process.kill()
        raise SystemExit(f"serve did not start: {line!r}")
    threading.Thread(target=process.stderr.read, daemon=True).start()  # never let its stderr fill up
    return process, match.group(1), int(match.group(2))


def report(name, samples, errors, seconds, server_view=True):
    totals = [s[0] for s in samples]
    print(f"{name}: {len(samples)} answers, {len(errors)} errors in {seconds:.2f} s = "
          f"{len(samples) / seconds:.0f} req/s; total latency p50 {percentile(totals, .5) * 1000:.1f} ms, "
          f"p99 {percentile(totals, .99) * 1000:.1f} ms")
    for error in errors[:3]:
        print(f"  error: {error}")
    if not server_view:
        return None
    client_added = [total - t.get("queue", 0) - t.get("upstream", 0) for total, t in samples]
    server_added = [t.get("total", 0) - t.get("queue", 0) - t.get("upstream", 0) for _, t in samples]
    waits = [t.get("queue", 0) for _, t in samples]
    print(f"  waiting for the context's earlier requests: p50 {percentile(waits, .5) * 1000:.1f} ms, "
          f"p99 {percentile(waits, .99) * 1000:.1f} ms")
    print(f"  added latency (client view: total - wait - upstream): p50 {percentile(client_added, .5) * 1000:.2f} ms, "
          f"p99 {percentile(client_added, .99) * 1000:.2f} ms")
    print(f"  added latency (server view):                          p50 {percentile(server_added, .5) * 1000:.2f} ms, "
          f"p99 {percentile(server_added, .99) * 1000:.2f} ms")
    return percentile(client_added, .5), percentile(client_added, .99)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--contexts", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000, help="per round")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the fake takes per answer")
    parser.add_argument("--workers", type=int, default=128)
    parser.add_argument("--processes", type=int, default=1, help="serve --processes")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --requests, new contexts each")
    parser.add_argument("--time-limit", type=float, default=300)
    args = parser.parse_args()
    deadline = time.monotonic() + args.time_limit
    with _common.fake_server(state={"answer_delay": args.delay}) as fake_url:
        await run(args, fake_url, deadline)


async def run(args, fake_url: str, deadline: float) -> None:
    fake_host, fake_port = re.match(r"http://([\d.]+):(\d+)", fake_url).groups()
    serve, host, port = start_serve(fake_url, args.workers, args.processes)
    try:
        print(_common.describe_machine())
        print(f"{args.clients} clients over {args.contexts} contexts, {args.requests} requests per round, "
              f"answers take {args.delay * 1000:.0f} ms; ideal {args.contexts / args.delay:.0f} req/s")
        auth = f"Authorization: Bearer {KEY}\r\n"
        base, base_errors, base_seconds = await load(fake_host, int(fake_port), "/v1/chat/completions", chat_body,
                                                    args.contexts, args.contexts, args.requests, "direct",
                                                    deadline, auth, spread=args.delay)
        report(f"baseline, straight to the fake ({args.contexts} clients)", base, base_errors, base_seconds,
               server_view=False)
        # Warm-up: two answers per context, so the token encoding is loaded and the pools are full.
        await load(host, port, "/v1/envelope", envelope, args.clients, args.contexts, 2 * args.clients,
                   "warmup", deadline)
        memory = [("after warm-up", rss_kib(serve.pid))]
        result = None
        for round_number in range(1, args.rounds + 1):
            cpu_before = cpu_seconds(serve.pid)
            samples, errors, seconds = await load(host, port, "/v1/envelope", envelope, args.clients,
                                                  args.contexts, args.requests, f"round{round_number}", deadline,
                                                  spread=args.delay)
            cpu = cpu_seconds(serve.pid) - cpu_before
            result = report(f"serve, round {round_number} ({args.clients} clients)", samples, errors, seconds)
            print(f"  serve CPU (all its processes): {cpu:.2f} s = {cpu / max(len(samples), 1) * 1000:.2f} ms per "
                  f"answer, {cpu / seconds:.2f} cores")
            print(f"  throughput: {len(samples) / seconds / (len(base) / base_seconds):.2f} x the baseline, "
                  f"{len(samples) / seconds / (args.contexts / args.delay):.2f} x ideal")
            memory.append((f"after round {round_number}", rss_kib(serve.pid)))
        health = await Connection(host, port).get("/healthz")
        print(f"after the load, /healthz: {health}")
        print("serve RSS (all its processes): " + ", ".join(f"{name} {m['VmRSS'] / 1024:.1f} MiB" for name, m in memory)
              + f"; peak {memory[-1][1]['VmHWM'] / 1024:.1f} MiB")
        if result:
            print(f"goal: added p50 < 5 ms, p99 < 25 ms -> p50 {result[0] * 1000:.2f} ms, p99 {result[1] * 1000:.2f} ms")
    finally:
        serve.terminate()
        print(serve.stderr.read()[-300:])
        serve.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
