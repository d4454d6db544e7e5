"""Download benchmark (issue 4): `oaicli files content ID -o PATH` of a 1 GiB body from the loopback fake,
side by side with `curl -o` of the same URL, interleaved in one run; also both to stdout (> /dev/null).
Goals: peak RSS <= 50 MB, wall <= 1.3 x curl.

    .venv/bin/python benchmarks/download.py [--size-mib 1024] [--runs 3] [--dir /tmp]

oaicli writes under a temporary name, fsyncs and renames when complete; curl -o writes in place and does
not fsync, so the file cases include that difference. Output files go to --dir and are deleted.
"""

import argparse
import tempfile
from pathlib import Path

import _common

FILE_ID = "file-bench"


def state_for(size: int) -> dict:
    meta = {"id": FILE_ID, "object": "file", "bytes": size, "created_at": 0, "filename": "big.bin",
            "purpose": "user_data", "status": "processed", "status_details": None}
    return {"files": {FILE_ID: {"meta": meta, "blob": None, "size": size, "drop_at": None, "polls": 0}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/tmp")
    args = parser.parse_args()
    print(_common.describe_machine())
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
            results = _common.compare(cases, runs=args.runs, env=env, warmup=1)
            for name in ("oaicli.bin", "curl.bin"):
                assert (work / name).stat().st_size == size, f"{name} is not {size} bytes"
            title = f"download of {args.size_mib} MiB, median of {args.runs} runs each:"
            _common.report({k: results[k] for k in ("oaicli -o", "curl -o")}, baseline="curl -o", title=title)
            _common.report({k: results[k] for k in ("oaicli > /dev/null", "curl > /dev/null")},
                           baseline="curl > /dev/null")
    finally:
        for child in work.iterdir():
            child.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
