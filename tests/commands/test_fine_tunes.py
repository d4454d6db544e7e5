"""fine-tunes: both APIs against the loopback fake; follow with events appearing over time, drops and
5xx mid-follow (no duplicate lines), paging, every terminal status and its exit code, Ctrl-C."""

import json
from datetime import datetime

import pytest

from tests.fake.files import add_file
from tests.fake.fine_tunes import add_job, step
from tests.fake.server import Scripted
from tests.terminal import run_tty

CHAT_LINE = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'


def messages_of(stdout: str) -> list[str]:
    """The messages of `[YYYY-MM-DD HH:MM:SS] message` lines, checking the timestamp's shape."""
    found = []
    for line in stdout.splitlines():
        if line.startswith("["):
            stamp, _, message = line[1:].partition("] ")
            datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
            found.append(message)
    return found


@pytest.fixture
def training(fake):
    return add_file(fake, CHAT_LINE.encode(), "train.jsonl")


# create

def test_create_jobs_api_body(invoke, fake, training):
    result = invoke("fine-tunes", "create", "--training-file", training["id"], "--model", "gpt-4o-mini-2024-07-18",
                    "--suffix", "support", "--n-epochs", 3, "--seed", 7, "--metadata", "team=ml",
                    "--wandb-project", "proj", "--format", "json")
    assert result.exit_code == 0, result.stderr
    body = fake.calls("POST", "/v1/fine_tuning/jobs")[0].json()
    assert body == {"model": "gpt-4o-mini-2024-07-18", "training_file": training["id"], "suffix": "support",
                    "seed": 7, "metadata": {"team": "ml"}, "hyperparameters": {"n_epochs": 3},
                    "integrations": [{"type": "wandb", "wandb": {"project": "proj"}}]}
    assert json.loads(result.stdout)["id"].startswith("ftjob-")


def test_create_with_a_method_and_its_hyperparameters(invoke, fake, training, tmp_path):
    grader = tmp_path / "grader.json"
    grader.write_text('{"type": "string_check", "name": "g"}')
    invoke("fine-tunes", "create", "--training-file", training["id"], "--method", "dpo",
           "--hyperparameter", "beta=0.1", "--batch-size", 8, "--api", "jobs")
    invoke("fine-tunes", "create", "--training-file", training["id"], "--method", "reinforcement",
           "--grader", f"@{grader}", "--hyperparameter", "reasoning_effort=low", "--api", "jobs")
    dpo, rft = [c.json()["method"] for c in fake.calls("POST", "/v1/fine_tuning/jobs")]
    assert dpo == {"type": "dpo", "dpo": {"hyperparameters": {"batch_size": 8, "beta": 0.1}}}
    assert rft == {"type": "reinforcement", "reinforcement": {
        "hyperparameters": {"reasoning_effort": "low"}, "grader": {"type": "string_check", "name": "g"}}}


def test_create_legacy_body(invoke, fake, training):
    result = invoke("fine-tunes", "create", "--api", "legacy", "--training-file", training["id"], "--model", "curie",
                    "--n-epochs", 2, "--prompt-loss-weight", 0.01, "--compute-classification-metrics",
                    "--classification-n-classes", 2, "--classification-positive-class", " yes",
                    "--classification-betas", 0.5, "--classification-betas", 1, "--format", "plain")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().startswith("ft-")
    assert fake.calls("POST", "/v1/fine-tunes")[0].json() == {
        "model": "curie", "training_file": training["id"], "n_epochs": 2, "prompt_loss_weight": 0.01,
        "compute_classification_metrics": True, "classification_n_classes": 2,
        "classification_positive_class": " yes", "classification_betas": [0.5, 1.0]}


def test_an_option_of_the_other_api_is_refused(invoke, fake, training):
    result = invoke("fine-tunes", "create", "--api", "jobs", "--training-file", training["id"],
                    "--prompt-loss-weight", 0.1)
    assert result.exit_code == 4 and "--prompt-loss-weight is not part of the jobs" in result.stderr
    result = invoke("fine-tunes", "create", "--api", "legacy", "--training-file", training["id"], "--seed", 1)
    assert result.exit_code == 4 and "--seed is not part of the legacy" in result.stderr
    assert fake.calls("POST") == []


