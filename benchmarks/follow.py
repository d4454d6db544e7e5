"""Follow benchmark (issue 4): CPU used by `oaicli fine-tunes follow` while a job on the loopback fake
stays running with no new events, until `--timeout` ends it (exit 8). Goal: at most 1 s of CPU for 60 s.

    .venv/bin/python benchmarks/follow.py [--idle 60]

Side by side, in the same run: the shell loop people write in CI (`curl` the job every 5 s for the same
time), as the baseline. Both run at once, so they see the same machine.
"""

import argparse
import threading

import _common


class _Holder:
    state = {"ft_jobs": {}, "files": {}, "models": []}


def idle_state() -> tuple[dict, str]:
    from tests.fake.fine_tunes import add_job
    job = add_job(_Holder, status="running", script=[], messages=("Fine-tuning job started",))
    return {"ft_jobs": _Holder.state["ft_jobs"]}, job["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=60.0, help="Seconds to follow the idle job.")
    args = parser.parse_args()
    print(_common.describe_machine())
    state, job_id = idle_state()
    with _common.fake_server(state=state) as url:
        env = _common.env_for(url)
        loop = (f'end=$((SECONDS+{int(args.idle)})); while [ $SECONDS -lt $end ]; do '
                f'curl -sS -o /dev/null -H "Authorization: Bearer $OPENAI_API_KEY" "{url}/fine_tuning/jobs/{job_id}"; '
                f'sleep 5; done')
        runs = {}
        shell = threading.Thread(target=lambda: runs.setdefault("curl loop", _common.run_child(["bash", "-c", loop],
                                                                                             env=env)))
        shell.start()
        runs["oaicli follow"] = _common.run_child(
            _common.oaicli("fine-tunes", "follow", job_id, "--timeout", str(args.idle)), env=env)
        shell.join()
    print(f"follow of an idle job for {args.idle:.0f} s (oaicli exit {runs['oaicli follow'].returncode}, expected 8):")
    for name, run in runs.items():
        ratio = run.cpu_seconds / runs["curl loop"].cpu_seconds
        print(f"  {name:<13}  wall {run.seconds:5.1f} s  cpu {run.cpu_seconds * 1000:7.1f} ms = {ratio:4.2f} x"
              f"  peak RSS {run.peak_rss_kib / 1024:5.1f} MiB")
    print("  (ratios are to the curl loop; goal: oaicli cpu <= 1000 ms)")


if __name__ == "__main__":
    main()
