"""The generated commands: each invocation becomes the right Request, and bad input is one line, exit 4, unsent."""

import json

import pytest
from click.testing import CliRunner

from oaicli.api import operations
from oaicli.commands.generated.commands import GeneratedRoot


class Recorder:
    """Stands in for the execute seam: keeps each Request instead of sending it."""

    def __init__(self):
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)


@pytest.fixture
def sent():
    return Recorder()


def run(sent, *args, terminal=False, input=None, load_group=operations.group):
    root = GeneratedRoot(sent, is_terminal=lambda: terminal, load_group=load_group, name="oaicli")
    return CliRunner().invoke(root, list(args), input=input)


def only_request(sent, result):
    assert result.exit_code == 0, result.output
    (request,) = sent.requests
    return request


def test_a_json_body_from_typed_options(sent):
    result = run(sent, "vector-stores", "create", "--name", "docs", "--file-ids", "file-1", "--file-ids", "file-2",
                 "--chunking-strategy", '{"type": "auto"}')
    request = only_request(sent, result)
    assert (request.method, request.path) == ("POST", "/vector_stores")
    assert request.json == {"name": "docs", "file_ids": ["file-1", "file-2"], "chunking_strategy": {"type": "auto"}}
    assert not request.multipart and request.expects == "json" and not request.admin


def test_path_parameters_are_arguments_quoted_into_the_path(sent):
    request = only_request(sent, run(sent, "vector-stores", "files", "get", "vs_1", "a/b c"))
    assert (request.method, request.path) == ("GET", "/vector_stores/vs_1/files/a%2Fb%20c")
    assert request.json is None


def test_data_from_a_file_with_options_overriding_its_fields(sent, tmp_path):
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"name": "old", "metadata": {"team": "a"}}))
    request = only_request(sent, run(sent, "vector-stores", "create", "--data", f"@{body}", "--name", "new"))
    assert request.json == {"name": "new", "metadata": {"team": "a"}}


def test_data_from_stdin_satisfies_required_fields(sent):
    body = {"input_file_id": "file-1", "endpoint": "/v1/embeddings", "completion_window": "24h"}
    request = only_request(sent, run(sent, "batches", "create", "--data", "-", input=json.dumps(body)))
    assert request.json == body


def test_a_json_option_from_a_file(sent, tmp_path):
    strategy = tmp_path / "strategy.json"
    strategy.write_text('{"type": "static"}')
    request = only_request(sent, run(sent, "vector-stores", "create", "--chunking-strategy", f"@{strategy}"))
    assert request.json == {"chunking_strategy": {"type": "static"}}


def test_a_file_option_makes_the_body_multipart(sent, tmp_path):
    upload = tmp_path / "a.csv"
    upload.write_text("x,y\n")
    request = only_request(sent, run(sent, "containers", "files", "create", "cntr_1", "--file", str(upload)))
    assert request.path == "/containers/cntr_1/files"
    assert request.files == [("file", str(upload))] and request.json is None


def test_a_multipart_only_operation_sends_its_fields_as_form_entries(sent, tmp_path):
    recording = tmp_path / "consent.wav"
    recording.write_bytes(b"RIFF")
    request = only_request(sent, run(sent, "audio", "voice-consents", "create", "--name", "me",
                                     "--recording", str(recording), "--language", "en-US"))
    assert request.form == [("name", "me"), ("language", "en-US")]
    assert request.files == [("recording", str(recording))] and request.multipart and request.json is None


def test_several_files_repeat_the_field(sent, tmp_path):
    paths = [tmp_path / "SKILL.md", tmp_path / "tool.py"]
    for path in paths:
        path.write_text("x")
    request = only_request(sent, run(sent, "skills", "create", "--files", str(paths[0]), "--files", str(paths[1])))
    assert request.files == [("files", str(paths[0])), ("files", str(paths[1]))]


def test_without_a_file_the_same_operation_sends_json(sent):
    request = only_request(sent, run(sent, "containers", "files", "create", "cntr_1", "--file-id", "file-9"))
    assert request.json == {"file_id": "file-9"} and not request.files


def test_admin_query_lists_and_page_pagination(sent):
    request = only_request(sent, run(sent, "admin", "usage", "completions", "--start-time", "1700000000",
                                     "--group-by", "model", "--group-by", "project_id", "--batch", "true",
                                     "--all", "--max-items", "50"))
    assert request.path == "/organization/usage/completions" and request.admin
    assert request.query == {"start_time": "1700000000", "group_by": ["model", "project_id"], "batch": "true"}
    assert (request.paginate, request.fetch_all, request.max_items) == ("page", True, 50)


def test_max_items_alone_pages_until_that_many(sent):
    request = only_request(sent, run(sent, "batches", "list", "--max-items", "3"))
    assert (request.paginate, request.fetch_all, request.max_items) == ("cursor", True, 3)


def test_cursor_pagination_is_described(sent):
    request = only_request(sent, run(sent, "vector-stores", "files", "list", "vs_1", "--limit", "5"))
    assert request.query == {"limit": "5"}
    assert (request.paginate, request.fetch_all, request.max_items) == ("cursor", False, None)


def test_object_query_parameters_use_brackets(sent):
    request = only_request(sent, run(sent, "chat", "completions", "list", "--metadata", '{"team": "a"}'))
    assert request.query == {"metadata[team]": "a"}


def test_beta_operations_send_their_header_and_fixed_query(sent):
    request = only_request(sent, run(sent, "beta", "responses", "get", "resp_1", "--openai-beta",
                                     "responses_multi_agent=v1"))
    assert request.path == "/responses/resp_1"
    assert request.query == {"beta": "true"} and request.headers == {"openai-beta": "responses_multi_agent=v1"}


