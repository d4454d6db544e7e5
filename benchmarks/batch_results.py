"""Batch results benchmark (issue 12): merging a 50,000-request batch's output and error files into one
JSONL in input order. Goal: at least 50,000 lines/s, peak memory under 100 MB.

    .venv/bin/python benchmarks/batch_results.py [--requests 50000] [--errors 500] [--runs 3]

It writes an input file, an output file in shuffled order (as the Batch API may return it) with
realistic chat.completion bodies (a few hundred words each), and an error file, then times whole
processes side by side: oaicli's streaming merge (`oaicli.jobs.batch_results.merge`, indexing byte
offsets) against the baseline people write first, a load-everything merge in plain Python
(`json.loads` every output and error line into one dict, like `jq -s`, then write in input order).
Both write the same results (line by line, as parsed JSON: oaicli copies each answer's body as the
server wrote it, so spacing may differ); the script checks that before printing figures. A third case is
the whole command, `oaicli batches results BATCH_ID -o FILE`, reading the three files back from the
loopback fake (downloads included).
"""

import argparse
import json
import random
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


def load_all_merge(input_path, output_path, error_path, destination) -> None:
    """The baseline: every result parsed and held, then written in input order."""
    from oaicli.jobs.batch_results import result_of
    results = {}
    for path in (output_path, error_path):
        with open(path, "rb") as source:
            for line in source:
                parsed = json.loads(line)
                results.setdefault(parsed["custom_id"], parsed)
    with open(input_path, "rb") as inputs, open(destination, "wb") as sink:
        for line in inputs:
            custom_id = json.loads(line)["custom_id"]
            result = result_of(custom_id, results[custom_id])
            sink.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")


CHILDREN = {"streaming": streaming_merge, "load-all": load_all_merge}


def same_results(first: Path, second: Path) -> bool:
    with first.open("rb") as one, second.open("rb") as other:
        return all(json.loads(a) == json.loads(b) for a, b in zip(one, other, strict=True))


def _served(paths: dict[str, Path]):
    """The loopback fake holding the three files and a completed batch that names them."""
    import contextlib

    from tests.fake import files
    from tests.fake.server import FakeOpenAI
    files.KEEP_LIMIT = 1 << 30  # the fake keeps 8 MiB per file by default; these files are larger

    @contextlib.contextmanager
    def serving():
        with FakeOpenAI() as server:
            ids = {name: files.add_file(server, path.read_bytes(), path.name, "batch")["id"] for name, path in paths.items()}
            batch = {"id": "batch_bench", "object": "batch", "endpoint": "/v1/chat/completions", "status": "completed",
                     "input_file_id": ids["input"], "output_file_id": ids["output"], "error_file_id": ids["errors"]}
            server.state["batches"]["batch_bench"] = {"batch": batch, "requests": [], "errors": [], "step": 4,
                                                      "polls": 0, "done": 0}
            yield server, batch["id"]
    return serving()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return CHILDREN[sys.argv[2]](*sys.argv[3:7])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--errors", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(_common.describe_machine())
    with tempfile.TemporaryDirectory(prefix="oaicli-bench-batch-") as scratch:
        folder = Path(scratch)
        paths = write_files(folder, args.requests, args.errors)
        sizes = ", ".join(f"{name} {path.stat().st_size / 1e6:.1f} MB" for name, path in paths.items())
        print(f"{args.requests:,} requests ({args.errors} failed): {sizes}")
        files = [str(paths["input"]), str(paths["output"]), str(paths["errors"])]
        cases = {name: [_common.PYTHON, __file__, "--child", name, *files, str(folder / f"{name}.out")]
                 for name in CHILDREN}
        with _served(paths) as (server, batch_id):
            cases["batches results"] = [_common.PYTHON, "-m", "oaicli", "batches", "results", batch_id,
                                        "-o", str(folder / "command.out")]
            results = _common.compare(cases, runs=args.runs, warmup=1, env=_common.env_for(server.url))
        for name in ("streaming.out", "command.out"):
            if not same_results(folder / name, folder / "load-all.out"):
                raise SystemExit("The merges wrote different results: the figures would mean nothing.")
        _common.report(results, baseline="load-all", title="Merge output + error files in input order:")
        # Lines per CPU second too: on a shared machine the wall figure also counts waiting for a core.
        for name, result in results.items():
            print(f"  {name:<15}  {args.requests / result.median:9,.0f} lines/s of wall time, "
                  f"{args.requests / result.cpu_median:9,.0f} per CPU second (whole process, incl. start-up)")


if __name__ == "__main__":
    main()
