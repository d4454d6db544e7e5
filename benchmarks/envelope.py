"""Envelope benchmark (issue 3): `oaicli chat --envelope --concurrency 32` answering 200 users x 5 questions,
the fake taking 200 ms per answer. Each user's questions must be answered in order, so the ideal schedule
is ceil(1000 / 32) rounds of 200 ms = 6.4 s. Goal: whole-process time at most 1.3 x that, for input
interleaved by user (q1 of every user, then q2, ...) and grouped by user (all of user 1, then user 2, ...).

Memory: peak RSS of 1,000 requests against 10,000 (fast answers), which should be flat.

    .venv/bin/python benchmarks/envelope.py [--users 200] [--questions 5] [--concurrency 32] [--delay 0.2]
"""

import argparse
import json
import math

import _common

GOAL = 1.3


def lines(users: int, questions: int, grouped: bool) -> bytes:
    order = ([(u, q) for u in range(users) for q in range(questions)] if grouped
             else [(u, q) for q in range(questions) for u in range(users)])
    out = [json.dumps({"version": "1.0.0", "pars": {"user_id": f"user-{u}", "group_id": "bench",
                                                    "question": f"question {q} from user {u}", "question_id": ""}})
           for u, q in order]
    return ("\n".join(out) + "\n").encode()


def answered(command, env, stdin: bytes, expected: int) -> None:
    import subprocess
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, check=True)
    responses = [json.loads(line) for line in result.stdout.splitlines()]
    failed = [r for r in responses if r["code"] != 0]
    if len(responses) != expected or failed:
        raise SystemExit(f"expected {expected} ok answers, got {len(responses)} ({len(failed)} failed): "
                         f"{failed[:1]}")


def _median(values) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def bench_env(url: str) -> dict:
    env = _common.env_for(url)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run it, with bytecode caches
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    total = args.users * args.questions
    ideal = max(math.ceil(total / args.concurrency), args.questions) * args.delay
    command = _common.oaicli("chat", "--envelope", "--concurrency", str(args.concurrency))
    print(_common.describe_machine())
    with _common.fake_server(state={"answer_delay": args.delay}) as url:
        for grouped in (False, True):
            stdin = lines(args.users, args.questions, grouped)
            answered(command, bench_env(url), stdin, total)  # checks every answer, warms the caches
            runs = [_common.run_child(command, env=bench_env(url), stdin=stdin) for _ in range(args.runs)]
            median = _median(r.seconds for r in runs)
            ratio = median / ideal
            print(f"{args.users} users x {args.questions} questions, {'grouped by user' if grouped else 'interleaved'}, "
                  f"--concurrency {args.concurrency}, {args.delay * 1000:.0f} ms answers: median {median:.2f} s "
                  f"of {args.runs} runs, ideal {ideal:.2f} s -> {ratio:.2f} x ideal (goal <= {GOAL}) "
                  f"{'met' if ratio <= GOAL else 'MISSED'}; oaicli's CPU {_median(r.cpu_seconds for r in runs):.2f} s; "
                  f"peak RSS {max(r.peak_rss_kib for r in runs) / 1024:.1f} MiB")
    with _common.fake_server(state={"answer_delay": 0.002}) as url:
        rss = {}
        for users in (200, 2000):
            stdin = lines(users, args.questions, grouped=False)
            run = _common.run_child(command, env=bench_env(url), stdin=stdin)
            rss[users] = run.peak_rss_kib / 1024
            print(f"memory: {users * args.questions} requests, peak RSS {rss[users]:.1f} MiB "
                  f"({run.seconds:.1f} s, CPU {run.cpu_seconds:.1f} s, exit {run.returncode})")
        print(f"peak RSS ratio 10,000 / 1,000 requests: {rss[2000] / rss[200]:.2f} (flat is about 1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
