"""Every operation of the shipped table runs as a command: its required inputs given, the Request is right."""

import pytest
from click.testing import CliRunner

from oaicli.api import operations
from oaicli.commands.generated.commands import GeneratedRoot, option_fields
from oaicli.core.errors import OaicliError

OPERATIONS = sorted(operations.operations(), key=lambda entry: entry[0])


def sample(described: dict, upload: str) -> str:
    """A value the field accepts, chosen from its type, enum and range."""
    kind = described["type"]
    if kind == "array":
        return sample(described["items"], upload)
    if kind in ("file", "files"):
        return upload
    if described.get("enum"):
        return str(described["enum"][0])
    if kind in ("integer", "number"):
        low = described.get("min", 1)
        return str(int(low) + 1 if described.get("min_open") else int(low))
    return {"boolean": "true", "json": "{}"}.get(kind, "x")


def required_options(op: dict, upload: str) -> list:
    args = []
    for _, described, flag in option_fields(op).values():
        if described.get("required"):
            args += [flag, sample(described, upload)]
    return args


def fill(template: str, values: list) -> str:
    parts = iter(values)
    return "/".join(next(parts) if s.startswith("{") else s for s in template.split("/"))


@pytest.mark.parametrize("words, op", OPERATIONS, ids=[" ".join(w) for w, _ in OPERATIONS])
def test_the_operation_runs_with_its_required_inputs(words, op, tmp_path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"\x00\x01")
    sent = []
    root = GeneratedRoot(sent.append, is_terminal=lambda: True, name="oaicli")
    path_values = [f"p{i}" for i in range(len(op["path_params"]))]
    args = [*words, *path_values, *required_options(op, str(upload))]
    if op["response"] == "binary":
        args += ["-o", str(tmp_path / "answer.bin")]
    if op["method"] == "DELETE":
        args.append("--yes")  # CliRunner's stdin is no terminal: a delete needs it there, as in a script
    result = CliRunner().invoke(root, args)
    assert result.exit_code == 0, result.output
    (request,) = sent
    assert (request.method, request.path) == (op["method"], fill(op["path"], path_values))
    assert request.admin == bool(op.get("admin")) and request.paginate == op.get("paginate")
    given = {f["name"] for f in (op.get("body") or {}).get("fields", []) if f.get("required")}
    sent_fields = set(request.json or {}) | {name for name, _ in request.form + request.files}
    assert given <= sent_fields


DELETES = [(words, op) for words, op in OPERATIONS if op["method"] == "DELETE"]


@pytest.mark.parametrize("words, op", DELETES[:3], ids=[" ".join(w) for w, _ in DELETES[:3]])
def test_a_generated_delete_in_a_script_needs_yes(words, op):
    sent = []
    root = GeneratedRoot(sent.append, is_terminal=lambda: False, name="oaicli")
    path_values = [f"p{i}" for i in range(len(op["path_params"]))]
    result = CliRunner().invoke(root, [*words, *path_values, *required_options(op, "unused")])
    assert isinstance(result.exception, OaicliError) and result.exception.exit_code == 2
    assert "Not done: stdin is not a terminal" in str(result.exception) and sent == []
