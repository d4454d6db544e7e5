"""`oaicli models list` benchmark (issue 2): the whole process against the loopback fake, compared with what
a shell script would otherwise do, `curl` for the request plus `python3 -c pass` for a Python step.

    .venv/bin/python benchmarks/models_list.py [--runs 30] [--models 4]
"""

import argparse
import sys

import _common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", type=int, default=0,
                        help="serve this many models instead of the fake's four (e.g. 1000 for a big list)")
    args = parser.parse_args()
    state = {}
    if args.models:
        state["models"] = [{"id": f"model-{i:05d}", "object": "model", "created": 1700000000 + i, "owned_by": "bench"}
                           for i in range(args.models)]
    print(_common.describe_machine())
    with _common.fake_server(state=state) as url:
        env = _common.env_for(url)
        cases = {
            "oaicli models list (json)": _common.oaicli("models", "list", "--format", "json"),
            "oaicli models list (table)": _common.oaicli("models", "list", "--format", "table"),
            "curl": ["curl", "-sS", "-f", "-H", f"Authorization: Bearer {_common.TEST_KEY}", f"{url}/models"],
            "python -c pass": [_common.PYTHON, "-c", "pass"],
        }
        results = _common.compare(cases, runs=args.runs, env=env)
    results["curl + python -c pass"] = _common.combined("curl + python -c pass", results.pop("curl"),
                                                        results.pop("python -c pass"))
    _common.report(results, baseline="curl + python -c pass",
                   title=f"models list ({args.models or 4} models), median of {args.runs} interleaved runs:")
    return 0


if __name__ == "__main__":
    sys.exit(main())
