"""Generated commands and `oaicli api` against the loopback fake: sent, paged, streamed, downloaded and
rendered in every format; bad input is one line naming the field, exit 4, and nothing is sent."""

import json

import pytest
import yaml

from tests.conftest import TEST_KEY
from tests.fake.files import add_file

ADMIN_KEY = "sk-admin-loopback-0123456789abcdef"


@pytest.fixture
def stores(invoke, fake):
    """Three vector stores, made through the generated command."""
    ids = [json.loads(invoke("vector-stores", "create", "--name", f"docs{n}", "--format", "json").stdout)["id"]
           for n in range(3)]
    fake.requests.clear()
    return ids


def test_a_generated_create_sends_its_body_and_prints_the_object(invoke, fake):
    file_id = add_file(fake, b"hello", "a.txt", purpose="assistants")["id"]
    result = invoke("vector-stores", "create", "--name", "docs", "--file-ids", file_id, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert fake.calls("POST", "/v1/vector_stores")[0].json() == {"name": "docs", "file_ids": [file_id]}
    assert json.loads(result.stdout)["file_counts"]["total"] == 1


def test_all_with_max_items_pages_with_the_cursor_and_stops(invoke, fake, stores):
    result = invoke("vector-stores", "list", "--limit", "1", "--all", "--max-items", "2", "--format", "jsonl")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == stores[:2]
    assert [call.query.get("after") for call in fake.calls("GET", "/v1/vector_stores")] == [None, stores[0]]


def test_yaml_is_the_same_document_as_json(invoke, stores):
    as_json = json.loads(invoke("vector-stores", "get", stores[0], "--format", "json").stdout)
    assert yaml.safe_load(invoke("vector-stores", "get", stores[0], "--format", "yaml").stdout) == as_json


def test_jq_filters_and_raw_output_unquotes(invoke, stores):
    result = invoke("vector-stores", "list", "--all", "--jq", ".[].id", "-r")
    assert result.stdout.splitlines() == stores
    quoted = invoke("vector-stores", "list", "--all", "--jq", ".[0].name")
    assert quoted.stdout == '"docs0"\n'


def test_hand_written_commands_take_jq_and_yaml_too(invoke, fake):
    assert invoke("models", "list", "--jq", "map(.id) | sort | first", "-r").stdout == "ft:gpt-4o-mini:acme::abc123\n"
    assert {m["id"] for m in yaml.safe_load(invoke("models", "list", "--format", "yaml").stdout)} >= {"gpt-4o"}


def test_a_bad_jq_program_is_one_line_and_exit_4(invoke, stores):
    result = invoke("vector-stores", "list", "--jq", ".[")
    assert result.exit_code == 4 and result.stdout == ""
    assert result.stderr.startswith("Error: --jq:") and len(result.stderr.splitlines()) == 1


def test_a_list_table_leads_with_id_name_and_created_at(invoke, stores):
    header = invoke("vector-stores", "list", "--format", "table").stdout.splitlines()[0].split()
    assert header[:3] == ["id", "name", "created_at"] and "file_counts" not in header  # nested: json/yaml only


def test_server_sent_events_print_as_they_come(invoke, fake):
    result = invoke("api", "POST", "/chat/completions", "-f", "model=gpt-4o", "-F", "stream=true",
                    "-F", 'messages=[{"role": "user", "content": "hi"}]')
    assert result.exit_code == 0, result.stderr
    chunks = [json.loads(line) for line in result.stdout.splitlines()]
    assert chunks and all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)


