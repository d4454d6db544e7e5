"""The output layer: table, json and jsonl, --raw, timestamps, colour only on a terminal, default by tty."""

import json

import httpx
import pytest

from oaicli.output import writers as output
from tests.conftest import TEST_KEY
from tests.terminal import run_tty

PAGE = {"object": "list", "has_more": False, "data": [
    {"id": "b-model", "object": "model", "created": 1700000000, "owned_by": "org\nwith newline"},
    {"id": "a-model", "object": "model", "created": 0, "owned_by": None, "extra": {"k": [1, 2]}},
]}


@pytest.fixture
def served(invoke, monkeypatch):
    """`invoke` talking to a MockTransport that answers /models with PAGE."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    invoke.obj["transport"] = httpx.MockTransport(lambda request: httpx.Response(200, json=PAGE))
    return invoke


def test_table_has_the_resource_columns_and_readable_timestamps(served, utc):
    result = served("models", "list", "--format", "table")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "owned_by", "created"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["a-model", "1970-01-01", "00:00:00"]
    assert lines[3].split() == ["b-model", "org", "with", "newline", "2023-11-14", "22:13:20"]
    assert "\x1b[" not in result.stdout  # not a terminal: no colour even for a table
    assert result.stderr == ""


def test_json_is_one_document_with_the_items(served):
    result = served("models", "list", "--format", "json")
    assert [m["id"] for m in json.loads(result.stdout)] == ["a-model", "b-model"]


def test_json_raw_is_the_page_object(served):
    document = json.loads(served("models", "list", "--format", "json", "--raw").stdout)
    assert document["object"] == "list" and document["has_more"] is False
    assert [m["id"] for m in document["data"]] == ["a-model", "b-model"]


def test_jsonl_is_one_object_per_line(served):
    lines = served("models", "list", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a-model", "b-model"]
    assert json.loads(lines[0])["extra"] == {"k": [1, 2]}


def test_default_is_json_when_stdout_is_not_a_terminal(served):
    assert isinstance(json.loads(served("models", "list").stdout), list)


def test_oaicli_format_env_sets_the_default_and_the_flag_wins(served, monkeypatch):
    monkeypatch.setenv("OAICLI_FORMAT", "jsonl")
    assert len(served("models", "list").stdout.splitlines()) == 2
    assert isinstance(json.loads(served("models", "list", "--format", "json").stdout), list)


def test_unknown_default_format_is_one_clear_line(served, monkeypatch):
    monkeypatch.setenv("OAICLI_FORMAT", "xml")
    result = served("models", "list")
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr == ("Error: Format 'xml' (env OAICLI_FORMAT) is not one of table, json, jsonl, yaml. "
                             "Pass --format, or fix OAICLI_FORMAT or the profile's format.\n")
    assert json.loads(served("models", "list", "--format", "json").stdout)  # the flag still wins


def test_profile_format_is_a_default(served, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[profiles.default]\nformat = "table"\n')
    assert served("models", "list").stdout.split()[:3] == ["id", "owned_by", "created"]


def test_bad_format_is_a_usage_error(served):
    result = served("models", "list", "--format", "xml")
    assert result.exit_code == 2 and "'xml' is not one of" in result.stderr and result.stdout == ""


def test_object_as_table_and_json(served):
    served.obj["transport"] = httpx.MockTransport(lambda request: httpx.Response(200, json=PAGE["data"][0]))
    table = served("models", "get", "b-model", "--format", "table").stdout.splitlines()
    assert table[0].split() == ["id", "b-model"]
    assert table[3].split()[0] == "owned_by"
    assert json.loads(served("models", "get", "b-model", "--format", "json").stdout) == PAGE["data"][0]
    assert served("models", "get", "b-model", "--format", "jsonl").stdout.count("\n") == 1


def test_empty_list_says_so_on_stderr_only(served):
    served.obj["transport"] = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": []}))
    result = served("models", "list", "--format", "table")
    assert result.stdout == "" and "No items." in result.stderr
    assert served("models", "list", "--format", "table", "--quiet").stderr == ""
    assert json.loads(served("models", "list", "--format", "json").stdout) == []


def test_format_cell():
    assert output.format_cell("x", None) == ""
    assert output.format_cell("x", {"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert output.format_cell("x", "two\n  lines") == "two lines"
    long = output.format_cell("x", "y" * 100)
    assert len(long) == output.MAX_CELL and long.endswith("…")
    assert output.format_cell("created", True) == "True"
    assert output.format_cell("bytes", 1700000000) == "1700000000"  # only known timestamp keys are dates


def test_format_cell_timestamps_are_local_time(utc):
    assert output.format_cell("created_at", 1700000000) == "2023-11-14 22:13:20"
    assert output.format_cell("finished_at", None) == ""


def test_table_on_a_terminal_by_default_with_colour(fake):
    result = run_tty("models", "list", env={"TZ": "UTC"})
    assert result.returncode == 0
    assert "\x1b[1mid\x1b[0m" in result.output and "gpt-4o" in result.output
    assert "2024-05-10 18:50:49" in result.output


def test_no_color_on_a_terminal(fake):
    result = run_tty("models", "list", env={"NO_COLOR": "1"})
    assert result.returncode == 0 and "\x1b[" not in result.output
    assert result.output.split()[:3] == ["id", "owned_by", "created"]


def test_table_columns_line_up_with_wide_characters():
    import wcwidth
    rendered = output.table([{"content": "如果带了呢", "n": "1"}, {"content": "plain", "n": "2"}], ["content", "n"])
    lines = rendered.splitlines()
    widths = {wcwidth.wcswidth(line.rstrip()) for line in lines[2:]}
    assert len(widths) == 1, rendered  # every row ends in the same screen column


def test_answer_commands_check_a_default_format_too(fake, invoke, monkeypatch):
    """chat, complete and edit read the format through the output layer, so a bad OAICLI_FORMAT is the
    same one clear line there (before, they silently printed text) and nothing is sent."""
    monkeypatch.setenv("OAICLI_FORMAT", "xml")
    for args in (["chat", "hi"], ["complete", "hi"], ["edit", "--instruction", "fix", "--input", "x"]):
        result = invoke(*args)
        assert result.exit_code == 3 and result.stdout == "", args
        assert result.stderr.startswith("Error: Format 'xml' (env OAICLI_FORMAT) is not one of table, json, jsonl, yaml, text.")
    assert fake.calls("POST", "/v1/chat/completions") == [] and fake.calls("POST", "/v1/edits") == []
    monkeypatch.setenv("OAICLI_FORMAT", "json")
    assert json.loads(invoke("chat", "hi").stdout)["object"] == "chat.completion"
