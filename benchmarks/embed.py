"""Embed benchmark (issue 5): `oaicli embed -i FILE --format jsonl` over 10,000 and 100,000 short lines
against the loopback fake, side by side with one curl process per batch of 100 lines (a shell loop over
pre-built JSON bodies, which favours curl: building them is not timed) and, when installed,
`llm embed-multi` (its OpenAI embedding model, pointed at the fake through OPENAI_BASE_URL).
Goals: at least 1.4 x curl's lines per second and 5 x llm's; peak RSS flat in input size.

    .venv/bin/python benchmarks/embed.py [--sizes 10000,100000] [--runs 3] [--llm /tmp/llm-venv/bin/llm]

llm is installed in a throwaway venv, never the project's: python3 -m venv /tmp/llm-venv &&
/tmp/llm-venv/bin/pip install llm
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import _common

CURL_BATCH = 100
GOALS = {"curl": 1.4, "llm": 5.0}


def write_inputs(directory: Path, count: int) -> dict[str, Path]:
    """The same lines as a text file (oaicli), JSON bodies of 100 (curl) and a CSV of id,content (llm)."""
    texts = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(count)]
    plain = directory / f"lines-{count}.txt"
    plain.write_text("\n".join(texts) + "\n")
    bodies = directory / f"bodies-{count}"
    bodies.mkdir()
    for start in range(0, count, CURL_BATCH):
        body = {"model": "text-embedding-ada-002", "input": texts[start:start + CURL_BATCH]}
        (bodies / f"{start:09d}.json").write_text(json.dumps(body))
    csv = directory / f"lines-{count}.csv"
    csv.write_text("id,content\n" + "".join(f"{i},{text}\n" for i, text in enumerate(texts)))
    return {"plain": plain, "bodies": bodies, "csv": csv}


def curl_loop(url: str, bodies: Path, out: Path) -> list[str]:
    script = (f'for f in "{bodies}"/*.json; do curl -sS --fail -H "Authorization: Bearer $OPENAI_API_KEY" '
              f'-H "Content-Type: application/json" --data-binary @"$f" "{url}/embeddings"; echo; done > "{out}"')
    return ["bash", "-c", script]


def llm_command(llm: str, csv: Path) -> list[str]:
    return ["bash", "-c", f'rm -f "$LLM_USER_PATH/embeddings.db"; exec "{llm}" embed-multi bench "{csv}" -m ada']


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def check_oaicli_output(path: Path, count: int) -> None:
    with open(path, "rb") as handle:
        for index, line in enumerate(handle):
            if index in (0, count - 1) and json.loads(line)["index"] != index:
                raise SystemExit(f"oaicli output out of order at line {index}")
    if count_lines(path) != count:
        raise SystemExit(f"oaicli wrote {count_lines(path)} lines for {count} inputs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--llm", default="/tmp/llm-venv/bin/llm")
    args = parser.parse_args()
    llm = args.llm if os.access(args.llm, os.X_OK) else None
    print(_common.describe_machine())
    if not llm:
        print(f"llm not found at {args.llm}: comparing with curl only")
    scratch = Path(tempfile.mkdtemp(prefix="oaicli-bench-embed-"))
    failed = False
    try:
        with _common.fake_server() as url:
            for size in (int(s) for s in args.sizes.split(",")):
                failed |= not bench_size(url, scratch, size, args, llm)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


def bench_size(url: str, scratch: Path, size: int, args, llm: str | None) -> bool:
    files = write_inputs(scratch, size)
    out = scratch / "out.jsonl"
    env = _common.env_for(url, LLM_USER_PATH=str(scratch / "llm-home"))
    (scratch / "llm-home").mkdir(exist_ok=True)
    cases = {
        "oaicli": ["bash", "-c", " ".join(_common.oaicli("embed", "-i", str(files["plain"]), "--format", "jsonl",
                                                         "-c", str(args.concurrency))) + f' > "{out}"'],
        "curl": curl_loop(url, files["bodies"], scratch / "curl.out"),
    }
    if llm:
        cases["llm"] = llm_command(llm, files["csv"])
    results = _common.compare(cases, runs=args.runs, env=env, warmup=0)
    check_oaicli_output(out, size)
    if count_lines(scratch / "curl.out") != -(-size // CURL_BATCH):
        raise SystemExit("curl baseline answered fewer batches than it sent")
    rss = peak_rss(_common.oaicli("embed", "-i", str(files["plain"]), "--format", "jsonl", "-c",
                                  str(args.concurrency)), env)
    return report(size, results, rss)


# Linux charges a child with its parent's peak RSS when it execs (the memory map it leaves behind), and
# this script holds the inputs in memory; a small launcher keeps that out of oaicli's figure.
LAUNCHER = """
import os, subprocess, sys
with open(os.devnull, "wb") as sink:
    process = subprocess.Popen(sys.argv[1:], stdout=sink, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss(command: list[str], env: dict) -> int:
    """oaicli's own peak RSS (KiB), measured by a fresh small launcher process."""
    result = subprocess.run([_common.PYTHON, "-c", LAUNCHER, *command], env=env, cwd=_common.REPO,
                            capture_output=True, text=True, check=True)
    status, rss = map(int, result.stdout.split())
    if status:
        raise SystemExit("oaicli embed failed")
    return rss


def report(size: int, results: dict, oaicli_rss: int) -> bool:
    print(f"\n{size:,} lines ({len(next(iter(results.values())).runs)} runs each, median):")
    ours = size / results["oaicli"].median
    ok = True
    for name, result in results.items():
        rate = size / result.median
        line = f"  {name:<7} {result.median:7.2f} s  {rate:9,.0f} lines/s"
        if name != "oaicli":
            ratio = ours / rate
            goal = GOALS[name]
            ok &= ratio >= goal
            line += f"   oaicli is {ratio:5.2f} x this (goal >= {goal} x: {'met' if ratio >= goal else 'MISSED'})"
        if result.failures:
            line += f"  ({result.failures} runs failed!)"
            ok = False
        print(line)
    print(f"  oaicli peak RSS {oaicli_rss / 1024:.1f} MiB")
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
