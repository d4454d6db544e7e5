"""Embed benchmark at real sizes (issue 14): `oaicli embed -i FILE` of 4,000 lines at 1,536 and 3,072
dimensions against the loopback fake, `--format jsonl` and `-o v.npy`, side by side in one run
(interleaved) with (a) a curl loop posting batches of 100 (float JSON, as shell scripts ask; answers
discarded) and (b) a ~30-line script on the official `openai` package (threads, its default base64,
numpy) writing the same outputs. Goals: oaicli at least 1.4 x the curl loop's lines/s and 1.2 x the
openai script's, for JSONL and .npy.

    .venv/bin/python benchmarks/embed.py [--lines 4000] [--dims 1536,3072] [--runs 3] \\
        [--latency-ms 20,0.2 0,0] [--openai-venv /tmp/openai-venv | --no-openai] [--extra "--encoding-format float"]

The fake answers after BASE + PER_INPUT x inputs ms (default 20 + 0.2 per input: 40 ms for a batch of
100, 71 ms for oaicli's 256; a real API takes tens to hundreds of ms a batch, growing with it), then again
with no latency at all (0,0), which measures each client's own cost. `--dims 16` gives the old small-vector
figure. The openai package goes in a throwaway venv, never the project's: it is created (python3 -m venv,
pip install openai numpy) when missing.
"""

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

CURL_BATCH = 100
GOALS = {"curl": 1.4, "openai": 1.2}

# What an SDK user writes: threads over batches, the SDK's default base64 (decoded by it with numpy),
# results kept in input order, then np.save or one json.dumps per line.
OPENAI_SCRIPT = '''
import json, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from openai import OpenAI

source, target, batch, threads, dims = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
client = OpenAI(max_retries=2)
with open(source, encoding="utf-8") as handle:
    texts = [line.rstrip("\\n") for line in handle if line.strip()]
chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]

def embed(chunk):
    answer = client.embeddings.create(model="text-embedding-3-small", input=chunk, dimensions=dims)
    return [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]

with ThreadPoolExecutor(threads) as pool:
    vectors = [vector for result in pool.map(embed, chunks) for vector in result]
if target.endswith(".npy"):
    np.save(target, np.asarray(vectors, dtype=np.float32))
else:
    with open(target, "w", encoding="utf-8") as out:
        for index, (text, vector) in enumerate(zip(texts, vectors)):
            out.write(json.dumps({"index": index, "input": text, "embedding": vector}) + "\\n")
'''


