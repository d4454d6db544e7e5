"""Start-up benchmark (issues 2 and 11): `oaicli --help`, `oaicli models list --help` and the generated
`oaicli vector-stores --help` and `oaicli vector-stores create --help` against `python -c pass` and
`python -c "import click"`, all with the venv's interpreter, interleaved, medians compared.
Goal: at most 1.3 x the `import click` baseline.

    .venv/bin/python benchmarks/startup.py [--runs 40] [--importtime]
"""

import argparse
import os
import subprocess
import sys

import _common

GOAL = 1.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--importtime", action="store_true",
                        help="also show the slowest imports of `oaicli --help` (python -X importtime)")
    args = parser.parse_args()
    py = _common.PYTHON
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import click'": [py, "-c", "import click"],
        "oaicli --help": _common.oaicli("--help"),
        "oaicli models list --help": _common.oaicli("models", "list", "--help"),
        "oaicli vector-stores --help": _common.oaicli("vector-stores", "--help"),
        "oaicli vector-stores create --help": _common.oaicli("vector-stores", "create", "--help"),
        "python -m oaicli --help": [py, "-m", "oaicli", "--help"],
    }
    print(_common.describe_machine())
    results = _common.compare(cases, runs=args.runs, env=_common.env_for())
    _common.report(results, baseline="python -c 'import click'",
                   title=f"Start-up, median of {args.runs} interleaved runs:")
    click_result = results["python -c 'import click'"]
    for name in ("oaicli --help", "oaicli models list --help", "oaicli vector-stores --help",
                 "oaicli vector-stores create --help"):
        ratio = results[name].median / click_result.median
        cpu_ratio = results[name].cpu_median / click_result.cpu_median
        print(f"{name}: {ratio:.2f} x import click in wall time, {cpu_ratio:.2f} x in CPU time (goal <= {GOAL})"
              f" -> {'met' if ratio <= GOAL else 'MISSED'}")
    extra = results["oaicli --help"].median - click_result.median
    print(f"oaicli's own cost above import click: {extra * 1000:.1f} ms wall")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} on {os.cpu_count()} CPUs; wall times are noisy, rerun when idle")
    if args.importtime:
        show_importtime(py)
    return 0


def show_importtime(py: str, top: int = 15) -> None:
    result = subprocess.run([py, "-X", "importtime", "-m", "oaicli", "--help"], capture_output=True, text=True)
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self" not in line:
            self_us, cumulative_us, name = line.split(":", 1)[1].split("|")
            rows.append((int(self_us), int(cumulative_us), name.strip()))
    print("Slowest imports of `oaicli --help` (self time, microseconds):")
    for self_us, cumulative_us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {self_us:7d}  {cumulative_us:8d}  {name}")


if __name__ == "__main__":
    sys.exit(main())
