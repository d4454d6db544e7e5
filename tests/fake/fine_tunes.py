"""Fake fine-tuning: the legacy /v1/fine-tunes (2023) and the current /v1/fine_tuning/jobs.

A job plays a script: a list of steps, each adding events and maybe changing the status. One step is
played each time the job is read (GET of the job), or every `state["ft_polls_per_step"]` reads, so a
follower sees events appear over time deterministically, whatever its backoff; with
`state["ft_step_seconds"]` steps play by the clock instead (one every so many seconds). The legacy
event stream (`?stream=true`) replays every event, then streams new ones while steps play by the clock;
`state["legacy_stream_drop_after"]` ([n, ...]) drops the next streams after n events each. A job whose script
has run out and is not finished stays idle (for the follow CPU benchmark). `add_job(server, ...)`
makes a job with any script; `step(...)` makes one step. `state["events_failures"]` drops or fails
chosen events reads, for reconnection tests.
"""

import itertools
import time

from tests.fake.files import add_file
from tests.fake.records import page

_ids = itertools.count(1)


def step(*messages: str, status: str | None = None, error: str | None = None) -> dict:
    return {"messages": list(messages), "status": status, "error": error}


def default_script(model: str) -> list[dict]:
    return [step("Validating training file", status="validating_files"),
            step("Fine-tuning job started", status="running"),
            step("Step 1/2: training loss=0.91", "Step 2/2: training loss=0.42"),
            step("New fine-tuned model created: {fine_tuned_model}", "The job has successfully completed",
                 status="succeeded")]


def add_job(server, api: str = "jobs", status: str = "queued", script: list[dict] | None = None,
            messages: tuple[str, ...] = (), model: str = "gpt-4o-mini-2024-07-18", **fields) -> dict:
    """Make a job directly (tests); its events so far are `messages`, then `script` plays."""
    number = next(_ids)
    legacy = api == "legacy"
    job = {"id": f"ft-{number:06d}" if legacy else f"ftjob-{number:06d}",
           "object": "fine-tune" if legacy else "fine_tuning.job", "model": model,
           "created_at": int(time.time()), "fine_tuned_model": None, "organization_id": "org-fake",
           "result_files": [], "status": status, "training_file": "file-train", "validation_file": None,
           **fields}
    if legacy:
        job.update({"hyperparams": {"n_epochs": 4}, "training_files": [], "validation_files": [],
                    "updated_at": job["created_at"]})
    else:
        job.update({"finished_at": None, "hyperparameters": {"n_epochs": "auto"}, "trained_tokens": None,
                    "error": None, "seed": 42})
    record = {"job": job, "events": [], "script": list(script if script is not None else default_script(model)),
              "polls": 0, "checkpoints": []}
    server.state["ft_jobs"][job["id"]] = record
    for message in messages:
        _event(record, message)
    return job


def _event(record: dict, message: str, level: str = "info") -> None:
    number = next(_ids)
    if record["job"]["object"] == "fine-tune":
        event = {"object": "fine-tune-event", "created_at": int(time.time()), "level": level, "message": message}
    else:
        event = {"object": "fine_tuning.job.event", "id": f"ftevent-{number:06d}", "created_at": int(time.time()),
                 "level": level, "message": message, "type": "message", "data": {}}
    record["events"].append(event)


def _advance(server, record: dict) -> None:
    """Play the next step on every read, or with `state["ft_step_seconds"]` every steps that are due."""
    with server.lock:  # a reader and a stream may both advance the same job
        _advance_locked(server, record)


def _advance_locked(server, record: dict) -> None:
    every = server.state.get("ft_step_seconds")
    if every:
        record.setdefault("started", time.monotonic())
        due = int((time.monotonic() - record["started"]) / every) - record.setdefault("played", 0)
        for _ in range(max(0, due)):
            record["played"] += 1
            _play(server, record)
        return
    record["polls"] += 1
    if record["polls"] >= server.state.get("ft_polls_per_step", 1):
        record["polls"] = 0
        _play(server, record)


def _play(server, record: dict) -> None:
    job = record["job"]
    if not record["script"] or job["status"] in ("cancelled", "paused"):
        return
    current = record["script"].pop(0)
    if current["status"] == "succeeded":
        _succeed(server, record)
    for message in current["messages"]:
        message = message.replace("{fine_tuned_model}", job["fine_tuned_model"] or "")
        _event(record, message, "error" if current["status"] == "failed" else "info")
    if current["status"]:
        job["status"] = current["status"]
    if current["status"] == "failed":
        job["error"] = {"code": "invalid_training_file", "message": current["error"] or "failed", "param": None}


def _succeed(server, record: dict) -> None:
    job = record["job"]
    job["fine_tuned_model"] = f"ft:{job['model']}:fake::{job['id'][-6:]}"
    results = add_file(server, b"step,train_loss\n1,0.91\n2,0.42\n", "step_metrics.csv", "fine-tune-results")
    job["result_files"] = [results] if job["object"] == "fine-tune" else [results["id"]]
    if job["object"] == "fine_tuning.job":
        job["finished_at"] = int(time.time())
        job["trained_tokens"] = 1234
        record["checkpoints"].append({
            "object": "fine_tuning.job.checkpoint", "id": f"ftckpt_{job['id'][-6:]}", "created_at": int(time.time()),
            "fine_tuned_model_checkpoint": job["fine_tuned_model"] + ":ckpt-step-2", "step_number": 2,
            "metrics": {"step": 2, "train_loss": 0.42}, "fine_tuning_job_id": job["id"]})
    server.state["models"].append({"id": job["fine_tuned_model"], "object": "model",
                                   "created": int(time.time()), "owned_by": "org-fake"})


