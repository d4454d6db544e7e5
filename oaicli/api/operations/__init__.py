"""The operations table compiled from OpenAI's spec (openapi/compile.py): a small index, one file per group.

An operation is a dict: method, path (no /v1; `{name}` placeholders), operation_id, summary, tag, path_params,
query and headers (lists of fields), response ("json", "binary" or "sse"), and when they apply: body
({"content": ["json"|"multipart", ...], "required", "fields"}), fixed_query, stream (a `stream` field turns the
answer into SSE), paginate ("cursor", "cursor-id" or "page"), deprecated, admin (OPENAI_ADMIN_KEY) and
handwritten (the hand-written command that covers it). A field: name, type (string, integer, number, boolean,
array with items, json, any, file, files), and when given: enum, min/max (min_open/max_open), default, required,
help (the description's first sentence), style ("deep" for name[key] query objects), deprecated.
"""

import functools
import os
import re

HERE = os.path.dirname(__file__)


def index() -> dict:
    """{"groups": {name: {"summary", "operations", "handwritten"?, "deprecated"?}}}: all `oaicli --help` reads."""
    from oaicli.api.operations.summaries import INDEX
    return INDEX


@functools.cache
def group(name: str) -> dict:
    """A top-level group's tree: {"summary", "commands": {verb: operation}, "groups": {name: tree}}."""
    if name not in index()["groups"]:
        raise KeyError(name)
    return _read(os.path.join(HERE, "groups", f"{name}.json"))


def operations():
    """Every operation of the table, as (command words, operation); loads every group file."""
    for name in index()["groups"]:
        yield from _walk(group(name), (name,))


def find(method: str, path: str):
    """The operation whose method and path template match a concrete path (`oaicli api` validates with it),
    or None when the table does not know the path."""
    path = "/" + path.split("?")[0].strip("/")
    # Most groups are named after their path's first segment (/vector_stores: vector-stores); reading that
    # group's file first spares reading all of them (a quarter of a megabyte) for most paths.
    likely = path.strip("/").split("/")[0].replace("_", "-")
    names = sorted(index()["groups"], key=lambda name: name != likely)
    for name in names:
        for words, op in _walk(group(name), (name,)):
            if op["method"] == method.upper() and _template(op["path"]).fullmatch(path):
                return words, op
    return None


def _walk(tree: dict, words: tuple):
    for verb, op in tree.get("commands", {}).items():
        yield (*words, verb), op
    for name, sub in tree.get("groups", {}).items():
        yield from _walk(sub, (*words, name))


@functools.cache
def _template(path: str):
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)))


def _read(path: str) -> dict:
    import json  # only when a group's commands are built or a path looked up, not for `oaicli --help`
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)
