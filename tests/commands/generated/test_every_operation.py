"""Every operation of the shipped table runs as a command: its required inputs given, the Request is right."""

import pytest
from click.testing import CliRunner

from oaicli.api import operations
from oaicli.commands.generated.commands import GeneratedRoot, option_fields

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
    result = CliRunner().invoke(root, args)
    assert result.exit_code == 0, result.output
    (request,) = sent
    assert (request.method, request.path) == (op["method"], fill(op["path"], path_values))
    assert request.admin == bool(op.get("admin")) and request.paginate == op.get("paginate")
    given = {f["name"] for f in (op.get("body") or {}).get("fields", []) if f.get("required")}
    sent_fields = set(request.json or {}) | {name for name, _ in request.form + request.files}
    assert given <= sent_fields
