"""`oaicli models` against the loopback fake: list, get, delete, pagination, confirmation."""

import json

from tests.conftest import TEST_KEY
from tests.terminal import run_tty

IDS = ["ft:gpt-4o-mini:acme::abc123", "gpt-3.5-turbo", "gpt-4o", "text-davinci-003"]


def test_list_json_sorted_by_id(invoke, fake):
    result = invoke("models", "list")
    assert result.exit_code == 0 and result.stderr == ""
    assert [m["id"] for m in json.loads(result.stdout)] == IDS
    call = fake.calls("GET", "/v1/models")[0]
    assert call.headers["authorization"] == f"Bearer {TEST_KEY}" and call.query == {}


def test_list_table_columns(invoke, fake, utc):
    lines = invoke("models", "list", "--format", "table").stdout.splitlines()
    assert lines[0].split() == ["id", "owned_by", "created"]
    assert lines[4].split() == ["gpt-4o", "system", "2024-05-10", "18:50:49"]
    assert len(lines) == 2 + len(IDS) and "object" not in lines[0]


def test_list_first_page_then_all(invoke, fake):
    fake.state["models_page_size"] = 3
    first = invoke("models", "list", "--limit", "3", "--format", "json", "--raw")
    page = json.loads(first.stdout)
    assert len(page["data"]) == 3 and page["has_more"] is True
    assert fake.calls("GET", "/v1/models")[0].query == {"limit": "3"}
    everything = invoke("models", "list", "--all", "--limit", "3")
    assert sorted(m["id"] for m in json.loads(everything.stdout)) == IDS
    queries = [c.query for c in fake.calls("GET", "/v1/models")[1:]]
    assert queries == [{"limit": "3"}, {"limit": "3", "after": "text-davinci-003"}]


def test_list_jsonl(invoke, fake):
    lines = invoke("models", "list", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == IDS


def test_get(invoke, fake):
    result = invoke("models", "get", "gpt-4o")
    assert json.loads(result.stdout) == {"id": "gpt-4o", "object": "model", "created": 1715367049,
                                         "owned_by": "system"}


def test_get_fine_tuned_model_keeps_the_colons_in_the_path(invoke, fake):
    assert json.loads(invoke("models", "get", IDS[0]).stdout)["owned_by"] == "acme"
    assert fake.calls("GET")[-1].path == f"/v1/models/{IDS[0]}"


def test_get_missing_is_4_with_a_hint(invoke, fake):
    result = invoke("models", "get", "nope")
    assert result.exit_code == 4 and result.stdout == ""
    assert "oaicli models list" in result.stderr


def test_delete_with_yes(invoke, fake):
    result = invoke("models", "delete", IDS[0], "--yes")
    assert json.loads(result.stdout) == {"id": IDS[0], "object": "model", "deleted": True}
    assert IDS[0] not in [m["id"] for m in fake.state["models"]]


def test_delete_without_a_terminal_needs_yes(invoke, fake):
    result = invoke("models", "delete", "gpt-4o")  # a script: nobody to ask, so nothing is deleted
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == ("Error: Delete model gpt-4o? Not done: stdin is not a terminal, so nobody can confirm. "
                             "Pass --yes to go ahead without asking.\n")
    assert fake.calls("DELETE") == []
    assert invoke("models", "delete", "gpt-4o", "--yes").exit_code == 0 and len(fake.calls("DELETE")) == 1


def test_delete_on_a_terminal_asks_and_no_keeps_the_model(fake):
    result = run_tty("models", "delete", "gpt-4o", answers=[("Delete model gpt-4o? [y/N]", "n\r")])
    assert result.returncode == 1 and "Aborted." in result.output
    assert fake.calls("DELETE") == [] and "gpt-4o" in [m["id"] for m in fake.state["models"]]


def test_delete_on_a_terminal_yes_deletes(fake):
    result = run_tty("models", "delete", "gpt-4o", "--format", "json",
                     answers=[("Delete model gpt-4o? [y/N]", "y\r")])
    assert result.returncode == 0 and '"deleted": true' in result.output
    assert len(fake.calls("DELETE", "/v1/models/gpt-4o")) == 1


def test_delete_on_a_terminal_with_yes_does_not_ask(fake):
    result = run_tty("models", "delete", "gpt-4o", "--yes", "--format", "json")
    assert result.returncode == 0 and "Delete model" not in result.output


def test_delete_missing_is_4(invoke, fake):
    result = invoke("models", "delete", "nope", "--yes")
    assert result.exit_code == 4 and "does not exist" in result.stderr


def test_help_has_summary_and_example(invoke):
    for sub in ("list", "get", "delete"):
        text = invoke("models", sub, "--help").stdout
        assert "Example:" in text and "oaicli models" in text
