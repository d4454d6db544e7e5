"""Generated list calls (issue 11) against the hand-written command doing the same request: the whole process
against the loopback fake, interleaved, medians compared. Goal: at most 1.1 x `oaicli models list`.

    .venv/bin/python benchmarks/generated_list.py [--runs 30]

- `oaicli api GET /models`: the same request as `oaicli models list`, through `oaicli api` (the path is
  looked up in the operations table and the request checked against it before it is sent);
- `oaicli vector-stores list`: a generated command (its group file read, its command built from the table),
  for a list of the same size (the fake serves four vector stores and four models);
- the same with `--format yaml` (PyYAML) and `--jq` (the jq library): what those imports cost.
"""

import argparse
import sys

import _common

GOAL = 1.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    stores = {f"vs_{i}": {"meta": {"id": f"vs_{i}", "object": "vector_store", "created_at": 1700000000 + i,
                                   "name": f"docs{i}", "status": "completed", "usage_bytes": 0,
                                   "file_counts": {"completed": 0, "total": 0}}, "files": []} for i in range(4)}
    print(_common.describe_machine())
    with _common.fake_server(state={"vector_stores": stores}) as url:
        env = _common.env_for(url)
        cases = {
            "oaicli models list": _common.oaicli("models", "list", "--format", "json"),
            "oaicli api GET /models": _common.oaicli("api", "GET", "/models", "--format", "json"),
            "oaicli vector-stores list": _common.oaicli("vector-stores", "list", "--format", "json"),
            # What the output filters cost (their libraries load only when asked for):
            "oaicli vector-stores list --format yaml": _common.oaicli("vector-stores", "list", "--format", "yaml"),
            "oaicli vector-stores list --jq .[].id": _common.oaicli("vector-stores", "list", "--jq", ".[].id"),
        }
        results = _common.compare(cases, runs=args.runs, env=env)
    _common.report(results, baseline="oaicli models list",
                   title=f"A list call, hand-written and generated, median of {args.runs} interleaved runs:")
    base = results["oaicli models list"]
    for name in ("oaicli api GET /models", "oaicli vector-stores list"):
        ratio, cpu = results[name].median / base.median, results[name].cpu_median / base.cpu_median
        print(f"{name}: {ratio:.2f} x oaicli models list in wall time, {cpu:.2f} x in CPU time (goal <= {GOAL})"
              f" -> {'met' if ratio <= GOAL else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