def _live_events(server, record: dict):
    """The legacy stream: every event so far, then, when steps play by the clock, each new one as it
    happens until the job ends (by reads, nothing plays while a stream is open, so it ends at once)."""
    sent = 0
    while True:
        while sent < len(record["events"]):
            sent += 1
            yield record["events"][sent - 1]
        if not server.state.get("ft_step_seconds") or record["job"]["status"] in ("succeeded", "failed",
                                                                                "cancelled"):
            return
        time.sleep(0.02)
        _advance(server, record)


def install(server):
    state = server.state
    state.setdefault("ft_jobs", {})
    state.setdefault("models", [])

    def found(request, reply, kind: str):
        record = state["ft_jobs"].get(request.match["id"])
        if record is None or record["job"]["object"] != kind:
            reply.error(404, f"No fine-tuning job {request.match['id']}", code="fine_tune_not_found")
            return None
        return record

    def create(request, reply, api: str):
        body = request.json()
        for key in ("training_file", "validation_file"):
            if body.get(key) and body[key] not in state["files"]:
                return reply.error(400, f"invalid {key}: {body[key]}", param=key)
        if not body.get("training_file"):
            return reply.error(400, "training_file is required", param="training_file")
        extra = {k: v for k, v in body.items() if k in ("suffix", "metadata", "method", "integrations", "seed")}
        job = add_job(server, api, "validating_files" if api == "jobs" else "pending",
                      model=body.get("model", "gpt-4o-mini-2024-07-18"), training_file=body["training_file"],
                      validation_file=body.get("validation_file"), **extra)
        reply.json(job)

    def change(request, reply, kind: str, allowed: set, to: str, message: str):
        record = found(request, reply, kind)
        if record is None:
            return
        if record["job"]["status"] not in allowed:
            return reply.error(400, f"Cannot change a job that is {record['job']['status']} to {to}")
        record["job"]["status"] = to
        _event(record, message)
        reply.json(record["job"])

    live = {"validating_files", "queued", "running", "paused", "pending"}

    # The current API
    @server.route("POST", "/v1/fine_tuning/jobs")
    def create_job(request, reply):
        create(request, reply, "jobs")

    @server.route("GET", "/v1/fine_tuning/jobs")
    def list_jobs(request, reply):
        jobs = [r["job"] for r in reversed(state["ft_jobs"].values()) if r["job"]["object"] == "fine_tuning.job"]
        reply.json(page(jobs, request.query, key="id"))

    @server.route("GET", "/v1/fine_tuning/jobs/(?P<id>[^/]+)")
    def get_job(request, reply):
        record = found(request, reply, "fine_tuning.job")
        if record:
            _advance(server, record)
            reply.json(record["job"])

    def failed(reply) -> bool:
        """`state["events_failures"]`: {n: "drop" or a status} fails the n-th events read (any job)."""
        state["events_reads"] = state.get("events_reads", 0) + 1
        failure = state.get("events_failures", {}).get(state["events_reads"])
        if failure == "drop":
            reply.drop()
        elif failure:
            reply.error(failure, "The server is busy", type="server_error")
        return bool(failure)

    @server.route("GET", "/v1/fine_tuning/jobs/(?P<id>[^/]+)/events")
    def job_events(request, reply):
        if failed(reply):
            return
        record = found(request, reply, "fine_tuning.job")
        if record:
            reply.json(page(list(reversed(record["events"])), request.query, key="id", default_limit=20))

    @server.route("GET", "/v1/fine_tuning/jobs/(?P<id>[^/]+)/checkpoints")
    def job_checkpoints(request, reply):
        record = found(request, reply, "fine_tuning.job")
        if record:
            reply.json(page(list(reversed(record["checkpoints"])), request.query, key="id", default_limit=10))

    @server.route("POST", "/v1/fine_tuning/jobs/(?P<id>[^/]+)/cancel")
    def cancel_job(request, reply):
        change(request, reply, "fine_tuning.job", live, "cancelled", "Fine-tuning job cancelled")

    @server.route("POST", "/v1/fine_tuning/jobs/(?P<id>[^/]+)/pause")
    def pause_job(request, reply):
        change(request, reply, "fine_tuning.job", {"running"}, "paused", "Fine-tuning job paused")

    @server.route("POST", "/v1/fine_tuning/jobs/(?P<id>[^/]+)/resume")
    def resume_job(request, reply):
        change(request, reply, "fine_tuning.job", {"paused"}, "running", "Fine-tuning job resumed")

    # The legacy API
    @server.route("POST", "/v1/fine-tunes")
    def create_legacy(request, reply):
        create(request, reply, "legacy")

    @server.route("GET", "/v1/fine-tunes")
    def list_legacy(request, reply):
        jobs = [r["job"] for r in state["ft_jobs"].values() if r["job"]["object"] == "fine-tune"]
        reply.json({"object": "list", "data": jobs})

    @server.route("GET", "/v1/fine-tunes/(?P<id>[^/]+)")
    def get_legacy(request, reply):
        record = found(request, reply, "fine-tune")
        if record:
            _advance(server, record)
            reply.json({**record["job"], "events": record["events"]})

    @server.route("GET", "/v1/fine-tunes/(?P<id>[^/]+)/events")
    def legacy_events(request, reply):
        if failed(reply):
            return
        record = found(request, reply, "fine-tune")
        if record and request.query.get("stream") == "true":
            drops = state.get("legacy_stream_drop_after") or []
            return reply.sse(_live_events(server, record), drop_after=drops.pop(0) if drops else None)
        if record:
            reply.json({"object": "list", "data": record["events"]})

    @server.route("POST", "/v1/fine-tunes/(?P<id>[^/]+)/cancel")
    def cancel_legacy(request, reply):
        change(request, reply, "fine-tune", live, "cancelled", "Fine-tune cancelled")
