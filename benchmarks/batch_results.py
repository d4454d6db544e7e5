"""Batch results benchmark (issue 12): `oaicli batches results ID -o FILE` on a 50,000-request batch,
the output and error files merged into one JSONL in input order. Goal: at least 50,000 lines/s for the
whole command as a user runs it (downloads included), peak memory under 100 MB.

    .venv/bin/python benchmarks/batch_results.py [--requests 50000] [--errors 500] [--runs 5]

It writes an input file, an output file in shuffled order (as the Batch API may return it) with
realistic chat.completion bodies (a few hundred words each), and an error file, and serves the three
from the loopback fake in a process of its own (a real API is elsewhere: a fake thread in the
measuring process would compete with it for the GIL). Then it times whole processes side by side:

- `curl`: the three files downloaded to disk, nothing merged (the floor for any client);
- `httpx + load-all` (the baseline): the script people write first, a bare httpx client downloading the
  three files into memory, `json.loads` on every output and error line into one dict, then writing
  the results in input order;
- `merge only`: oaicli's merge engine (`oaicli.jobs.batch_results.merge`) on the files already on
  disk, no download;
- `oaicli batches results`: the whole command.

All of them except curl write the same results (line by line, as parsed JSON: oaicli copies each
answer's body as the server wrote it, so spacing may differ); the script checks that before printing
figures, and prints the load average before and after (the machine may be shared).
"""

import argparse
import contextlib
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

WORDS = ("the batch api runs large jobs at half price while the model answers every request in order "
         "with a careful and complete reply about data tables plans budgets code reviews and summaries").split()


def answer_text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 320)))


def output_line(rng: random.Random, index: int) -> dict:
    text = answer_text(rng)
    return {"id": f"batch_req_{index:024x}", "custom_id": f"chat-{index:06d}",
            "response": {"status_code": 200, "request_id": f"req_{index:032x}", "body": {
                "id": f"chatcmpl-{index:029x}", "object": "chat.completion", "created": 1764200000 + index,
                "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0123456789",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                     "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 42, "completion_tokens": len(text.split()),
                          "total_tokens": 42 + len(text.split()),
                          "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                          "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                        "accepted_prediction_tokens": 0,
                                                        "rejected_prediction_tokens": 0}},
                "service_tier": "default"}},
            "error": None}


def error_line(index: int) -> dict:
    return {"id": f"batch_req_{index:024x}", "custom_id": f"chat-{index:06d}",
            "response": {"status_code": 400, "request_id": f"req_{index:032x}", "body": {"error": {
                "message": "Invalid 'messages[0].content': string too long.", "type": "invalid_request_error",
                "param": "messages[0].content", "code": "string_above_max_length"}}},
            "error": None}


def write_files(folder: Path, requests: int, errors: int) -> dict[str, Path]:
    rng = random.Random(12)
    paths = {name: folder / f"{name}.jsonl" for name in ("input", "output", "errors")}
    failed = set(rng.sample(range(requests), errors))
    with paths["input"].open("w") as sink:
        for index in range(requests):
            sink.write(json.dumps({"custom_id": f"chat-{index:06d}", "method": "POST", "url": "/v1/chat/completions",
                                   "body": {"model": "gpt-4o-mini", "messages": [
                                       {"role": "user", "content": f"Summarise report {index}."}]}}) + "\n")
    order = [i for i in range(requests) if i not in failed]
    rng.shuffle(order)
    with paths["output"].open("w") as sink:
        for index in order:
            sink.write(json.dumps(output_line(rng, index)) + "\n")
    with paths["errors"].open("w") as sink:
        for index in sorted(failed):
            sink.write(json.dumps(error_line(index)) + "\n")
    return paths


def streaming_merge(input_path, output_path, error_path, destination) -> None:
    from oaicli.jobs.batch_results import merge
    with open(input_path, "rb") as inputs, open(output_path, "rb") as outputs, open(error_path, "rb") as errors, \
            open(destination, "wb") as sink:
        merge(inputs, outputs, errors, sink)