def openai_python(venv: Path) -> str:
    """The throwaway venv's interpreter, creating the venv (openai + numpy from PyPI) when it is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating a throwaway venv for the openai baseline: {venv} (pip install openai numpy)", flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "openai", "numpy"], check=True)
    version = subprocess.run([str(python), "-c", "import openai; print(openai.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"openai baseline: openai {version} in {venv}")
    return str(python)


def write_inputs(directory: Path, count: int, dims: int) -> dict[str, Path]:
    """The same lines as a text file (oaicli, openai) and as JSON bodies of 100 (curl; built untimed)."""
    texts = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(count)]
    plain = directory / "lines.txt"
    plain.write_text("\n".join(texts) + "\n")
    bodies = directory / f"bodies-{dims}"
    bodies.mkdir(exist_ok=True)
    for start in range(0, count, CURL_BATCH):
        body = {"model": "text-embedding-3-small", "input": texts[start:start + CURL_BATCH], "dimensions": dims,
                "encoding_format": "float"}
        (bodies / f"{start:09d}.json").write_text(json.dumps(body))
    return {"plain": plain, "bodies": bodies}


def curl_loop(url: str, bodies: Path) -> list[str]:
    script = (f'for f in "{bodies}"/*.json; do curl -sS --fail -H "Authorization: Bearer $OPENAI_API_KEY" '
              f'-H "Content-Type: application/json" --data-binary @"$f" "{url}/embeddings" > /dev/null || exit 1; '
              "done")
    return ["bash", "-c", script]


def cases_for(url, files, scratch, dims, args, python) -> dict[str, list[str]]:
    extra = shlex.split(args.extra)
    common = ["embed", "-i", str(files["plain"]), "-m", "text-embedding-3-small", "--dimensions", str(dims), *extra]
    jsonl = scratch / "oaicli.jsonl"
    cases = {
        "oaicli jsonl": ["bash", "-c", shlex.join(_common.oaicli(*common, "--format", "jsonl")) + f' > "{jsonl}"'],
        "oaicli npy": _common.oaicli(*common, "-o", str(scratch / "oaicli.npy")),
        "curl": curl_loop(url, files["bodies"]),
    }
    if python:
        script = scratch / "openai_embed.py"
        script.write_text(OPENAI_SCRIPT)
        for kind, target in (("jsonl", "openai.jsonl"), ("npy", "openai.npy")):
            cases[f"openai {kind}"] = [python, str(script), str(files["plain"]), str(scratch / target),
                                       "256", str(args.concurrency), str(dims)]
    return cases


def check_outputs(scratch: Path, lines: int, dims: int, openai: bool) -> None:
    """Every case did the whole job: JSONL in order with the right dimensions, .npy of the right shape."""
    import numpy as np
    for name in ["oaicli"] + (["openai"] if openai else []):
        with open(scratch / f"{name}.jsonl", "rb") as handle:
            rows = handle.read().splitlines()
        first, last = json.loads(rows[0]), json.loads(rows[-1])
        if len(rows) != lines or (first["index"], last["index"]) != (0, lines - 1) or len(last["embedding"]) != dims:
            raise SystemExit(f"{name} wrote a wrong JSONL ({len(rows)} lines)")
        shape = np.load(scratch / f"{name}.npy", mmap_mode="r").shape
        if shape != (lines, dims):
            raise SystemExit(f"{name} wrote a .npy of shape {shape}")


def report(lines: int, dims: int, latency: str, results: dict) -> list[str]:
    print(f"\n{lines:,} lines x {dims:,} dims, fake latency {latency} ms "
          f"({len(results['curl'].runs)} runs each, median wall)\n  {_common.uptime()}")
    for name, result in results.items():
        rate = lines / result.median
        print(f"  {name:<13} {result.median:6.2f} s  {rate:8,.0f} lines/s  cpu {result.cpu_median:5.2f} s  "
              f"peak RSS {result.peak_rss_kib / 1024:6.1f} MiB{'  FAILED RUNS' if result.failures else ''}")
    summary = []
    for ours in ("oaicli jsonl", "oaicli npy"):
        kind = ours.split()[1]
        for baseline, goal in GOALS.items():
            name = baseline if baseline == "curl" else f"{baseline} {kind}"
            if name in results:
                ratio = results[name].median / results[ours].median
                line = (f"{dims:>5} dims, latency {latency:>7}: {ours} is {ratio:5.2f} x {name} "
                        f"(goal >= {goal}: {'met' if ratio >= goal else 'MISSED'})")
                print("  " + line)
                summary.append(line)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--dims", default="1536,3072")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="the openai script's threads (oaicli's default is 4)")
    parser.add_argument("--latency-ms", nargs="+", default=["20,0.2", "0,0"],
                        help="the fake's time per answer, BASE,PER_INPUT in ms; each is run in turn")
    parser.add_argument("--openai-venv", type=Path, default=Path("/tmp/openai-venv"))
    parser.add_argument("--no-openai", action="store_true", help="compare with the curl loop only")
    parser.add_argument("--extra", default="", help="more oaicli options, e.g. '--encoding-format float'")
    args = parser.parse_args()
    print(_common.describe_machine())
    python = None if args.no_openai else openai_python(args.openai_venv)
    scratch = Path(tempfile.mkdtemp(prefix="oaicli-bench-embed-"))
    summary, failed = [], False
    try:
        for latency in args.latency_ms:
            base, per_input = (float(x) / 1000 for x in latency.split(","))
            print(f"\nfake answers take {base * 1000:g} ms + {per_input * 1000:g} ms per input "
                  f"(a batch of 100: {(base + 100 * per_input) * 1000:g} ms)")
            with _common.fake_server(state={"embedding_latency": [base, per_input]}) as url:
                env = _common.env_for(url)
                for dims in map(int, args.dims.split(",")):
                    files = write_inputs(scratch, args.lines, dims)
                    results = _common.compare(cases_for(url, files, scratch, dims, args, python), runs=args.runs,
                                              env=env, warmup=1)
                    check_outputs(scratch, args.lines, dims, python is not None)
                    summary += report(args.lines, dims, latency, results)
                    failed |= any(result.failures for result in results.values())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nsummary:\n  " + "\n  ".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