def test_stream_true_expects_server_sent_events(sent):
    request = only_request(sent, run(sent, "responses", "create", "--model", "gpt-5", "--input", "Hi",
                                     "--stream", "true"))
    assert request.json == {"model": "gpt-5", "input": "Hi", "stream": True} and request.expects == "sse"


def test_a_stream_query_parameter_expects_server_sent_events(sent):
    request = only_request(sent, run(sent, "responses", "get", "resp_1", "--stream", "true",
                                     "--starting-after", "7"))
    assert request.query == {"stream": "true", "starting_after": "7"} and request.expects == "sse"


def test_a_binary_answer_goes_to_the_output_file(sent, tmp_path):
    target = str(tmp_path / "f.bin")
    request = only_request(sent, run(sent, "containers", "files", "content", "c1", "f1", "-o", target,
                                     terminal=True))
    assert (request.expects, request.output) == ("binary", target)


def test_a_binary_answer_may_go_to_a_pipe(sent):
    request = only_request(sent, run(sent, "skills", "content", "skill_1", terminal=False))
    assert (request.expects, request.output) == ("binary", None)


def test_deprecated_operations_are_hidden_from_help_but_run(sent):
    listing = listed(run(sent, "--help").output)
    assert "assistants" not in listing and "vector-stores" in listing
    request = only_request(sent, run(sent, "assistants", "list"))
    assert request.path == "/assistants"


def listed(output: str) -> set:
    """The command names a --help lists."""
    lines = output.partition("Commands:")[2].splitlines()
    return {line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")}


def test_hand_written_operations_are_hidden_and_fully_hand_written_groups_not_listed(sent):
    root_listing = listed(run(sent, "--help").output)
    assert "models" not in root_listing and "files" not in root_listing and "batches" in root_listing
    assert listed(run(sent, "fine-tuning", "jobs", "--help").output) == set()
    assert listed(run(sent, "fine-tuning", "--help").output) == {"alpha", "checkpoints"}
    request = only_request(sent, run(sent, "fine-tuning", "jobs", "get", "ftjob-1"))
    assert request.path == "/fine_tuning/jobs/ftjob-1"


def test_help_reads_no_group_file_and_a_commands_help_only_its_group(sent):
    loaded = []

    def load_group(name):
        loaded.append(name)
        return operations.group(name)
    assert run(sent, "--help", load_group=load_group).exit_code == 0
    assert loaded == []
    result = run(sent, "vector-stores", "files", "list", "--help", load_group=load_group)
    assert "--after" in result.output and "Example:" in result.output
    assert set(loaded) == {"vector-stores"} and not sent.requests


def test_option_help_shows_the_specs_description_choices_and_requirement(sent):
    output = run(sent, "admin", "usage", "completions", "--help").output
    assert "Start time (Unix seconds) of the query time range, inclusive. [required]" in " ".join(output.split())
    assert "[1m|1h|1d]" in output and "OPENAI_ADMIN_KEY" in output


@pytest.mark.parametrize("args, option, says", [
    (["vector-stores", "list", "--order", "sideways"], "--order", "'sideways' is not one of 'asc', 'desc'"),
    (["admin", "usage", "completions"], "--start-time", "Missing"),
    (["batches", "create", "--endpoint", "/v1/embeddings", "--completion-window", "24h"], "--input-file-id",
     "Missing"),
    (["vector-stores", "create", "--chunking-strategy", "{type: auto}"], "--chunking-strategy", "not valid JSON"),
    (["vector-stores", "create", "--chunking-strategy", "@/no/such/strategy.json"], "--chunking-strategy",
     "no such file"),
    (["vector-stores", "create", "--data", "@/no/such/body.json"], "--data", "no such file"),
    (["vector-stores", "create", "--data", "[1, 2]"], "--data", "JSON object"),
    (["vector-stores", "create", "--data", "{"], "--data", "not valid JSON"),
    (["containers", "files", "create", "c1", "--file", "/no/such/a.csv"], "--file", "no such file"),
    (["vector-stores", "list", "--limit", "ten"], "--limit", "not a valid integer"),
    (["vector-stores", "search", "vs_1", "--query", "q", "--max-num-results", "51"], "--max-num-results",
     "range"),
    (["responses", "create", "--temperature", "hot"], "--temperature", "not a valid float"),
    (["responses", "create", "--store", "maybe"], "--store", "not a valid boolean"),
    (["vector-stores", "files", "list", "vs_1", "--all", "--max-items", "0"], "--max-items", "range"),
])
def test_bad_input_is_one_line_naming_the_option_exit_4_and_nothing_sent(sent, args, option, says):
    result = run(sent, *args)
    assert result.exit_code == 4, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and says in lines[0], result.output
    assert sent.requests == []


def test_a_binary_answer_is_refused_on_a_terminal_without_output(sent):
    result = run(sent, "containers", "files", "content", "c1", "f1", terminal=True)
    assert result.exit_code == 4 and "-o FILE" in result.output and "--output" in result.output
    assert sent.requests == []


def test_a_field_named_like_a_common_option_gets_a_body_prefix(sent, tmp_path):
    part = tmp_path / "part.bin"
    part.write_bytes(b"\x00" * 4)
    request = only_request(sent, run(sent, "uploads", "parts", "upload_1", "--body-data", str(part)))
    assert request.files == [("data", str(part))] and request.path == "/uploads/upload_1/parts"


def test_a_directory_is_not_a_file_to_upload(sent, tmp_path):
    result = run(sent, "containers", "files", "create", "c1", "--file", str(tmp_path))
    assert result.exit_code == 4 and "not a regular file" in result.output and sent.requests == []
