"""Follow-up benchmark (issue 14): whole-process `oaicli chat --session s Q` on a session holding 10 stored
exchanges (far inside the model's window) against a stateless `oaicli chat Q`, interleaved in one run
against the loopback fake. Goal: session <= 1.15 x stateless.

    .venv/bin/python benchmarks/followup.py [--runs 15] [--exchanges 10] [--models gpt-3.5-turbo,gpt-4o]

gpt-3.5-turbo counts with cl100k_base (100k ranks), gpt-4o with o200k_base (200k ranks, twice the cost to
build). The exchanges are made by oaicli itself (`chat --session s` before timing), so the store holds what
real use leaves there; before every timed session run the store file is put back as it was, so each run
sees exactly the same exchanges.
"""

import argparse
import shutil
from pathlib import Path

import _common

QUESTION = ("昨天下雨了，我出门没带伞，会怎么样？ Also: what would have changed if I had taken the bus instead of "
            "walking along the harbour, given that the rain stopped around noon and the shops were open?")
FOLLOW_UP = "如果带了呢"


def build_session(env: dict, exchanges: int, model: str) -> Path:
    home = Path(env["OAICLI_HOME"])
    for number in range(exchanges):
        run = _common.run_child(_common.oaicli("chat", "-m", model, "--session", "s", f"{number}: {QUESTION}"),
                                env=env)
        if run.returncode:
            raise SystemExit("building the session failed")
    template = home.parent / (home.name + "-template.db")
    checkpoint(home / "sessions.db")
    shutil.copyfile(home / "sessions.db", template)
    return template


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file, so one file copy is the whole store."""
    import sqlite3
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def restore(template: Path, home: Path) -> None:
    for suffix in ("-wal", "-shm"):
        (home / f"sessions.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, home / "sessions.db")


def bench(url: str, model: str, args) -> bool:
    env = _common.env_for(url)
    template = build_session(env, args.exchanges, model)
    home = Path(env["OAICLI_HOME"])
    cases = {"session": _common.oaicli("chat", "-m", model, "--session", "s", FOLLOW_UP),
             "stateless": _common.oaicli("chat", "-m", model, FOLLOW_UP)}
    results = {name: _common.Result(name) for name in cases}
    for round_number in range(2 + args.runs):
        for name, command in cases.items():
            restore(template, home)
            run = _common.run_child(command, env=env)
            if run.returncode:
                raise SystemExit(f"{name} failed with exit code {run.returncode}")
            if round_number >= 2:
                results[name].runs.append(run)
    title = f"\nchat follow-up, {args.exchanges} stored exchanges, {model}, median of {args.runs}\n  {_common.uptime()}"
    _common.report(results, baseline="stateless", title=title)
    ratio = results["session"].median / results["stateless"].median
    print(f"  session is {ratio:.2f} x stateless (goal <= 1.15: {'met' if ratio <= 1.15 else 'MISSED'})")
    return ratio <= 1.15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--exchanges", type=int, default=10)
    parser.add_argument("--models", default="gpt-3.5-turbo,gpt-4o")
    args = parser.parse_args()
    print(_common.describe_machine())
    with _common.fake_server() as url:
        met = [bench(url, model, args) for model in args.models.split(",")]
    return 0 if all(met) else 1


if __name__ == "__main__":
    raise SystemExit(main())