def test_a_binary_answer_goes_to_the_output_file(invoke, fake, tmp_path):
    file_id = add_file(fake, b"\x00\x01binary", "blob.bin")["id"]
    target = tmp_path / "out.bin"
    result = invoke("api", "GET", f"/files/{file_id}/content", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == b"\x00\x01binary" and result.stdout == ""


def test_errors_are_json_on_stderr_with_format_json(invoke, fake):
    result = invoke("vector-stores", "get", "vs_missing", "--format", "json")
    assert result.exit_code == 4 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["status"] == 404 and error["exit_code"] == 4 and "vs_missing" in error["message"]


def test_admin_operations_use_the_admin_key(invoke, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    result = invoke("admin", "costs", "--start-time", "1700000000", "--limit", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (call,) = fake.calls("GET", "/v1/organization/costs")
    assert call.headers["authorization"] == f"Bearer {ADMIN_KEY}" and TEST_KEY not in str(call.headers)
    assert ADMIN_KEY not in result.stdout + result.stderr


def test_a_missing_admin_key_is_one_line_naming_it_exit_3_nothing_sent(invoke, fake):
    result = invoke("admin", "costs", "--start-time", "1700000000")
    assert result.exit_code == 3 and result.stdout == ""
    assert "OPENAI_ADMIN_KEY" in result.stderr and len(result.stderr.splitlines()) == 1
    assert fake.requests == []


def test_config_show_masks_the_admin_key_and_says_where_it_came_from(invoke, monkeypatch):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    rows = json.loads(invoke("config", "show", "--format", "json").stdout)
    assert rows["admin_key"]["source"] == "env OPENAI_ADMIN_KEY"
    assert rows["admin_key"]["value"] != ADMIN_KEY and rows["admin_key"]["value"].endswith(ADMIN_KEY[-4:])


def test_api_sends_an_unknown_path_as_it_is(invoke, fake):
    result = invoke("api", "GET", "/models?limit=2", "-H", "X-Trace: abc", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (call,) = fake.calls("GET", "/v1/models")
    assert call.query == {"limit": "2"} and call.headers["x-trace"] == "abc"
    assert json.loads(result.stdout)["object"] == "list"  # `api` prints the API's document as it is


def test_api_input_body_with_fields_over_it(invoke, fake, tmp_path):
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"name": "old", "metadata": {"team": "a"}}))
    result = invoke("api", "POST", "/vector_stores", "--input", body, "-f", "name=new")
    assert result.exit_code == 0, result.stderr
    assert fake.calls("POST", "/v1/vector_stores")[0].json() == {"name": "new", "metadata": {"team": "a"}}


@pytest.mark.parametrize("args, names", [
    (["api", "POST", "/batches", "-f", "input_file_id=f", "-f", "endpoint=/v1/nope", "-f", "completion_window=24h"],
     "field 'endpoint'"),
    (["api", "POST", "/batches", "-f", "endpoint=/v1/embeddings"], "field 'input_file_id'"),
    (["api", "POST", "/vector_stores", "-F", "chunking_strategy={oops"], "field 'chunking_strategy'"),
    (["api", "POST", "/vector_stores", "-F", "name=@/no/such/file"], "field 'name'"),
    (["api", "POST", "/vector_stores", "-f", "nmae=docs"], "'nmae'"),
    (["api", "GET", "/vector_stores", "-f", "limit=many"], "field 'limit'"),
    (["batches", "create", "--endpoint", "/v1/nope"], "--endpoint"),
    (["vector-stores", "list", "--limit", "lots"], "--limit"),
    (["vector-stores", "create", "--chunking-strategy", "@/no/such.json"], "--chunking-strategy"),
    (["batches", "create", "--endpoint", "/v1/embeddings", "--completion-window", "24h"], "--input-file-id"),
    (["vector-stores", "get", "\udcff"], "VECTOR_STORE_ID"),
    (["vector-stores", "create", "--name", "a\udcffb"], "--name"),
    (["api", "GET", "/models/\udcff"], "PATH"),
])
def test_bad_input_is_one_line_naming_the_field_exit_4_nothing_sent(invoke, fake, args, names):
    result = invoke(*args)
    assert result.exit_code == 4, result.stderr
    assert names in result.stderr and len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert fake.requests == []


def test_a_default_json_format_keeps_one_line_errors(invoke, fake, monkeypatch):
    monkeypatch.setenv("OAICLI_FORMAT", "json")
    result = invoke("vector-stores", "get", "vs_missing")
    assert result.exit_code == 4 and result.stderr.startswith("Error: ") and "HTTP 404" in result.stderr
