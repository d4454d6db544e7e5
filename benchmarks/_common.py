"""Helpers every benchmark shares: the venv's interpreter, the loopback fake, whole-process timing
(median wall time, interleaved so drift hits every case alike) and a child's peak RSS.

    import _common                       # benchmarks/ is the script's directory, so this just works
    with _common.fake_server() as url:   # a FakeOpenAI in a subprocess; yields its base URL
        cases = {"oaicli": _common.oaicli("models", "list"), "curl": ["curl", "-s", url + "/models"]}
        results = _common.compare(cases, runs=20, env=_common.env_for(url))
        _common.report(results, baseline="curl")
"""

import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # run these scripts with the venv's interpreter: .venv/bin/python benchmarks/x.py
SCRIPT = Path(PYTHON).parent / "oaicli"  # the console script users run
TEST_KEY = "sk-bench-0123456789abcdef"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def oaicli(*args) -> list[str]:
    """The installed console script when there is one, else `python -m oaicli`."""
    return [str(SCRIPT), *args] if SCRIPT.exists() else [PYTHON, "-m", "oaicli", *args]


def env_for(url: str | None = None, **extra) -> dict:
    """A clean environment for oaicli children: a throwaway OAICLI_HOME, the fake's URL and a test key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OAICLI_"))}
    # Measure what users get: byte-code caches written (the warm-up rounds write any that are stale).
    # With PYTHONDONTWRITEBYTECODE set, every module edited since its last .pyc compiles on each run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["OAICLI_HOME"] = extra.pop("OAICLI_HOME", None) or _scratch_home()
    if url:
        env.update(OPENAI_BASE_URL=url, OPENAI_API_KEY=TEST_KEY)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _scratch_home() -> str:
    import tempfile
    return tempfile.mkdtemp(prefix="oaicli-bench-home-")


@dataclass
class Run:
    seconds: float  # wall time
    peak_rss_kib: int
    returncode: int
    cpu_seconds: float = 0.0  # user + system: less disturbed than wall time by a busy machine


def run_child(command: list[str], env: dict | None = None, stdin: bytes | None = None, cwd=REPO) -> Run:
    """One whole process: wall time, CPU time and ru_maxrss from os.wait4.

    That ru_maxrss is only an upper bound: Linux counts the memory of the process that spawned the
    child (this one, ~15 MiB) until the exec. `peak_rss_kib` measures the child alone."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.PIPE if stdin is not None else
                               subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(elapsed, usage.ru_maxrss, process.returncode, usage.ru_utime + usage.ru_stime)


def peak_rss_kib(command: list[str], env: dict | None = None, stdin: bytes | None = None, cwd=REPO) -> int:
    """The child's own peak RSS, measured by GNU time (a small C program that forks, so its floor is
    ~1 MiB); without /usr/bin/time, wait4's upper bound."""
    import tempfile
    if not os.path.exists("/usr/bin/time"):
        return run_child(command, env, stdin, cwd).peak_rss_kib
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *command], env=env, cwd=cwd, input=stdin,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
        return int(out.read().split()[-1])


@dataclass
class Result:
    name: str
    runs: list[Run] = field(default_factory=list)
    rss_kib: int | None = None  # from peak_rss_kib(), when measured

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def peak_rss_kib(self) -> int:
        return self.rss_kib if self.rss_kib is not None else max(r.peak_rss_kib for r in self.runs)

    @property
    def failures(self) -> int:
        return sum(1 for r in self.runs if r.returncode != 0)


def compare(cases: dict[str, list[str]], runs: int = 20, env: dict | None = None, warmup: int = 2,
            stdin: bytes | None = None) -> dict[str, Result]:
    """Time every case `runs` times, interleaved (a, b, c, a, b, c, ...), after `warmup` untimed rounds;
    then measure each case's peak RSS once."""
    results = {name: Result(name) for name in cases}
    for round_number in range(warmup + runs):
        for name, command in cases.items():
            run = run_child(command, env=env, stdin=stdin)
            if round_number >= warmup:
                results[name].runs.append(run)
    for name, command in cases.items():
        results[name].rss_kib = peak_rss_kib(command, env=env, stdin=stdin)
    return results


def combined(name: str, *parts: Result) -> Result:
    """A baseline made of several processes run one after the other (e.g. curl + `python -c pass`):
    per round, the sum of the parts' times."""
    result = Result(name, rss_kib=max((p.peak_rss_kib for p in parts), default=None))
    for runs in zip(*(p.runs for p in parts)):
        result.runs.append(Run(sum(r.seconds for r in runs), max(r.peak_rss_kib for r in runs),
                               max(r.returncode for r in runs), sum(r.cpu_seconds for r in runs)))
    return result


def report(results: dict[str, Result], baseline: str, title: str | None = None) -> None:
    """Print, per case: median wall time and its ratio to the baseline's, median CPU time and its
    ratio, and the peak RSS."""
    if title:
        print(title)
    base, base_cpu = results[baseline].median, results[baseline].cpu_median
    width = max(len(name) for name in results)
    for name, result in results.items():
        failed = f"  ({result.failures} runs failed!)" if result.failures else ""
        print(f"  {name:<{width}}  wall {result.median * 1000:7.1f} ms = {result.median / base:4.2f} x"
              f"  cpu {result.cpu_median * 1000:7.1f} ms = {result.cpu_median / base_cpu:4.2f} x"
              f"  peak RSS {result.peak_rss_kib / 1024:5.1f} MiB{failed}")
    print(f"  (ratios are to {baseline})")


@contextlib.contextmanager
def fake_server(in_thread: bool = False, state: dict | None = None):
    """The loopback FakeOpenAI; yields its base URL (http://127.0.0.1:PORT/v1).

    By default it runs in a subprocess, so its threads do not compete with the measuring process for
    the GIL; `in_thread=True` runs it here (then `state` is applied to its state dict)."""
    if in_thread:
        from tests.fake.server import FakeOpenAI
        with FakeOpenAI() as server:
            server.state.update(state or {})
            yield server.url
        return
    code = ("import json, sys, time\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "from tests.fake.server import FakeOpenAI\n"
            "server = FakeOpenAI().start()\n"
            f"server.state.update(json.loads({__import__('json').dumps(__import__('json').dumps(state or {}))}))\n"
            "print(server.url, flush=True)\n"
            "sys.stdin.read()\n")
    process = subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=REPO)
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the fake server did not start")
        yield url
    finally:
        process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def describe_machine() -> str:
    import platform
    return f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} " \
           f"{platform.machine()}, {os.cpu_count()} CPUs; interpreter {PYTHON}"


def uptime() -> str:
    """`uptime`'s line (load averages): the machine is shared, so every figure is printed with it."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
