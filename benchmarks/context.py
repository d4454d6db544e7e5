"""Context benchmark (issue 3): a session with 100,000 stored turns against an empty one.

Whole-process time of `oaicli chat --session NAME "hi"` against the loopback fake, the two cases
interleaved in one run, medians compared (goal: big <= 1.2 x empty). A second measurement times the
store + context path alone in a fresh `python -c` process (Store.tail + build_messages), which
needs no chat command and no server.

    .venv/bin/python benchmarks/context.py [--runs 15] [--turns 100000] [--model gpt-3.5-turbo]

The stored turns are ~40-word messages mixing English and Chinese, so with gpt-3.5-turbo's 16,385-token
window a request carries a few hundred of them: the store must read only that tail.
"""

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import _common

WORDS = ("the rain kept falling over the old harbour while we talked about umbrellas, trains and the "
         "price of coffee in Lisbon; 昨天下雨了 我出门没带伞 会怎么样 如果带了呢").split()

PATH_SCRIPT = """
import sys
from oaicli.conversation import budget as context
from oaicli.conversation import tokens
from oaicli.conversation.store import Store
model, name = sys.argv[1], sys.argv[2]
store = Store.open()
session = store.ensure_session(name, model=model)
counter = tokens.counter_for(model)
window = tokens.context_window(model)
room = context.budget(system=None, question="hi", counter=counter, context_window=window, answer_tokens=None)
history = store.tail(session.id, token_budget=room, max_turns=None, counter=counter)
messages = context.build_messages(system=None, history=history, question="hi", model=model, counter=counter,
                                  context_window=window, answer_tokens=None, max_history=None)
print(len(messages), counter.count_messages(messages))
"""


def message_text(index: int) -> str:
    start = (index * 7) % len(WORDS)
    return f"turn {index}: " + " ".join(WORDS[start:] + WORDS[:start])


def build_home(turns: int, model: str) -> Path:
    """A fresh OAICLI_HOME holding session `big` with `turns` stored turns."""
    from oaicli.conversation.store import Store
    home = Path(tempfile.mkdtemp(prefix="oaicli-bench-context-"))
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": message_text(i)} for i in range(turns)]
    with Store.open(home / "sessions.db") as store:
        started = time.perf_counter()
        store.import_messages("big", messages, model=model)
        print(f"imported {turns:,} turns in {time.perf_counter() - started:.2f} s (Store.import_messages, one transaction)")
    return home


def compare(title: str, runs: int, big, empty, env) -> None:
    """Like _common.compare, but the empty case gets a new session name every round, so it stays empty
    (each chat run stores its exchange). Two untimed warm-up rounds; the first also caches the big
    tail's token counts, as any earlier chat in that session would have."""
    results = {"100k-turn session": _common.Result("100k-turn session"), "empty session": _common.Result("empty session")}
    for round_number in range(2 + runs):
        for name, command in (("100k-turn session", big(round_number)), ("empty session", empty(round_number))):
            run = _common.run_child(command, env=env)
            if run.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed with exit code {run.returncode}")
            if round_number >= 2:
                results[name].runs.append(run)
    _common.report(results, baseline="empty session", title=title)
    print("  goal: 100k-turn session <= 1.20 x empty session")


def chat_exists(env) -> bool:
    probe = subprocess.run(_common.oaicli("chat", "--help"), env=env, capture_output=True, text=True)
    return probe.returncode == 0 and "--session" in probe.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--model", default="gpt-3.5-turbo")
    args = parser.parse_args()

    from oaicli.conversation import budget as context
    from oaicli.conversation import tokens
    print(_common.describe_machine())
    home = build_home(args.turns, args.model)
    env = _common.env_for(None, OAICLI_HOME=str(home))
    window = tokens.context_window(args.model)
    print(f"model {args.model}: window {window}, answer room {context.answer_room(window)}, margin {context.MARGIN}")
    sent = subprocess.run([_common.PYTHON, "-c", PATH_SCRIPT, args.model, "big"], env=env, cwd=_common.REPO,
                          capture_output=True, text=True, check=True).stdout.split()
    print(f"a request in the 100k-turn session carries {int(sent[0]) - 1} earlier messages, {sent[1]} tokens")

    python = [_common.PYTHON, "-c", PATH_SCRIPT, args.model]
    compare("\nstore + context path: python -c (Store.open, tail, build_messages), whole process", args.runs,
            lambda n: python + ["big"], lambda n: python + [f"empty-path-{n}"], env)

    if not chat_exists(env):
        print("\n`oaicli chat --session` is not available yet: the whole-process chat comparison is skipped")
        return
    with _common.fake_server() as url:
        env = _common.env_for(url, OAICLI_HOME=str(home))
        chat = _common.oaicli("chat", "--no-stream", "-m", args.model, "--session")
        compare("\noaicli chat --no-stream --session NAME \"hi\" against the loopback fake, whole process", args.runs,
                lambda n: chat + ["big", "hi"], lambda n: chat + [f"empty-chat-{n}", "hi"], env)


if __name__ == "__main__":
    main()
