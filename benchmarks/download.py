"""Download benchmark (issues 4 and 14): `oaicli files content ID -o PATH` of a 1 GiB body from the loopback
fake, side by side with `curl -o` of the same URL, interleaved in one run, with the page cache dropped
before every run where this process may (root on Linux; otherwise it says so); also both to stdout
(> /dev/null). Goals: oaicli -o <= 1.2 x curl -o (median of 5), peak RSS < 50 MB.

    .venv/bin/python benchmarks/download.py [--size-mib 1024] [--runs 5] [--dir /tmp] [--no-drop]

Each case writes the same PATH round after round, as a user fetching a file again does: oaicli writes a
temporary file and moves it in when complete (removing the old file first, without fsync, like curl -o);
curl truncates the old file in place. Output files go to --dir and are deleted at the end.
"""

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import _common

FILE_ID = "file-bench"


def state_for(size: int) -> dict:
    meta = {"id": FILE_ID, "object": "file", "bytes": size, "created_at": 0, "filename": "big.bin",
            "purpose": "user_data", "status": "processed", "status_details": None}
    return {"files": {FILE_ID: {"meta": meta, "blob": None, "size": size, "drop_at": None, "polls": 0}}}


def drop_caches() -> bool:
    """Write dirty pages out and drop the page cache, so no run inherits another's (root only)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
        return True
    except OSError:
        return False


def timed(cases: dict, runs: int, env: dict, drop: bool) -> dict[str, _common.Result]:
    """Interleaved rounds after one untimed warm-up round, the cache dropped before each run."""
    results = {name: _common.Result(name) for name in cases}
    for round_number in range(1 + runs):
        for name, command in cases.items():
            if drop:
                drop_caches()
            run = _common.run_child(command, env=env)
            if round_number:
                results[name].runs.append(run)
    for name, command in cases.items():
        results[name].rss_kib = _common.peak_rss_kib(command, env=env)
    return results


def spread(result: _common.Result) -> str:
    times = [run.seconds for run in result.runs]
    return f"{min(times):.2f}-{max(times):.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--no-drop", action="store_true", help="keep the page cache between runs")
    args = parser.parse_args()
    print(_common.describe_machine())
    drop = not args.no_drop and drop_caches()
    print("page cache dropped before every run" if drop else
          "page cache NOT dropped (needs root on Linux, or --no-drop was given)")
    size = args.size_mib << 20
    work = Path(tempfile.mkdtemp(prefix="oaicli-bench-download-", dir=args.dir))
    try:
        with _common.fake_server(state=state_for(size)) as url:
            env = _common.env_for(url)
            content = f"{url}/files/{FILE_ID}/content"
            auth = ["-H", f"Authorization: Bearer {_common.TEST_KEY}"]
            cases = {
                "oaicli -o": _common.oaicli("files", "content", FILE_ID, "-o", str(work / "oaicli.bin")),
                "curl -o": ["curl", "-sS", "--fail", *auth, "-o", str(work / "curl.bin"), content],
                "oaicli > /dev/null": _common.oaicli("files", "content", FILE_ID),
                "curl > /dev/null": ["curl", "-sS", "--fail", *auth, content],
            }
            results = timed(cases, args.runs, env, drop)
            for name in ("oaicli.bin", "curl.bin"):
                assert (work / name).stat().st_size == size, f"{name} is not {size} bytes"
            title = f"download of {args.size_mib} MiB, median of {args.runs} runs each\n  {_common.uptime()}"
            _common.report({k: results[k] for k in ("oaicli -o", "curl -o")}, baseline="curl -o", title=title)
            _common.report({k: results[k] for k in ("oaicli > /dev/null", "curl > /dev/null")},
                           baseline="curl > /dev/null")
            print("  spread (min-max wall): " + ", ".join(f"{name} {spread(r)}" for name, r in results.items()))
            ratio = results["oaicli -o"].median / results["curl -o"].median
            rss = results["oaicli -o"].peak_rss_kib / 1024
            print(f"  oaicli -o is {ratio:.2f} x curl -o (goal <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'}), "
                  f"peak RSS {rss:.1f} MiB (goal < 50 MB: {'met' if rss * 1.048576 < 50 else 'MISSED'}); "
                  f"cpu {statistics.median(r.cpu_seconds for r in results['oaicli -o'].runs):.2f} s")
    finally:
        for child in work.iterdir():
            child.unlink()
        work.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