def httpx_load_all(batch_id, destination) -> None:
    """The baseline: download the three files with a bare httpx client, parse and hold every result,
    then write them in input order."""
    import os

    import httpx
    client = httpx.Client(base_url=os.environ["OPENAI_BASE_URL"],
                          headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"})
    batch = client.get(f"/batches/{batch_id}").json()
    content = {key: client.get(f"/files/{batch[key]}/content").content
               for key in ("input_file_id", "output_file_id", "error_file_id")}
    results = {}
    for key in ("output_file_id", "error_file_id"):
        for line in content[key].splitlines():
            parsed = json.loads(line)
            results.setdefault(parsed["custom_id"], parsed)
    with open(destination, "wb") as sink:
        for line in content["input_file_id"].splitlines():
            custom_id = json.loads(line)["custom_id"]
            sink.write(json.dumps(as_result(custom_id, results[custom_id]), ensure_ascii=False,
                                  separators=(",", ":")).encode() + b"\n")


def as_result(custom_id: str, line: dict) -> dict:
    """A result as `batches results` documents it, written out here so the baseline imports nothing of oaicli."""
    response = line.get("response") or {}
    status_code, body = response.get("status_code"), response.get("body")
    if not line.get("error") and 200 <= (status_code or 0) < 300:
        return {"custom_id": custom_id, "status": "completed", "response": body}
    error = line.get("error") or (body or {}).get("error")
    return {"custom_id": custom_id, "status": "failed", "error": error, "status_code": status_code}


CHILDREN = {"merge only": streaming_merge, "httpx + load-all": httpx_load_all}


def same_results(first: Path, second: Path) -> bool:
    with first.open("rb") as one, second.open("rb") as other:
        return all(json.loads(a) == json.loads(b) for a, b in zip(one, other, strict=True))


def serve(folder: str) -> None:
    """The child that serves the three files and a completed batch naming them, until its stdin closes."""
    from tests.fake import files
    from tests.fake.server import FakeOpenAI
    files.KEEP_LIMIT = 1 << 30  # the fake keeps 8 MiB per file by default; these files are larger
    server = FakeOpenAI().start()
    ids = {name: files.add_file(server, (Path(folder) / f"{name}.jsonl").read_bytes(), f"{name}.jsonl",
                                "batch")["id"] for name in ("input", "output", "errors")}
    batch = {"id": "batch_bench", "object": "batch", "endpoint": "/v1/chat/completions", "status": "completed",
             "input_file_id": ids["input"], "output_file_id": ids["output"], "error_file_id": ids["errors"]}
    server.state["batches"]["batch_bench"] = {"batch": batch, "requests": [], "errors": [], "step": 4,
                                              "polls": 0, "done": 0}
    print(server.url, " ".join(ids[name] for name in ("input", "output", "errors")), flush=True)
    sys.stdin.read()


@contextlib.contextmanager
def served(folder: Path):
    """The fake in its own process; yields its base URL and the three file ids."""
    process = subprocess.Popen([_common.PYTHON, __file__, "--serve", str(folder)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=_common.REPO)
    try:
        url, *ids = process.stdout.readline().split()
        yield url, ids
    finally:
        process.stdin.close()
        process.wait(10)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return CHILDREN[sys.argv[2]](*sys.argv[3:])
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--errors", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(_common.describe_machine())
    with tempfile.TemporaryDirectory(prefix="oaicli-bench-batch-") as scratch:
        folder = Path(scratch)
        paths = write_files(folder, args.requests, args.errors)
        sizes = ", ".join(f"{name} {path.stat().st_size / 1e6:.1f} MB" for name, path in paths.items())
        print(f"{args.requests:,} requests ({args.errors} failed): {sizes}")
        files = [str(paths["input"]), str(paths["output"]), str(paths["errors"])]
        with served(folder) as (url, ids):
            downloads = "; ".join(f"curl -sf -H 'Authorization: Bearer {_common.TEST_KEY}' -o {folder}/curl.{n} "
                                  f"{url}/files/{file_id}/content" for n, file_id in enumerate(ids))
            cases = {"curl (3 downloads)": ["sh", "-c", downloads],
                     "httpx + load-all": [_common.PYTHON, __file__, "--child", "httpx + load-all", "batch_bench",
                                          str(folder / "baseline.out")],
                     "merge only": [_common.PYTHON, __file__, "--child", "merge only", *files,
                                    str(folder / "merge.out")],
                     "batches results": _common.oaicli("batches", "results", "batch_bench", "-o",
                                                       str(folder / "command.out"))}
            print("before:", _common.uptime())
            results = _common.compare(cases, runs=args.runs, warmup=1, env=_common.env_for(url))
            print("after: ", _common.uptime())
        for name in ("merge.out", "command.out"):
            if not same_results(folder / name, folder / "baseline.out"):
                raise SystemExit("The merges wrote different results: the figures would mean nothing.")
        _common.report(results, baseline="httpx + load-all",
                       title=f"Merge output + error files in input order ({args.runs} rounds, medians):")
        # Lines per CPU second too: on a shared machine the wall figure also counts waiting for a core.
        for name, result in results.items():
            print(f"  {name:<18}  {args.requests / result.median:9,.0f} lines/s of wall time, "
                  f"{args.requests / result.cpu_median:9,.0f} per CPU second (whole process, incl. start-up)")


if __name__ == "__main__":
    main()
