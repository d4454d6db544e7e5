"""Benchmark `oaicli serve` under load against the loopback fake: the same clients straight to the fake
(the baseline), then through serve; added latency = serve's percentile minus the baseline's.

    .venv/bin/python benchmarks/serve.py                                    # 10, 30, 100, 300 clients, SQLite
    .venv/bin/python benchmarks/serve.py --processes 2                      # the same with serve --processes 2
    .venv/bin/python benchmarks/serve.py --store postgresql --instances 2   # 2 serve instances, one PostgreSQL
    .venv/bin/python benchmarks/serve.py --rss 1000,20000                   # serve's RSS after N contexts

Processes: the fake OpenAI server (answers take --delay, 200 ms), `oaicli serve` (one, or --instances of it
on one throwaway PostgreSQL started from Debian's binaries, as the tests do), and this one, which runs the
clients on asyncio with a minimal keep-alive HTTP/1.1 client. Each client has a context of its own and
sends one request after another (client i to instance i % N). For each client count: the baseline (same
clients, same requests, straight to the fake), one warm-up request per client, then the measured run.
The load average (`uptime`) is printed with each figure: other work on the machine moves them.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import select
import subprocess
import tempfile
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


async def load(host, port, path, make_body, clients, contexts, total, prefix, deadline, headers="", spread=0.0,
               fresh=False):
    """Run `clients` clients until `total` requests were sent; returns per-request samples and errors.
    `fresh`: every request in a context of its own (client i's context otherwise).

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
                if fresh:
                    user = f"{prefix}-{issued}"
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
    return sum(cpu_by_process(pid).values())


def cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds of the process and of each descendant (the HTTP process and its workers)."""
    seconds = {}
    for member in family(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        seconds[member] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


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


def start_serve(fake_url: str, workers: int, processes: int, store: str | None) -> tuple[subprocess.Popen, str, int]:
    extra = {"OAICLI_STORE": store} if store else {}
    process = subprocess.Popen(_common.oaicli("serve", "--port", "0", "--workers", str(workers),
                                              "--processes", str(processes)),
                               cwd=_common.REPO, env=_common.env_for(fake_url, **extra), stderr=subprocess.PIPE,
                               text=True)
    match, said, deadline = None, [], time.monotonic() + 60
    while match is None and time.monotonic() < deadline:  # notices may come before the "Serving" line
        ready, _, _ = select.select([process.stderr], [], [], 1)
        line = process.stderr.readline() if ready else ""
        if ready and not line:
            break
        said.append(line)
        match = re.search(r"http://([\d.]+):(\d+)/v1/envelope", line)
    if not match:
        process.kill()
        raise SystemExit(f"serve did not start: {''.join(said)!r}")
    threading.Thread(target=process.stderr.read, daemon=True).start()  # never let its stderr fill up
    return process, match.group(1), int(match.group(2))


def load_average() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def spread_load(targets, make_body, clients, total, prefix, deadline, headers="", spread=0.0, fresh=False):
    """`load` over several serve instances: client i sends to targets[i % len(targets)]."""
    groups = [list(range(n, clients, len(targets))) for n in range(len(targets))]
    runs = await asyncio.gather(*(load(host, port, path, make_body, len(group), len(group),
                                       total * len(group) // clients, f"{prefix}-{n}", deadline, headers, spread,
                                       fresh)
                                  for n, ((host, port, path), group) in enumerate(zip(targets, groups)) if group))
    samples = [s for run in runs for s in run[0]]
    errors = [e for run in runs for e in run[1]]
    return samples, errors, max(run[2] for run in runs)


def percentiles(samples) -> tuple[float, float]:
    totals = [s[0] for s in samples]
    return percentile(totals, .5), percentile(totals, .99)


async def one_size(args, fake, serves, clients: int, deadline: float) -> dict:
    """Baseline, warm-up and the measured run for one number of clients; one row of the table."""
    auth = f"Authorization: Bearer {KEY}\r\n"
    total = args.requests or clients * 20
    base, base_errors, base_seconds = await load(fake[0], fake[1], "/v1/chat/completions", chat_body, clients,
                                                 clients, total, f"direct{clients}", deadline, auth,
                                                 spread=args.delay)
    report(f"baseline, straight to the fake ({clients} clients) [{load_average()}]", base, base_errors,
           base_seconds, server_view=False)
    targets = [(host, port, "/v1/envelope") for _, host, port in serves]
    await spread_load(targets, envelope, clients, clients, f"warm{clients}", deadline)  # one request each
    before = [cpu_by_process(process.pid) for process, _, _ in serves]
    samples, errors, seconds = await spread_load(targets, envelope, clients, total, f"run{clients}", deadline,
                                                 spread=args.delay)
    after = [cpu_by_process(process.pid) for process, _, _ in serves]
    cpu = sum(sum(a.values()) - sum(b.values()) for a, b in zip(after, before))
    report(f"through serve ({clients} clients) [{load_average()}]", samples, errors, seconds)
    for was, now in zip(before, after):  # with --processes N: the HTTP process first, then its workers
        print("  serve CPU per answer by process: " + ", ".join(
            f"{(now[pid] - was.get(pid, 0)) / max(len(samples), 1) * 1000:.2f} ms" for pid in now))
    (base_p50, base_p99), (p50, p99) = percentiles(base), percentiles(samples)
    row = {"clients": clients, "req/s": len(samples) / seconds, "baseline req/s": len(base) / base_seconds,
           "added p50 ms": (p50 - base_p50) * 1000, "added p99 ms": (p99 - base_p99) * 1000,
           "errors": len(errors), "CPU ms/answer": cpu / max(len(samples), 1) * 1000, "uptime": load_average()}
    print("  " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return row


async def rss_run(args, serves, deadline: float) -> None:
    """serve's RSS after each count of distinct contexts has been answered once (100 clients at a time, each
    request in a new context: with a context per client, histories grew to N/100 exchanges and the RSS
    measured the longer requests they make, not the number of contexts)."""
    targets = [(host, port, "/v1/envelope") for _, host, port in serves]
    done, figures = 0, []
    for count in sorted(int(n) for n in args.rss.split(",")):
        await spread_load(targets, envelope, min(100, count - done), count - done, f"rss{count}", deadline,
                          fresh=True)
        done = count
        figures.append((count, sum(rss_kib(process.pid)["VmRSS"] for process, _, _ in serves) / 1024))
        print(f"after {count} contexts: serve RSS {figures[-1][1]:.1f} MiB [{load_average()}]")
    print(f"RSS {figures[-1][0]} / {figures[0][0]} contexts: {figures[-1][1] / figures[0][1]:.2f} x (goal <= 1.2)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="10,30,100,300", help="client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=0, help="requests per run (default 20 per client)")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the fake takes per answer")
    parser.add_argument("--workers", type=int, default=512, help="serve --workers (upstream connections)")
    parser.add_argument("--processes", type=int, default=1, help="serve --processes")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--instances", type=int, default=1, help="serve instances (on one store)")
    parser.add_argument("--rss", metavar="N,M", help="instead: serve's RSS after N, then M contexts")
    parser.add_argument("--time-limit", type=float, default=900)
    args = parser.parse_args()
    if args.instances > 1 and args.store == "sqlite":
        print("note: several instances on one SQLite file share it through its file locks")
    deadline = time.monotonic() + args.time_limit
    with contextlib.ExitStack() as stack:
        fake_url = stack.enter_context(_common.fake_server(state={"answer_delay": args.delay}))
        store = None
        if args.store == "postgresql":
            from tests.postgres_server import fresh_database, postgres_server
            store = fresh_database(stack.enter_context(postgres_server()))
        home = tempfile.mkdtemp(prefix="oaicli-bench-serve-")
        store = store or f"sqlite:///{home}/sessions.db"
        serves = [start_serve(fake_url, args.workers, args.processes, store) for _ in range(args.instances)]
        try:
            print(_common.describe_machine())
            print(f"serve x {args.instances}, --processes {args.processes}, store {args.store}, "
                  f"answers take {args.delay * 1000:.0f} ms")
            if args.rss:
                await rss_run(args, serves, deadline)
                return
            fake = re.match(r"http://([\d.]+):(\d+)", fake_url).groups()
            rows = [await one_size(args, (fake[0], int(fake[1])), serves, int(clients), deadline)
                    for clients in args.clients.split(",")]
            print("\n| clients | req/s (baseline) | added p50 | added p99 | errors | serve CPU per answer | uptime |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for row in rows:
                print(f"| {row['clients']} | {row['req/s']:.0f} ({row['baseline req/s']:.0f}) | "
                      f"{row['added p50 ms']:+.1f} ms | {row['added p99 ms']:+.1f} ms | {row['errors']} | "
                      f"{row['CPU ms/answer']:.2f} ms | {row['uptime']} |")
        finally:
            for process, _, _ in serves:
                process.terminate()
            for process, _, _ in serves:
                process.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
