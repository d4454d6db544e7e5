"""The local structured-output check: the JSON Schema subset OpenAI's structured outputs accept."""

import json

import pytest

from oaicli.chat import schema
from oaicli.core.errors import InputError

PERSON = {
    "type": "object", "additionalProperties": False, "required": ["name", "age", "pets", "role"],
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"$ref": "#/$defs/pet"}},
        "role": {"enum": ["admin", "user"]},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "$defs": {"pet": {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]}},
}


def test_a_matching_value_has_no_problems():
    value = {"name": "Ada", "age": 36, "pets": [{"kind": "cat"}], "role": "admin", "nickname": None}
    assert schema.problems(value, PERSON) == []


@pytest.mark.parametrize("change, expected", [
    ({"age": 36.5}, "$.age: expected integer, got number"),
    ({"age": True}, "$.age: expected integer, got boolean"),
    ({"pets": [{"kind": "dog"}]}, "$.pets[0].kind: expected 'cat'"),
    ({"role": "root"}, "$.role: 'root' is not one of ['admin', 'user']"),
    ({"nickname": 3}, "$.nickname: matches none of the anyOf choices"),
    ({"extra": 1}, "$: 'extra' is not allowed"),
])
def test_each_way_a_value_breaks_the_schema_is_named_with_its_path(change, expected):
    value = {"name": "Ada", "age": 36, "pets": [], "role": "user", **change}
    assert expected in schema.problems(value, PERSON)


def test_a_missing_required_field_is_named():
    assert schema.problems({"name": "Ada"}, PERSON)[:1] == ["$: 'age' is missing"]


def test_load_unwraps_a_text_format_entry_and_refuses_non_schemas(tmp_path):
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"name": "person", "schema": {"type": "object"}}))
    assert schema.load(str(wrapped)) == {"type": "object", "title": "person"}
    for text in ("[1]", "{}", "not json"):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(InputError):
            schema.load(str(bad))