def test_create_from_a_local_file_checks_uploads_waits_then_follows(invoke, fake, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(CHAT_LINE)
    fake.state["file_process_polls"] = 2
    result = invoke("fine-tunes", "create", "--training-file", data, "--follow", "--format", "plain")
    assert result.exit_code == 0, result.stderr
    [upload] = fake.calls("POST", "/v1/files")
    file_id = next(i for i, e in fake.state["files"].items() if e["meta"]["filename"] == "train.jsonl")
    assert len(fake.calls("GET", f"/v1/files/{file_id}")) == 2  # waited until processed
    assert fake.calls("POST", "/v1/fine_tuning/jobs")[0].json()["training_file"] == file_id
    assert result.stdout.strip().startswith("ft:gpt-4o-mini-2024-07-18:fake::")
    assert "The job has successfully completed" in result.stderr


def test_create_from_a_bad_local_file_sends_nothing(invoke, fake, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": [{"role": "robot", "content": "x"}]}\n')
    result = invoke("fine-tunes", "create", "--training-file", data)
    assert result.exit_code == 4 and "unknown role 'robot'" in result.stderr
    assert fake.calls("POST") == []


def test_both_local_files_are_checked_before_either_is_uploaded(invoke, fake, tmp_path):
    good, bad = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    good.write_text(CHAT_LINE)
    bad.write_text("{oops\n")
    result = invoke("fine-tunes", "create", "--training-file", good, "--validation-file", bad)
    assert result.exit_code == 4 and "valid.jsonl is not valid fine-tune data: line 1" in result.stderr
    assert fake.calls("POST") == []


def test_create_with_a_missing_local_file_says_so(invoke, fake):
    result = invoke("fine-tunes", "create", "--training-file", "data/missing.jsonl")
    assert result.exit_code == 4 and "No such file: data/missing.jsonl" in result.stderr
    assert fake.calls("POST") == []


# follow

def test_follow_prints_each_event_once_oldest_first_and_the_model(invoke, fake):
    job = add_job(fake, messages=("Created job",))
    result = invoke("fine-tunes", "follow", job["id"])
    assert result.exit_code == 0, result.stderr
    model = fake.state["ft_jobs"][job["id"]]["job"]["fine_tuned_model"]
    assert messages_of(result.stdout) == [
        "Created job", "Validating training file", "Fine-tuning job started", "Step 1/2: training loss=0.91",
        "Step 2/2: training loss=0.42", f"New fine-tuned model created: {model}", "The job has successfully completed"]
    assert result.stdout.splitlines()[-1] == f"Fine-tuned model: {model}"


def test_follow_as_a_process_while_events_appear_by_the_clock(fake):
    from tests.conftest import run_process
    fake.state["ft_step_seconds"] = 0.4
    job = add_job(fake)
    result = run_process("fine-tunes", "follow", job["id"], "--format", "plain")
    assert result.returncode == 0, result.stderr
    model = fake.state["ft_jobs"][job["id"]]["job"]["fine_tuned_model"]
    assert result.stdout == model + "\n"
    assert messages_of(result.stderr) == [e["message"] for e in fake.state["ft_jobs"][job["id"]]["events"]]
    assert len(messages_of(result.stderr)) == 6


def test_follow_refuses_a_format_from_the_environment_it_does_not_have(invoke, fake, monkeypatch):
    job = add_job(fake)
    monkeypatch.setenv("OAICLI_FORMAT", "xml")
    result = invoke("fine-tunes", "follow", job["id"])
    assert result.exit_code == 3 and "Format 'xml'" in result.stderr and result.stdout == ""
    monkeypatch.setenv("OAICLI_FORMAT", "plain")
    result = invoke("fine-tunes", "follow", job["id"])
    assert result.stdout == fake.state["ft_jobs"][job["id"]]["job"]["fine_tuned_model"] + "\n"


def test_follow_plain_prints_only_the_model_on_stdout(invoke, fake):
    job = add_job(fake)
    result = invoke("fine-tunes", "follow", job["id"], "--format", "plain")
    assert result.exit_code == 0
    assert result.stdout == fake.state["ft_jobs"][job["id"]]["job"]["fine_tuned_model"] + "\n"
    assert "Fine-tuning job started" in result.stderr


def test_follow_jsonl_prints_events_then_the_job(invoke, fake):
    job = add_job(fake)
    result = invoke("fine-tunes", "follow", job["id"], "--format", "jsonl")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events, final = lines[:-1], lines[-1]
    assert [e["id"] for e in events] == [e["id"] for e in fake.state["ft_jobs"][job["id"]]["events"]]
    assert final["status"] == "succeeded" and final["fine_tuned_model"]


@pytest.mark.parametrize("status, code, text", [("failed", 6, "failed: bad data"), ("cancelled", 7, "was cancelled")])
def test_follow_exit_codes_for_failed_and_cancelled(invoke, fake, status, code, text):
    job = add_job(fake, script=[step("Started", status="running"), step("Stopping", status=status, error="bad data")])
    result = invoke("fine-tunes", "follow", job["id"])
    assert result.exit_code == code and text in result.stderr
    assert messages_of(result.stdout) == ["Started", "Stopping"]


def test_follow_gives_up_after_timeout_with_exit_8(invoke, fake):
    job = add_job(fake, status="running", script=[], messages=("Waiting",))
    result = invoke("fine-tunes", "follow", job["id"], "--timeout", "0.3")
    assert result.exit_code == 8 and f"oaicli fine-tunes follow {job['id']}" in result.stderr
    assert messages_of(result.stdout) == ["Waiting"]


@pytest.mark.parametrize("failure", ["drop", 503])
def test_follow_reconnects_after_drops_and_5xx_without_duplicates(invoke, fake, failure):
    job = add_job(fake, messages=("Created job",))
    fake.state["events_failures"] = {3: failure, 4: failure}  # after some events have printed
    result = invoke("fine-tunes", "follow", job["id"], env={"OAICLI_MAX_RETRIES": "0"})
    assert result.exit_code == 0, result.stderr
    printed = messages_of(result.stdout)
    assert printed == [e["message"] for e in fake.state["ft_jobs"][job["id"]]["events"]] and len(printed) == 7
    assert result.stderr.count("Lost contact with the server") == 2


def test_follow_pages_back_when_more_than_a_page_is_new(invoke, fake):
    burst = [f"line {i}" for i in range(250)]
    job = add_job(fake, messages=tuple(f"old {i}" for i in range(130)),
                  script=[step(status="running"), step(*burst), step("done", status="succeeded")])
    result = invoke("fine-tunes", "follow", job["id"])
    assert result.exit_code == 0
    assert messages_of(result.stdout) == [f"old {i}" for i in range(130)] + burst + ["done"]
    afters = [c.query.get("after") for c in fake.calls("GET", f"/v1/fine_tuning/jobs/{job['id']}/events")]
    assert any(afters) and afters.count(None) >= 3  # re-reads the newest page each time; pages back when needed


def test_follow_legacy_dedupes_by_time_and_message(invoke, fake):
    job = add_job(fake, api="legacy", status="pending", script=[
        step("Epoch done", status="running"), step("Epoch done"), step("Uploaded model", status="succeeded")])
    fake.state["events_failures"] = {2: "drop"}
    result = invoke("fine-tunes", "follow", job["id"], env={"OAICLI_MAX_RETRIES": "0"})
    assert result.exit_code == 0, result.stderr
    # two genuine "Epoch done" events (possibly in the same second) both print, once each
    assert messages_of(result.stdout) == ["Epoch done", "Epoch done", "Uploaded model"]
    assert fake.calls("GET", "/v1/fine_tuning/jobs") == []  # the ft- prefix says legacy: no probe


def test_follow_legacy_uses_the_event_stream_and_survives_a_drop_mid_stream(invoke, fake):
    fake.state["ft_step_seconds"] = 0.15
    fake.state["legacy_stream_drop_after"] = [3]  # the first stream breaks after three events
    job = add_job(fake, api="legacy", status="pending", messages=("Created fine-tune",), script=[
        step("Fine-tune started", status="running"), step("Completed epoch 1/2", "Completed epoch 2/2"),
        step("Uploaded model", "Fine-tune succeeded", status="succeeded")])
    result = invoke("fine-tunes", "follow", job["id"], env={"OAICLI_MAX_RETRIES": "0"})
    assert result.exit_code == 0, result.stderr
    assert messages_of(result.stdout) == ["Created fine-tune", "Fine-tune started", "Completed epoch 1/2",
                                          "Completed epoch 2/2", "Uploaded model", "Fine-tune succeeded"]
    assert result.stderr.count("Lost contact with the server") == 1
    streams = fake.calls("GET", f"/v1/fine-tunes/{job['id']}/events")
    assert len(streams) >= 2 and all(call.query == {"stream": "true"} for call in streams)


@pytest.mark.parametrize("status, code", [("succeeded", 0), ("failed", 6), ("cancelled", 7)])
def test_follow_legacy_ends_when_the_job_ended_while_its_stream_keeps_dropping(invoke, fake, status, code):
    events = [f"event {n}" for n in range(6)]
    job = add_job(fake, api="legacy", status=status, script=[], messages=tuple(events))
    fake.state["legacy_stream_drop_after"] = [2] * 50  # every stream breaks after two events
    result = invoke("fine-tunes", "follow", job["id"], "--timeout", "5", env={"OAICLI_MAX_RETRIES": "0"})
    assert result.exit_code == code, result.stderr
    assert messages_of(result.stdout) == events  # the rest from one plain read of the list, each once
    streams = [c for c in fake.calls("GET", f"/v1/fine-tunes/{job['id']}/events") if c.query == {"stream": "true"}]
    assert len(streams) == 1


def test_ctrl_c_prints_resume_and_cancel_and_exits_130(fake):
    job = add_job(fake, status="running", script=[], messages=("Training started",))
    result = run_tty("fine-tunes", "follow", job["id"], answers=[("Training started", "\x03")])
    assert result.returncode == 130
    assert f"Resume: oaicli fine-tunes follow {job['id']}" in result.output
    assert f"Cancel: oaicli fine-tunes cancel {job['id']}" in result.output
    assert fake.state["ft_jobs"][job["id"]]["job"]["status"] == "running"


# API detection

def test_auto_detects_the_legacy_api_and_remembers_it(invoke, fake, home):
    fake.queue("GET", "/v1/fine_tuning/jobs", Scripted(status=404, body={"error": {"message": "Not found"}}))
    add_job(fake, api="legacy")
    first = invoke("fine-tunes", "list", "--format", "json")
    assert first.exit_code == 0 and json.loads(first.stdout)[0]["id"].startswith("ft-")
    assert json.loads((home / "fine_tune_api.json").read_text()) == {fake.url: "legacy"}
    second = invoke("fine-tunes", "list", "--format", "json")
    assert second.stdout == first.stdout
    assert len(fake.calls("GET", "/v1/fine_tuning/jobs")) == 1  # probed once only


def test_auto_prefers_the_jobs_api(invoke, fake, home):
    job = add_job(fake)
    result = invoke("fine-tunes", "list", "--format", "json")
    assert [j["id"] for j in json.loads(result.stdout)] == [job["id"]]
    assert json.loads((home / "fine_tune_api.json").read_text()) == {fake.url: "jobs"}
    assert fake.calls("GET", "/v1/fine-tunes") == []


# the other commands

def test_get_cancel_pause_resume(invoke, fake):
    job = add_job(fake, status="running", script=[])
    assert json.loads(invoke("fine-tunes", "pause", job["id"], "--format", "json").stdout)["status"] == "paused"
    assert json.loads(invoke("fine-tunes", "resume", job["id"], "--format", "json").stdout)["status"] == "running"
    assert json.loads(invoke("fine-tunes", "cancel", job["id"], "--format", "json").stdout)["status"] == "cancelled"
    assert json.loads(invoke("fine-tunes", "get", job["id"], "--format", "json").stdout)["status"] == "cancelled"
    again = invoke("fine-tunes", "cancel", job["id"])
    assert again.exit_code == 4 and "cancelled" in again.stderr


def test_pause_is_refused_on_the_legacy_api(invoke, fake):
    job = add_job(fake, api="legacy", status="running", script=[])
    result = invoke("fine-tunes", "pause", job["id"])
    assert result.exit_code == 4 and "legacy fine-tunes API has no pause" in result.stderr


def test_events_checkpoints_results_and_delete(invoke, fake, tmp_path):
    job = add_job(fake)
    invoke("fine-tunes", "follow", job["id"], "--format", "plain")
    model = fake.state["ft_jobs"][job["id"]]["job"]["fine_tuned_model"]
    events = invoke("fine-tunes", "events", job["id"], "--format", "table")
    assert messages_of(events.stdout)[0] == "Validating training file"
    listed = json.loads(invoke("fine-tunes", "events", job["id"], "--format", "json").stdout)
    assert listed[-1]["message"] == "The job has successfully completed"
    checkpoints = json.loads(invoke("fine-tunes", "checkpoints", job["id"], "--format", "json").stdout)
    assert checkpoints[0]["fine_tuned_model_checkpoint"].startswith(model)
    result = invoke("fine-tunes", "results", job["id"], "-d", tmp_path / "out", "--format", "json")
    [written] = json.loads(result.stdout)
    assert (tmp_path / "out" / "step_metrics.csv").read_text() == "step,train_loss\n1,0.91\n2,0.42\n"
    assert written["path"].endswith("step_metrics.csv")
    deleted = invoke("fine-tunes", "delete", model, "--yes", "--format", "json")
    assert json.loads(deleted.stdout)["deleted"] is True
    assert model not in [m["id"] for m in fake.state["models"]]


def test_follow_survives_a_server_that_repeats_its_events_page(invoke):
    """A page whose `after` cursor leads back to itself must not loop forever or print twice."""
    import httpx

    def handler(request):
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"object": "list", "has_more": True, "data": [
                {"id": "ev1", "created_at": 0, "message": "only once"}]})
        return httpx.Response(200, json={"id": "ftjob-1", "status": "running"})

    invoke.obj["transport"] = httpx.MockTransport(handler)
    result = invoke("fine-tunes", "follow", "ftjob-1", "--timeout", "0.3", env={"OPENAI_API_KEY": "sk-x"})
    assert result.exit_code == 8 and messages_of(result.stdout) == ["only once"]


def test_list_and_events_pass_the_after_cursor(invoke, fake):
    older, newer = add_job(fake), add_job(fake)
    listed = json.loads(invoke("fine-tunes", "list", "--after", newer["id"], "--format", "json").stdout)
    assert [job["id"] for job in listed] == [older["id"]]
    job = add_job(fake, status="running", script=[], messages=("one", "two", "three"))
    ids = [e["id"] for e in fake.state["ft_jobs"][job["id"]]["events"]]
    result = invoke("fine-tunes", "events", job["id"], "--after", ids[2], "--format", "json")
    assert [e["message"] for e in json.loads(result.stdout)] == ["one", "two"]
    assert fake.calls("GET", f"/v1/fine_tuning/jobs/{job['id']}/events")[-1].query == {"after": ids[2]}


def test_after_is_refused_on_the_legacy_api(invoke, fake):
    job = add_job(fake, api="legacy")
    result = invoke("fine-tunes", "events", job["id"], "--after", "x")
    assert result.exit_code == 4 and "legacy fine-tunes API has no --after cursor" in result.stderr
