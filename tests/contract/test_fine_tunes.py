"""fine-tunes against Prism: the jobs API against both specs (pause, resume and checkpoints only in the
current one), the legacy /fine-tunes API against the 2023 spec."""

import json

from tests.contract.conftest import assert_valid


def jobs(prism, *args):
    return prism.run("fine-tunes", *args, "--api", "jobs")


def test_jobs_create_validates(prism):
    result = jobs(prism, "create", "--training-file", "file-abc123", "--validation-file", "file-def456",
                  "--model", "gpt-3.5-turbo", "--n-epochs", "2", "--batch-size", "4",
                  "--learning-rate-multiplier", "0.5", "--suffix", "support")
    assert_valid(result)
    assert "id" in json.loads(result.stdout)


def test_jobs_create_with_method_and_extras_validates(prism_current):
    result = jobs(prism_current, "create", "--training-file", "file-abc123", "--model", "gpt-4o-mini",
                  "--method", "dpo", "--hyperparameter", "beta=0.1", "--n-epochs", "2", "--seed", "7",
                  "--metadata", "team=ml", "--wandb-project", "proj")
    assert_valid(result)


def test_jobs_list_get_cancel_events_validate(prism):
    for args in (("list", "--limit", "2", "--after", "ftjob-abc000"), ("get", "ftjob-abc123"),
                 ("cancel", "ftjob-abc123"), ("events", "ftjob-abc123", "--limit", "5", "--after", "ftevent-abc")):
        result = jobs(prism, *args)
        assert_valid(result)
        assert result.stdout.strip()


def test_jobs_pause_resume_checkpoints_validate(prism_current):
    for args in (("pause", "ftjob-abc123"), ("resume", "ftjob-abc123"), ("checkpoints", "ftjob-abc123")):
        assert_valid(jobs(prism_current, *args))


def test_jobs_follow_requests_validate(prism):
    """Prism's job never ends, so follow stops at --timeout: exit 8, and no request was refused."""
    result = jobs(prism, "follow", "ftjob-abc123", "--timeout", "2")
    assert "HTTP 422" not in result.stderr
    assert result.returncode == 8 and "after the --timeout" in result.stderr


def test_delete_model_validates(prism):
    assert_valid(prism.run("fine-tunes", "delete", "ft:gpt-3.5-turbo:acme::abc123", "--yes"))


def legacy(prism_2023, *args):
    return prism_2023.run("fine-tunes", *args, "--api", "legacy")


def test_legacy_create_validates(prism_2023):
    result = legacy(prism_2023, "create", "--training-file", "file-abc123", "--validation-file", "file-def456",
                    "--model", "curie", "--n-epochs", "2", "--batch-size", "4", "--learning-rate-multiplier", "0.1",
                    "--prompt-loss-weight", "0.01", "--compute-classification-metrics",
                    "--classification-n-classes", "2", "--classification-positive-class", " yes",
                    "--classification-betas", "0.5", "--classification-betas", "1", "--suffix", "custom")
    assert_valid(result)
    assert json.loads(result.stdout)["object"] == "fine-tune" or "id" in json.loads(result.stdout)


def test_legacy_list_get_cancel_events_validate(prism_2023):
    for args in (("list",), ("get", "ft-abc123"), ("cancel", "ft-abc123"), ("events", "ft-abc123")):
        result = legacy(prism_2023, *args)
        assert_valid(result)
        assert result.stdout.strip()


def test_legacy_follow_requests_validate(prism_2023):
    result = legacy(prism_2023, "follow", "ft-abc123", "--timeout", "2")
    assert "HTTP 422" not in result.stderr
    assert result.returncode == 8


def test_auto_detects_the_jobs_api_on_both_specs(prism, tmp_path):
    result = prism.run("fine-tunes", "list", env={"OAICLI_HOME": str(tmp_path)})
    assert_valid(result)
    assert json.loads((tmp_path / "fine_tune_api.json").read_text()) == {prism.url: "jobs"}
