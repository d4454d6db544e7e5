"""oaicli moderate against the loopback fake: table, JSON, stdin, and the exit code scripts branch on."""

import json

from oaicli.core.errors import ExitCode
from tests.conftest import run_process


def test_nothing_flagged_exits_0_with_a_table(fake, invoke):
    result = invoke("moderate", "a kind word", "--format", "table")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "a kind word" in result.stdout and " no " in f" {result.stdout} "
    assert "Nothing flagged in 1 input(s)." in result.stderr
    assert fake.calls("POST", "/v1/moderations")[0].json() == {"input": "a kind word"}


def test_flagged_input_exits_9_and_names_the_category(fake, invoke):
    result = invoke("moderate", "fine", "I will kill it", "--format", "table")
    assert result.exit_code == ExitCode.FLAGGED == 9
    rows = result.stdout.splitlines()
    assert any("I will kill it" in row and "violence (0.91)" in row and "yes" in row for row in rows)
    assert any(row.startswith("0") and "no" in row and "violence" not in row for row in rows)
    assert "Flagged: 1 of 2 input(s)." in result.stderr
    assert fake.calls("POST", "/v1/moderations")[0].json() == {"input": ["fine", "I will kill it"]}


def test_json_prints_the_api_answer(fake, invoke):
    result = invoke("moderate", "hate speech", "--format", "json")
    assert result.exit_code == ExitCode.FLAGGED
    answer = json.loads(result.stdout)
    assert answer["results"][0]["categories"]["hate"] is True
    assert answer["id"] == "modr-fake"


def test_jsonl_has_one_line_per_input_with_its_text(fake, invoke):
    result = invoke("moderate", "one", "two", "--format", "jsonl")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["index"], line["input"], line["flagged"]) for line in lines] == [(0, "one", False), (1, "two", False)]


def test_stdin_is_one_input_and_model_is_sent(fake, invoke):
    result = invoke("moderate", "-m", "text-moderation-stable", "--format", "json", input="line one\nline two\n")
    assert result.exit_code == 0, result.stderr
    assert fake.calls("POST", "/v1/moderations")[0].json() == {"input": "line one\nline two\n",
                                                                 "model": "text-moderation-stable"}


def test_no_input_is_a_clear_error_before_any_request(fake, invoke):
    result = invoke("moderate", input="")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: Nothing to moderate: give TEXT arguments or pipe text on standard input."
    assert not fake.calls("POST", "/v1/moderations")


def test_exit_code_9_from_a_real_process(fake):
    result = run_process("moderate", "kill", env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-x1234"})
    assert result.returncode == 9
    assert json.loads(result.stdout)["results"][0]["flagged"] is True  # a pipe gets JSON


def test_blank_text_arguments_fail_before_any_request(fake, invoke):
    result = invoke("moderate", "", "  ")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: Nothing to moderate: every TEXT is blank."
    assert not fake.calls("POST", "/v1/moderations")
