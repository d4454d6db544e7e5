"""`oaicli fine-tunes`: create, follow and manage fine-tuning jobs (legacy /v1/fine-tunes and /v1/fine_tuning/jobs)."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import InputFile, command, list_options, wait_deadline, yes_option
from oaicli.core.models import model_path

COLUMNS = ["id", "model", "status", "fine_tuned_model", "created_at", "finished_at"]
CHECKPOINT_COLUMNS = ["id", "step_number", "fine_tuned_model_checkpoint", "metrics", "created_at"]
# Options that only one of the two APIs understands.
LEGACY_ONLY = ["prompt_loss_weight", "compute_classification_metrics", "classification_n_classes",
               "classification_positive_class", "classification_betas"]
JOBS_ONLY = ["seed", "metadata", "method", "hyperparameter", "grader", "wandb_project"]


@click.group("fine-tunes")
def fine_tunes():
    """Create, follow and manage fine-tuning jobs, and check training data.

    Works with the current API (/v1/fine_tuning/jobs) and the legacy one (/v1/fine-tunes):
    --api auto (the default) picks what the server offers and remembers it per base URL.

    \b
    Example:
      oaicli fine-tunes create --training-file train.jsonl --model gpt-4o-mini-2024-07-18 --follow
    """


def api_option(func):
    return click.option("--api", "api_name", type=click.Choice(["auto", "jobs", "legacy"]), default="auto",
                        show_default=True, help="Which fine-tuning API to use.")(func)


def _flavour(api_name: str, job_id: str | None = None):
    from oaicli.jobs import fine_tuning
    api = invocation.current().client()
    return api, fine_tuning.choose(api, api_name, job_id)


def after_option(what: str):
    return click.option("--after", metavar="ID", help=f"Only {what} older than this one (the API's cursor; jobs API).")


def _only_jobs(flavour, what: str) -> None:
    from oaicli.core.errors import InputError
    if flavour.name != "jobs":
        raise InputError(f"The legacy fine-tunes API has no {what}.", "Use --api jobs on a server that has it.")


@command(fine_tunes, "create", formats=("plain",))
@click.option("--training-file", required=True, metavar="ID|PATH",
              help="A file ID, or a local JSONL file to check, upload and wait for.")
@click.option("--validation-file", metavar="ID|PATH", help="Validation data: a file ID or a local path.")
@click.option("-m", "--model", help="Base model (default gpt-4o-mini-2024-07-18; legacy: curie).")
@click.option("--suffix", help="Up to 18 characters added to the fine-tuned model's name.")
@click.option("--n-epochs", type=click.IntRange(min=1), help="Epochs to train for.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Examples per batch.")
@click.option("--learning-rate-multiplier", type=click.FloatRange(min=0, min_open=True), help="Learning rate scale.")
@click.option("--prompt-loss-weight", type=float, help="Legacy: weight of the loss on prompt tokens.")
@click.option("--compute-classification-metrics", is_flag=True, default=None, help="Legacy: classification metrics.")
@click.option("--classification-n-classes", type=int, help="Legacy: number of classes.")
@click.option("--classification-positive-class", help="Legacy: the positive class (binary).")
@click.option("--classification-betas", type=float, multiple=True, help="Legacy: F-beta values (repeatable).")
@click.option("--seed", type=int, help="Seed for reproducible jobs.")
@click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="Metadata to attach (repeatable).")
@click.option("--method", type=click.Choice(["supervised", "dpo", "reinforcement"]), help="Fine-tuning method.")
@click.option("--hyperparameter", multiple=True, metavar="KEY=VALUE",
              help="A method hyperparameter such as beta=0.1 or reasoning_effort=low (repeatable).")
@click.option("--grader", metavar="JSON|@FILE", help="Reinforcement: the grader, as JSON or @file.json.")
@click.option("--wandb-project", help="Report to this Weights & Biases project.")
@click.option("--no-validate", is_flag=True, help="Skip the local check of local training files.")
@click.option("--follow", "follow_job", is_flag=True, help="Then follow the job until it ends (exit codes as follow).")
@api_option
def create(api_name, training_file, validation_file, model, follow_job, no_validate, **params):
    """Create a job; local files are uploaded first.

    A local training or validation file is checked (unless --no-validate), uploaded with a
    progress bar and waited for until processed before the job is created.

    With --format plain, prints only the job ID (or, with --follow, only the fine-tuned model).

    \b
    Example:
      oaicli fine-tunes create --training-file train.jsonl --suffix support --follow --format plain
    """
    from oaicli.api import uploads
    from oaicli.jobs import training_data
    from oaicli.output import writers as output
    from oaicli.output.progress import progress_bar
    files = {"training_file": training_file, "validation_file": validation_file}
    local = {key: _local_path(value) for key, value in files.items() if value}  # before any request
    api, flavour = _flavour(api_name)
    _check_api_options(flavour, params)
    model = model or invocation.current().settings.default_model(
        "fine-tunes", "curie" if flavour.name == "legacy" else "gpt-4o-mini-2024-07-18")
    extra = _legacy_body(params) if flavour.name == "legacy" else _jobs_body(params)
    if not no_validate:  # check every local file before uploading any
        for path in filter(None, local.values()):
            training_data.refuse_invalid(path, model)
    body = {"model": model}
    for key, path in local.items():
        body[key] = uploads.upload_one(api, path, "fine-tune", progress_bar, output.notice, True,
                                       wait_deadline())["id"] if path else files[key]
    job = api.post(flavour.base, json={**body, **extra})
    if follow_job:
        output.notice(f"Created {job['id']}; following it (Ctrl-C stops following, the job goes on).")
        return _follow(api, flavour, job["id"])
    if output.resolve_format() == "plain":
        output.write(job["id"])
    else:
        output.render_object(job)


def _check_api_options(flavour, params: dict) -> None:
    from oaicli.core.errors import InputError
    wrong = LEGACY_ONLY if flavour.name == "jobs" else JOBS_ONLY
    for name in wrong:
        if params.get(name) not in (None, (), False):
            raise InputError(f"--{name.replace('_', '-')} is not part of the {flavour.name} fine-tuning API.",
                             "Choose the API with --api jobs or --api legacy.")


def _local_path(value: str):
    """A local file to upload, or None when the value is a file ID; a missing path is an error."""
    from pathlib import Path
    if Path(value).exists():
        from oaicli.core.inputs import input_file
        return input_file(value, "Training file")  # a folder or an unreadable file says so
    if "/" in value or value.endswith((".jsonl", ".json")):
        from oaicli.core.errors import InputError
        raise InputError(f"No such file: {value}.", "Give a local JSONL file or an uploaded file's ID.")
    return None


def _hyperparameters(params: dict) -> dict:
    from oaicli.jobs import fine_tuning
    values = {key: params[key] for key in ("n_epochs", "batch_size", "learning_rate_multiplier")
              if params.get(key) is not None}
    extra = fine_tuning.pairs(params.get("hyperparameter") or (), "--hyperparameter")
    return {**values, **{key: fine_tuning.parse_value(value) for key, value in extra.items()}}


def _legacy_body(params: dict) -> dict:
    names = ["suffix", "n_epochs", "batch_size", "learning_rate_multiplier", *LEGACY_ONLY]
    body = {name: params[name] for name in names if params.get(name) not in (None, ())}
    if "classification_betas" in body:
        body["classification_betas"] = list(body["classification_betas"])
    return body


def _jobs_body(params: dict) -> dict:
    from oaicli.core.errors import InputError
    from oaicli.jobs import fine_tuning
    body = {name: params[name] for name in ("suffix", "seed") if params.get(name) is not None}
    if params.get("metadata"):
        body["metadata"] = fine_tuning.pairs(params["metadata"], "--metadata")
    if params.get("wandb_project"):
        body["integrations"] = [{"type": "wandb", "wandb": {"project": params["wandb_project"]}}]
    hyper = _hyperparameters(params)
    method = params.get("method")
    if params.get("grader") and method != "reinforcement":
        raise InputError("--grader goes with --method reinforcement.")
    if method:
        settings = {"hyperparameters": hyper} if hyper else {}
        if params.get("grader"):
            settings["grader"] = _json_argument(params["grader"], "--grader")
        body["method"] = {"type": method, method: settings}
    elif params.get("hyperparameter"):
        raise InputError("--hyperparameter goes with --method.", "Or use --n-epochs, --batch-size, "
                         "--learning-rate-multiplier.")
    elif hyper:
        body["hyperparameters"] = hyper  # understood by every version of the jobs API
    return body


def _json_argument(value: str, option: str):
    import json
    from pathlib import Path

    from oaicli.core.errors import InputError
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(f"{option}: cannot read JSON from {value!r}: {exc}.")


@command(fine_tunes, "list")
@list_options
@after_option("jobs")
@api_option
def list_jobs(api_name, after):
    """List fine-tuning jobs.

    \b
    Example:
      oaicli fine-tunes list --format json | jq -r '.[] | select(.status=="running") | .id'
    """
    from oaicli.output import writers as output
    api, flavour = _flavour(api_name)
    if after:
        _only_jobs(flavour, "--after cursor")
    page = flavour.list_jobs(api, invocation.flag("limit"), bool(invocation.flag("fetch_all")), after)
    output.render_list(page, COLUMNS, raw=bool(invocation.flag("raw")))


def _job_command(name: str, action: str | None, summary: str, example: str, jobs_only: bool = False):
    """get, cancel, pause and resume differ only in the path and the verb."""
    def run(job_id, api_name):
        from oaicli.output import writers as output
        api, flavour = _flavour(api_name, job_id)
        if jobs_only:
            _only_jobs(flavour, name)
        path = f"{flavour.base}/{job_id}" + (f"/{action}" if action else "")
        output.render_object(api.post(path) if action else api.get(path))
    run.__doc__ = f"{summary}\n\n    \b\n    Example:\n      {example}\n    "
    return command(fine_tunes, name)(click.argument("job_id")(api_option(run)))


get_job = _job_command("get", None, "Show one fine-tuning job.", "oaicli fine-tunes get ftjob-abc123")
cancel_job = _job_command("cancel", "cancel", "Cancel a running job.", "oaicli fine-tunes cancel ftjob-abc123")
pause_job = _job_command("pause", "pause", "Pause a running job (jobs API).",
                         "oaicli fine-tunes pause ftjob-abc123", jobs_only=True)
resume_job = _job_command("resume", "resume", "Resume a paused job (jobs API).",
                          "oaicli fine-tunes resume ftjob-abc123", jobs_only=True)


@command(fine_tunes, "events")
@click.argument("job_id")
@list_options
@after_option("events")
@api_option
def events(job_id, api_name, after):
    """Show a job's events, oldest first.

    In the table format each event is a `[YYYY-MM-DD HH:MM:SS] message` line.

    \b
    Example:
      oaicli fine-tunes events ftjob-abc123 --all
    """
    from oaicli.jobs import fine_tuning
    from oaicli.output import writers as output
    api, flavour = _flavour(api_name, job_id)
    if after:
        _only_jobs(flavour, "--after cursor")
    items = flavour.events(api, job_id, invocation.flag("limit"), bool(invocation.flag("fetch_all")), after)
    if output.resolve_format() == "table":
        for event in items:
            output.write(fine_tuning.event_line(event))
    else:
        output.render_list(items)


@command(fine_tunes, "checkpoints")
@click.argument("job_id")
@list_options
@api_option
def checkpoints(job_id, api_name):
    """List a job's checkpoints (jobs API).

    \b
    Example:
      oaicli fine-tunes checkpoints ftjob-abc123
    """
    from oaicli.output import writers as output
    api, flavour = _flavour(api_name, job_id)
    _only_jobs(flavour, "checkpoints")
    page = api.list_all(f"{flavour.base}/{job_id}/checkpoints", {"limit": invocation.flag("limit")},
                        bool(invocation.flag("fetch_all")))
    output.render_list(page, CHECKPOINT_COLUMNS, raw=bool(invocation.flag("raw")))


@command(fine_tunes, "results")
@click.argument("job_id")
@click.option("-d", "--directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to write the result files.")
@api_option
def results(job_id, directory, api_name):
    """Download a job's result files.

    Each result file (metrics CSV) is written atomically into the directory.

    \b
    Example:
      oaicli fine-tunes results ftjob-abc123 -d results/
    """
    from pathlib import Path

    from oaicli.output import writers as output
    from oaicli.output.files import download_target
    from oaicli.output.progress import progress_bar
    api, flavour = _flavour(api_name, job_id)
    job = api.get(f"{flavour.base}/{job_id}")
    written = []
    for entry in job.get("result_files") or []:
        info = entry if isinstance(entry, dict) else api.get(f"/files/{entry}")
        name = Path(info.get("filename") or info["id"]).name
        target = Path(directory) / (name if not (Path(directory) / name).exists() else f"{info['id']}-{name}")
        with progress_bar(None, name) as bar, download_target(target) as sink:
            api.download(f"/files/{info['id']}/content", sink, bar, where=target)
        written.append({"file_id": info["id"], "path": str(target)})
    if not written:
        output.notice(f"Job {job_id} has no result files (yet).")
    output.render_list(written, ["file_id", "path"])


@command(fine_tunes, "delete")
@click.argument("model")
@yes_option
def delete_model(model, yes):
    """Delete a fine-tuned model.

    Sends DELETE /v1/models/MODEL; asks first on a terminal, and a script must pass --yes.

    \b
    Example:
      oaicli fine-tunes delete ft:gpt-4o-mini-2024-07-18:acme::abc123 --yes
    """
    from oaicli.output import prompts
    from oaicli.output import writers as output
    prompts.confirm_or_abort(f"Delete model {model}?", yes)
    output.render_object(invocation.current().client().delete(model_path(model)))


@command(fine_tunes, "follow", formats=("plain",))
@click.argument("job_id")
@api_option
def follow(job_id, api_name):
    """Follow a job's events until it ends.

    The exit code tells how the job ended.

    Exit 0 succeeded (the fine-tuned model's name is printed last; with --format plain it is the
    only thing on stdout, events go to stderr), 6 failed, 7 cancelled, 8 when --timeout SECONDS
    runs out first, 130 on Ctrl-C (the job goes on). Events print once each, oldest first, as
    `[YYYY-MM-DD HH:MM:SS] message` in local time, or as JSON lines with --format json/jsonl.

    \b
    Example:
      MODEL=$(oaicli fine-tunes follow ftjob-abc123 --timeout 7200 --format plain)
    """
    api, flavour = _flavour(api_name, job_id)
    return _follow(api, flavour, job_id)


for _param in follow.params:
    if _param.name == "timeout":
        _param.help = "Give up following after this many seconds (exit 8); each poll itself waits at most 30 s."
for _param in create.params:
    if _param.name == "timeout":
        _param.help = ("Request timeout; also the longest wait for uploaded files to be processed and, "
                       "with --follow, for the job to end (exit 8).")


def _follow(api, flavour, job_id: str) -> int:
    from oaicli.jobs import fine_tuning
    from oaicli.output import writers as output
    # Without a chosen format the event lines are the output, in a pipe too (a CI log reads them);
    # a chosen one (flag, OAICLI_FORMAT, profile) is checked like every command's.
    fmt = output.chosen_format()

    def emit(event):
        if fmt in ("json", "jsonl"):
            output.write_json_line(event)
        elif fmt == "plain":
            output.notice(fine_tuning.event_line(event))
        else:
            output.write(fine_tuning.event_line(event))

    try:
        job = fine_tuning.follow(api, flavour, job_id, emit, wait_deadline(), sleep=api.sleep)
    except KeyboardInterrupt:
        fine_tuning.interrupted(job_id, invocation.current().say)
    fine_tuning.outcome(job)
    model = job.get("fine_tuned_model") or ""
    if fmt == "plain":
        output.write(model)
    elif fmt in ("json", "jsonl"):
        output.write_json_line(job)
    else:
        output.write(f"Fine-tuned model: {model}")
    return 0


@command(fine_tunes, "prepare-data")
@click.argument("path", metavar="FILE", type=InputFile("Training file"))
@click.option("-m", "--model", default="gpt-4o-mini-2024-07-18", show_default=True,
              help="Model whose token limit and price apply.")
@click.option("--fix", is_flag=True, help="Write the valid examples, unknown keys removed, to FILE's stem + "
              ".fixed.jsonl (never overwrites).")
def prepare_data(path, model, fix):
    """Check JSONL training data line by line.

    Both formats are understood: chat messages and prompt/completion (2023).

    Reports invalid JSON, missing or mistyped keys, unknown roles, empty content, duplicates and
    examples over the model's token limit, then the total training tokens and the estimated cost
    per epoch. Exit 0 when every example is valid (or --fix wrote a corrected copy), 4 otherwise.

    \b
    Example:
      oaicli fine-tunes prepare-data train.jsonl --fix
    """
    from oaicli.core.errors import InputError
    from oaicli.jobs import training_data
    from oaicli.output import writers as output
    report = training_data.analyse(path, model)
    fixed = training_data.write_fixed(report) if fix and report.problems and (report.valid or report.repairs) \
        else None
    summary = {**report.as_dict(), "fixed_file": str(fixed) if fixed else None}
    if output.resolve_format() in ("json", "jsonl"):
        (output.write(output.dumps(summary)) if output.resolve_format() == "json"
         else output.write_json_line(summary))
    else:
        output.write(_report_text(summary))
    if report.problems and not fixed:
        raise InputError(f"{path}: {len(report.problems)} problem(s) found.",
                         "Fix them, or write a corrected copy with --fix.")


def _report_text(summary: dict) -> str:
    lines = [f"line {p['line']}: {p['message']}" if p["line"] else p["message"] for p in summary["problems"]]
    cost = summary["estimated_cost_per_epoch_usd"]
    lines += [
        f"{summary['file']}: {summary['format'] or 'unknown'} format, {summary['examples']} examples, "
        f"{summary['valid_examples']} valid, {summary['repairable_examples']} repairable by --fix, "
        f"{len(summary['problems'])} problem(s).",
        f"Training tokens: {summary['total_tokens']} per epoch (valid examples; limit "
        f"{summary['token_limit']} per example for {summary['model']}).",
        f"Estimated cost per epoch: {'$%.4f' % cost if cost is not None else 'unknown for this model'}.",
    ]
    if summary["fixed_file"]:
        kept = summary["valid_examples"] + summary["repairable_examples"]
        lines.append(f"Wrote {kept} examples (valid or repaired) to {summary['fixed_file']}.")
    return "\n".join(lines)
