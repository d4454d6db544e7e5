"""Image benchmark (issue 5): `oaicli image create -n 10 --response-format b64_json` saving ten 1 MB images
from the loopback fake, against a Python process that writes the same ten 1 MB files (plain, and with the
fsync that oaicli's atomic writes do). Goal: time dominated by writing the bytes. For context it also
times the fixed costs: `oaicli --version` (start-up) and curl fetching the same 14 MB answer to /dev/null.

    .venv/bin/python benchmarks/image.py [--runs 10] [--size 1048576]
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import _common

PROMPT = "benchmark image"
WRITER = """
import os, sys
sys.path.insert(0, {repo!r})
from tests.fake.images import image_bytes
out = {out!r}
blobs = [image_bytes({prompt!r}, i, {size}) for i in range(10)]
for i, blob in enumerate(blobs):
    path = os.path.join(out, f"py-{{os.getpid()}}-{{i}}.png")
    with open(path, "wb") as sink:
        sink.write(blob)
        if {fsync}:
            sink.flush()
            os.fsync(sink.fileno())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, default=1 << 20)
    args = parser.parse_args()
    print(_common.describe_machine())
    out = Path(tempfile.mkdtemp(prefix="oaicli-bench-image-"))
    try:
        with _common.fake_server(state={"image_size": args.size}) as url:
            cases = {
                "oaicli image create": _common.oaicli("image", "create", PROMPT, "-n", "10", "--response-format",
                                                      "b64_json", "-o", str(out / "oaicli")),
                "python write+fsync": [_common.PYTHON, "-c", _writer(out, args.size, fsync=True)],
                "python write": [_common.PYTHON, "-c", _writer(out, args.size, fsync=False)],
                "(oaicli --version)": _common.oaicli("--version"),
                "(curl fetch only)": ["curl", "-sS", "--fail", "-o", "/dev/null", "-H", "Authorization: Bearer x",
                                      "-H", "Content-Type: application/json", "-d", _body(), url + "/images/generations"],
            }
            (out / "oaicli").mkdir()
            results = _common.compare(cases, runs=args.runs, env=_common.env_for(url))
        _check(out / "oaicli", args.size)
        print(f"\nten {args.size / 1048576:.0f} MB images, {args.runs} runs each (median):")
        _common.report(results, baseline="python write+fsync")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


def _body() -> str:
    import json
    return json.dumps({"prompt": PROMPT, "n": 10, "response_format": "b64_json"})


def _writer(out: Path, size: int, fsync: bool) -> str:
    return WRITER.format(repo=str(_common.REPO), out=str(out), prompt=PROMPT, size=size, fsync=fsync)


def _check(directory: Path, size: int) -> None:
    """Every saved image is byte for byte what the fake sent (the runs made benchmark-image-1 ... -N)."""
    from tests.fake.images import image_bytes
    first = [image_bytes(PROMPT, i, size) for i in range(10)]
    for index in range(10):
        if (directory / f"benchmark-image-{index + 1}.png").read_bytes() != first[index]:
            raise SystemExit(f"saved image {index + 1} differs from what the server sent")


if __name__ == "__main__":
    raise SystemExit(main())
