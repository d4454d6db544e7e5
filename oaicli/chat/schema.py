"""Structured output checked locally: the subset of JSON Schema that OpenAI's structured outputs accept
(type, properties, required, additionalProperties, items, enum, const, anyOf, $ref into $defs), so an
answer that does not match `--schema FILE` is refused before it is printed.

Hand-written rather than a dependency: the subset is small (the API refuses schemas outside it) and
the jsonschema package would bring four more packages for it.
"""

import json
from pathlib import Path

from oaicli.core.errors import InputError

TYPES = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "object": dict,
         "array": list, "null": type(None)}


def load(path: str) -> dict:
    """The schema in FILE: a JSON object (a whole `{name, schema}` text.format entry is unwrapped)."""
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read the schema {path}: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise InputError(f"The schema {path} is not JSON: {exc}.") from exc
    if isinstance(schema, dict) and isinstance(schema.get("schema"), dict) and "type" not in schema:
        schema = {**schema["schema"], "title": schema["schema"].get("title") or schema.get("name")}
    if not isinstance(schema, dict) or not schema:
        raise InputError(f"The schema {path} is not a JSON Schema object.")
    unknown = next(_unknown_types(schema), None)
    if unknown is not None:  # it would match every answer here, and the API refuses it
        raise InputError(f"The schema {path} has type {unknown!r}; JSON Schema's types are {', '.join(TYPES)}.")
    return schema


def _unknown_types(node):
    """Every `type` name in the schema (at any depth) that JSON Schema does not define."""
    if isinstance(node, list):
        for item in node:
            yield from _unknown_types(item)
    elif isinstance(node, dict):
        kinds = node.get("type")
        for kind in [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else ():
            if kind not in TYPES:
                yield kind
        for key, value in node.items():
            if key not in ("enum", "const", "default", "examples"):  # values there are data, not schemas
                yield from _unknown_types(value)


def problems(value, schema: dict, root: dict | None = None, where: str = "$") -> list[str]:
    """Where `value` breaks `schema`, as `path: reason` lines (empty when it matches)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        return problems(value, _resolve(root, schema["$ref"]), root, where)
    if "anyOf" in schema:
        if any(not problems(value, option, root, where) for option in schema["anyOf"]):
            return []
        return [f"{where}: matches none of the anyOf choices"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: expected {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    kinds = schema.get("type")
    if kinds is not None and not any(_is(value, kind) for kind in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{where}: expected {kinds}, got {_kind_of(value)}"]
    if isinstance(value, dict):
        return _object_problems(value, schema, root, where)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [p for i, item in enumerate(value) for p in problems(item, schema["items"], root, f"{where}[{i}]")]
    return []


def _object_problems(value: dict, schema: dict, root: dict, where: str) -> list[str]:
    properties = schema.get("properties") or {}
    found = [f"{where}: {name!r} is missing" for name in schema.get("required") or () if name not in value]
    if schema.get("additionalProperties") is False:
        found += [f"{where}: {name!r} is not allowed" for name in value if name not in properties]
    for name, item in value.items():
        if name in properties:
            found += problems(item, properties[name], root, f"{where}.{name}")
    return found


def _is(value, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, TYPES.get(kind, object))


def _kind_of(value) -> str:
    order = ("string", "integer", "number", "boolean", "object", "array", "null")  # integer before number
    return next((name for name in order if _is(value, name)), type(value).__name__)


def _resolve(root: dict, ref: str) -> dict:
    if not ref.startswith("#/"):
        raise InputError(f"The schema's $ref {ref!r} is not local (#/...).")
    node = root
    for part in ref[2:].split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise InputError(f"The schema's $ref {ref!r} points at nothing.")
    return node
