"""Upload benchmark (issue 4): `oaicli files upload` of a 1 GiB file to the loopback fake, side by side
with `curl -F` of the same file, interleaved in one run. Goals: peak RSS <= 50 MB, wall <= 1.3 x curl.

    .venv/bin/python benchmarks/upload.py [--size-mib 1024] [--runs 3] [--dir /tmp]

The file (random bytes) is made in --dir and deleted afterwards. A file over 512 MB goes through the
Uploads API (64 MB parts) by default, as users get it; `--via files` forces one multipart POST /files
(what curl does) by raising the threshold in a tiny wrapper. The fake hashes every upload as it
streams in (sha256), for both clients alike.
"""

import argparse
import os
import tempfile
from pathlib import Path

import _common

FORCE_FILES = ("import sys, oaicli.api.uploads as u; u.UPLOADS_THRESHOLD = 1 << 62\n"
               "from oaicli.cli.root import cli; cli.main(sys.argv[1:], prog_name='oaicli')")


def make_file(directory: str, size_mib: int) -> Path:
    handle, name = tempfile.mkstemp(prefix="oaicli-bench-upload-", suffix=".bin", dir=directory)
    block = os.urandom(1 << 20)
    with os.fdopen(handle, "wb") as sink:
        for _ in range(size_mib):
            sink.write(block)
    return Path(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--via", choices=["auto", "files", "both"], default="both")
    args = parser.parse_args()
    print(_common.describe_machine())
    path = make_file(args.dir, args.size_mib)
    try:
        with _common.fake_server() as url:
            env = _common.env_for(url)
            upload = ["files", "upload", str(path), "--purpose", "user_data", "--format", "plain"]
            cases = {}
            if args.via in ("auto", "both"):
                cases["oaicli (uploads API)" if args.size_mib > 512 else "oaicli"] = _common.oaicli(*upload)
            if args.via in ("files", "both"):
                cases["oaicli (POST /files)"] = [_common.PYTHON, "-c", FORCE_FILES, *upload]
            cases["curl -F"] = ["curl", "-sS", "--fail", "-o", "/dev/null", "-H",
                                f"Authorization: Bearer {_common.TEST_KEY}", "-F", "purpose=user_data",
                                "-F", f"file=@{path}", f"{url}/files"]
            results = _common.compare(cases, runs=args.runs, env=env, warmup=1)
            _common.report(results, baseline="curl -F",
                           title=f"upload of {args.size_mib} MiB, median of {args.runs} runs each:")
    finally:
        path.unlink()


if __name__ == "__main__":
    main()
