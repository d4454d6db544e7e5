"""Every generated operation against Prism serving the current spec: one call each with its required inputs
(realistic ones where the spec's schema refuses a placeholder); a 422 (Prism's "request does not validate")
fails. The test prints the counts: operations in the spec, operations reached, operations validated."""

import json

import httpx
import pytest

from oaicli.api import operations
from oaicli.commands.generated.commands import option_fields
from tests.commands.generated.test_every_operation import required_options
from tests.conftest import Invoker

OPERATIONS = sorted(operations.operations(), key=lambda entry: entry[0])

# Bodies for the operations whose required fields a placeholder ("x", "{}") does not satisfy: unions whose
# variants each require their own fields, formats (URLs, emails), nested required objects.
MESSAGE = {"role": "user", "content": "hi"}
SPEND_ALERT = ["--notification-channel", '{"type": "email", "recipients": ["ops@example.com"]}']
GRADER = '{"type": "string_check", "name": "g", "input": "a", "reference": "a", "operation": "eq"}'
MESSAGES = json.dumps([{"role": "user", "content": "hi"}])
REALISTIC = {
    "createChatCompletion": ["--messages", MESSAGES, "--model", "gpt-4o"],
    "createConversationItems": ["--items", json.dumps([{"type": "message", "role": "user", "content": "hi"}])],
    "create-project-spend-alert": SPEND_ALERT, "update-project-spend-alert": SPEND_ALERT,
    "create-organization-spend-alert": SPEND_ALERT, "update-organization-spend-alert": SPEND_ALERT,
    "CreateChatSessionMethod": ["--workflow", '{"id": "wf_1"}'],
    "createEval": ["--data-source-config", '{"type": "custom", "item_schema": {"type": "object"}}',
                   "--testing-criteria", f"[{GRADER}]"],
    "createEvalRun": ["--data-source", '{"type": "jsonl", "source": {"type": "file_id", "id": "file-1"}}'],
    "runGrader": ["--grader", GRADER],
    "validateGrader": ["--grader", GRADER],
    "createImageEdit": ["--images", '[{"image_url": "https://example.com/a.png"}]'],
    "create-realtime-session": ["--client-secret", '{"value": "ek_1", "expires_at": 1700000000}'],
    "create-realtime-translation-client-secret": ["--session", '{"model": "gpt-realtime-translate"}'],
    "submitToolOuputsToRun": ["--tool-outputs", '[{"tool_call_id": "call_1", "output": "42"}]'],
    "createVectorStoreFileBatch": ["--file-ids", "file-1"],
}


class Recording(httpx.HTTPTransport):
    """The real transport, noting each answer's status for the counts."""

    def __init__(self):
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request):
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


def arguments(words, op, tmp_path) -> list:
    upload = tmp_path / "upload.txt"
    upload.write_text("hello")
    if op.get("handwritten"):
        return via_api(op, upload, tmp_path)
    if words[:2] == ("chat", "completions"):
        words = ("chat-completions", *words[2:])
    args = [*words, *(f"id_{i}" for i in range(len(op["path_params"])))]
    args += inputs(op, upload)
    if op["response"] == "binary":
        args += ["-o", str(tmp_path / "answer.bin")]
    if op["method"] == "DELETE":
        args.append("--yes")  # stdin is no terminal here: a delete needs it, as in any script
    return [*args, "--format", "json", "--max-retries", "0"]


def inputs(op, upload) -> list:
    """Option and value pairs: the realistic ones where known, then placeholders for the other required fields."""
    extra = REALISTIC.get(op.get("operation_id"), [])
    required = required_options(op, str(upload))
    pairs = [(flag, value) for flag, value in zip(required[::2], required[1::2]) if flag not in extra[::2]]
    return [*extra, *(item for pair in pairs for item in pair)]


def via_api(op, upload, tmp_path) -> list:
    """An operation a hand-written command covers (tested in its own contract tests) is reached here through
    `oaicli api`, with its required fields as -F fields (a file field as @PATH)."""
    path = op["path"]
    for i, param in enumerate(op["path_params"]):
        path = path.replace("{" + param["name"] + "}", f"id_{i}")
    args = ["api", op["method"], path]
    options = dict(zip(*[iter(inputs(op, upload))] * 2))
    by_flag = {flag: described for _where, described, flag in option_fields(op).values()}
    for flag, value in options.items():
        described = by_flag[flag]
        value = "@" + value if described["type"] in ("file", "files") else value
        args += ["-F", f"{described['name']}={value}"]
    if op["response"] == "binary":
        args += ["-o", str(tmp_path / "answer.bin")]
    return [*args, "--format", "json", "--max-retries", "0"]


def test_every_generated_operation_validates_against_prism(prism_current, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_BASE_URL", prism_current.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-contract")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-contract")
    reached, validated, failures = 0, 0, []
    for words, op in OPERATIONS:
        transport = Recording()
        invoke = Invoker()
        invoke.obj["transport"] = transport
        result = invoke(*arguments(words, op, tmp_path))
        # Prism answers a valid binary request with `Transfer-Encoding: string` (the spec's placeholder), which
        # no HTTP client reads; an invalid one gets a readable 422 (tests/contract/test_audio.py shows both).
        unreadable = op["response"] == "binary" and "Transfer-Encoding" in result.stderr
        reached += bool(transport.statuses) or unreadable
        if (transport.statuses and 422 not in transport.statuses and result.exit_code == 0) or unreadable:
            validated += 1
        else:
            failures.append(f"{' '.join(words)}: exit {result.exit_code}: {result.stderr.strip()[:300]}")
    print(f"\noperations in the spec: {len(OPERATIONS)}, reached: {reached}, validated: {validated}")
    assert not failures, "\n".join(failures)
    assert reached == validated == len(OPERATIONS)


@pytest.mark.parametrize("args", [
    ["api", "GET", "/vector_stores", "--all", "--max-items", "3"],
    ["api", "POST", "/vector_stores", "-f", "name=docs"],
    ["api", "GET", "/organization/costs", "-F", "start_time=1700000000"],
])
def test_oaicli_api_requests_validate(prism_current, args):
    result = prism_current.run(*args, env={"OPENAI_ADMIN_KEY": "sk-admin-contract"})
    assert "HTTP 422" not in result.stderr and result.returncode == 0, result.stderr
    assert json.loads(result.stdout)
