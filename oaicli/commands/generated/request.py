"""The request a generated command produces: a plain description, sent by whoever `execute` is wired to."""

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """Everything needed to send one API call and handle its answer; built without any I/O."""

    operation_id: str
    method: str
    path: str                      # relative to the base URL, path parameters filled in and quoted
    query: dict = field(default_factory=dict)     # name -> str, or list of str for a repeated parameter
    headers: dict = field(default_factory=dict)
    json: dict | None = None       # the JSON body, when the body is JSON
    form: list = field(default_factory=list)      # multipart: (name, str value) pairs
    files: list = field(default_factory=list)     # multipart: (name, local path) pairs, to be streamed
    expects: str = "json"          # what a success answers: "json", "binary" or "sse"
    paginate: str | None = None    # "cursor" (has_more + last_id), "cursor-id" (last item's id), "page", None
    fetch_all: bool = False        # --all: follow the pagination to the end
    max_items: int | None = None   # --max-items: stop after this many items (with --all)
    output: str | None = None      # -o FILE for a binary answer; None means stdout (refused on a terminal)
    admin: bool = False            # sent with OPENAI_ADMIN_KEY instead of the project key

    @property
    def multipart(self) -> bool:
        return bool(self.files or self.form)


def assemble(op: dict, path_values: list, values: dict, data: dict | None, *, fetch_all=False, max_items=None,
             output=None) -> Request:
    """The Request for operation `op` (a table entry). `values` maps ("query"|"header"|"body", field name) to
    the parsed option values given (absent ones are left out); `data` is the --data body, which options
    override field by field. Required fields are checked by the caller, which knows the option names."""
    body = {**(data or {}), **{name: v for (where, name), v in values.items() if where == "body"}}
    query = {**(op.get("fixed_query") or {})}
    for (where, name), value in values.items():
        if where == "query":
            query.update(_query_entries(name, value))
    headers = {name: _header_value(v) for (where, name), v in values.items() if where == "header"}
    form, files, json_body = _body_parts(op, body)
    return Request(
        operation_id=op.get("operation_id") or "", method=op["method"], path=fill_path(op["path"], path_values),
        query=query, headers=headers, json=json_body, form=form, files=files,
        expects=_expects(op, body, query), paginate=op.get("paginate"), fetch_all=fetch_all,
        max_items=max_items, output=output, admin=bool(op.get("admin")))


def fill_path(template: str, values: list) -> str:
    from urllib.parse import quote  # only when a command runs, not for --help

    parts = iter(values)
    return "/".join(quote(str(next(parts)), safe="") if s.startswith("{") else s for s in template.split("/"))


def _query_entries(name: str, value) -> dict:
    """A query value as the API reads it: objects as name[key] (the spec's deepObject), lists repeated,
    booleans as true/false."""
    if isinstance(value, dict):
        return {f"{name}[{key}]": _scalar_text(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return {name: [_scalar_text(v) for v in value]}
    return {name: _scalar_text(value)}


def _scalar_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _header_value(value) -> str:
    return ",".join(map(_scalar_text, value)) if isinstance(value, (list, tuple)) else _scalar_text(value)


def _body_parts(op: dict, body: dict) -> tuple[list, list, dict | None]:
    """(form, files, json): multipart when the operation takes only multipart or a file was given, else JSON."""
    spec = op.get("body")
    if not spec:
        return [], [], None
    kinds = {f["name"]: f["type"] for f in spec["fields"]}
    gave_file = any(kinds.get(name) in ("file", "files") for name in body)
    if "multipart" not in spec["content"] or ("json" in spec["content"] and not gave_file):
        return [], [], body if (body or spec.get("required")) else None
    # Several values repeat the field under its own name, as the spec (and so Prism) reads multipart arrays.
    form, files = [], []
    for name, value in body.items():
        if kinds.get(name) == "file":
            files.append((name, value))
        elif kinds.get(name) == "files":
            files.extend((name, path) for path in value)
        elif isinstance(value, (list, tuple)) and kinds.get(name) == "array":
            form.extend((name, _scalar_text(v)) for v in value)
        else:
            form.append((name, _scalar_text(value)))
    return form, files, None


def _expects(op: dict, body: dict, query: dict) -> str:
    """SSE when asked for with `stream`: a body field the spec answers with text/event-stream, or a `stream`
    query parameter (GET /responses/{id}?stream=true, which the spec documents only in words)."""
    if op.get("stream") and body.get("stream") is True:
        return "sse"
    if query.get("stream") == "true" and any(q["name"] == "stream" for q in op["query"]):
        return "sse"
    return op.get("response", "json")
