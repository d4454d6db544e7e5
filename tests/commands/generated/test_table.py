"""The shipped operations table: it is what the compiler makes of the spec in the repo, and it covers it all."""


import pytest

from oaicli.api import operations
from tests.commands.generated.compiler import compiler
from tests.conftest import REPO

SPEC = REPO / "openapi" / "openai-openapi-current-v1-patched.yaml"
SHIPPED = REPO / "oaicli" / "api" / "operations"


@pytest.fixture(scope="module")
def spec() -> dict:
    return compiler.load_spec(SPEC)


def test_the_shipped_table_is_what_the_compiler_makes_of_the_spec(spec, tmp_path):
    compiler.write_table(compiler.build(spec), tmp_path)
    made = {p.relative_to(tmp_path): p.read_bytes() for p in [*tmp_path.rglob("*.json"), tmp_path / "summaries.py"]}
    shipped = {p.relative_to(SHIPPED): p.read_bytes() for p in [*SHIPPED.rglob("*.json"), SHIPPED / "summaries.py"]}
    stale = sorted(str(name) for name in made.keys() | shipped.keys() if made.get(name) != shipped.get(name))
    assert not stale, f"stale operations table ({', '.join(stale)}): run `python openapi/compile.py`"


def test_every_operation_of_the_spec_is_in_the_table_and_the_hand_written_ones_are_marked(spec):
    in_spec = {(method.upper(), path.removeprefix("/v1"), op["operationId"])
               for path, item in spec["paths"].items() for method, op in item.items() if method in compiler.METHODS}
    in_table = [op for _, op in operations.operations()]
    covered = {(op["method"], op["path"] + _fixed(op), op["operation_id"]) for op in in_table}
    assert covered == in_spec and len(in_table) == len(in_spec)
    handwritten = {op["operation_id"] for op in in_table if op.get("handwritten")}
    assert handwritten == set(compiler.HANDWRITTEN)  # every hand-written mapping names an operation of the spec


def _fixed(op: dict) -> str:
    return "?" + "&".join(f"{k}={v}" for k, v in op["fixed_query"].items()) if op.get("fixed_query") else ""


@pytest.mark.parametrize("words, method, path", [
    (("vector-stores", "create"), "POST", "/vector_stores"),
    (("vector-stores", "files", "list"), "GET", "/vector_stores/{vector_store_id}/files"),
    (("batches", "get"), "GET", "/batches/{batch_id}"),
    (("batches", "cancel"), "POST", "/batches/{batch_id}/cancel"),
    (("conversations", "items", "list"), "GET", "/conversations/{conversation_id}/items"),
    (("containers", "files", "create"), "POST", "/containers/{container_id}/files"),
    (("admin", "usage", "completions"), "GET", "/organization/usage/completions"),
])
def test_the_issues_examples_are_commands_of_the_table(words, method, path):
    tree = operations.group(words[0])
    for word in words[1:-1]:
        tree = tree["groups"][word]
    op = tree["commands"][words[-1]]
    assert (op["method"], op["path"]) == (method, path)


def test_admin_operations_are_the_specs_admin_key_ones():
    admin = {op["path"] for words, op in operations.operations() if op.get("admin")}
    assert admin and all(p.startswith(("/organization/", "/projects/")) for p in admin)
    assert all(words[0] == "admin" for words, op in operations.operations() if op.get("admin"))


def test_find_matches_a_concrete_path_to_its_operation():
    words, op = operations.find("get", "/vector_stores/vs_1/files/file-2")
    assert words == ("vector-stores", "files", "get") and op["operation_id"] == "getVectorStoreFile"
    assert operations.find("POST", "/batches/b_1/cancel")[0] == ("batches", "cancel")
    assert operations.find("GET", "/my-server/own/path") is None


def test_the_index_holds_only_groups_and_summaries():
    index = operations.index()
    assert set(index) == {"groups"}
    for entry in index["groups"].values():
        assert entry["summary"] and set(entry) <= {"summary", "operations", "handwritten", "deprecated"}


def test_each_rename_settles_a_real_collision(spec, monkeypatch):
    for operation_id in list(compiler.RENAMES):
        with monkeypatch.context() as patch:
            patch.delitem(compiler.RENAMES, operation_id)
            with pytest.raises(compiler.CompileError, match=operation_id):
                compiler.build(spec)


@pytest.mark.parametrize("method, path, words", [
    ("GET", "/models/gpt-4o", ("models", "get")),
    ("GET", "/vector_stores/vs_1/files?limit=2", ("vector-stores", "files", "list")),
    ("GET", "/organization/costs", ("admin", "costs")),
    ("post", "/batches/b_1/cancel", ("batches", "cancel")),
])
def test_find_maps_a_concrete_path_to_its_operation(method, path, words):
    assert operations.find(method, path)[0] == words


def test_find_knows_nothing_of_other_paths_or_methods():
    assert operations.find("GET", "/not/an/api/path") is None
    assert operations.find("PUT", "/models") is None
