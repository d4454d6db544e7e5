"""The Request of `oaicli api`: gh-style fields checked against the operations table when it knows the path,
taken as they are when it does not. Bad input is one line naming the field, exit 4, and nothing is sent."""

import dataclasses
import json
from urllib.parse import parse_qsl

from oaicli.api import operations
from oaicli.commands.generated.errors import BadInput, MissingInput, check_text
from oaicli.commands.generated.params import json_object, option_type, read_source
from oaicli.commands.generated.request import Request, assemble

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def build(words, raw_fields, typed_fields, input_path, headers, *, output=None, fetch_all=False, max_items=None,
          is_terminal=lambda: False, stdin=None) -> Request:
    for values, hint in ((words, "'[METHOD] PATH'"), (raw_fields, "'-f'"), (typed_fields, "'-F'"), (headers, "'-H'")):
        check_text(values, hint)
    fields = [(*_pair(text, "-f"), False) for text in raw_fields] + [(*_pair(t, "-F"), True) for t in typed_fields]
    body = _input_body(input_path, stdin)
    method, path = _method_and_path(words, bool(fields) or body is not None)
    path, _, query_text = path.partition("?")
    path = "/" + path.strip("/")
    extra_headers = dict(_header(text) for text in headers)
    found = operations.find(method, path)
    fetch_all = fetch_all or max_items is not None
    if found is None:
        request = _as_is(method, path, fields, body, fetch_all, max_items, output)
    else:
        request = _checked(found[1], path, fields, body, fetch_all, max_items, output, is_terminal)
    query = {**dict(parse_qsl(query_text)), **request.query}
    return dataclasses.replace(request, query=query, headers={**request.headers, **extra_headers})


def _pair(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise BadInput(f"{text!r} is not KEY=VALUE", param_hint=f"'{option}'")
    return name, value


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise BadInput(f"{text!r} is not NAME:VALUE", param_hint="'-H'")
    return name.strip(), value.strip()


def _input_body(input_path, stdin):
    if input_path is None:
        return None
    return json_object(lambda: stdin.read() if input_path == "-" else read_source("@" + input_path, None, None),
                       "'--input'")


def _method_and_path(words, has_body: bool) -> tuple[str, str]:
    if len(words) == 1:
        return ("POST" if has_body else "GET"), words[0]
    if len(words) == 2 and words[0].upper() in METHODS:
        return words[0].upper(), words[1]
    raise BadInput(f"expected [METHOD] PATH, got {' '.join(words)!r} (METHOD is one of {', '.join(METHODS)})",
                   param_hint="'[METHOD] PATH'")


def _as_is(method, path, fields, body, fetch_all, max_items, output) -> Request:
    """A path the table does not know: -F values typed as gh types them, fields in the query for GET and
    DELETE, else in the JSON body."""
    values = {name: (_typed(value, name) if typed else value) for name, value, typed in fields}
    in_query = method in ("GET", "DELETE")
    query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()} if in_query else {}
    json_body = {**(body or {}), **({} if in_query else values)} or None
    expects = "sse" if isinstance(json_body, dict) and json_body.get("stream") is True else "json"
    return Request(operation_id="", method=method, path=path, query=query, json=json_body, expects=expects,
                   paginate="cursor" if fetch_all else None, fetch_all=fetch_all, max_items=max_items,
                   output=output)


def _typed(value: str, name: str):
    """gh's -F: true, false, null and numbers (and JSON) as JSON; @FILE the file's text; anything else a string."""
    if value.startswith("@"):
        try:
            return read_source(value, None, None)
        except BadInput as exc:
            raise BadInput(exc.message, param_hint=f"field {name!r}") from None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _checked(op, path, fields, body, fetch_all, max_items, output, is_terminal) -> Request:
    described = {("query", f["name"]): f for f in op["query"]}
    described |= {("body", f["name"]): f for f in (op.get("body") or {}).get("fields", [])}
    by_name = {name: (where, field) for (where, name), field in described.items()}
    values = {}
    for name, value, typed in fields:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise BadInput(f"{op['method']} {op['path']} has no field {name!r} (its fields: {known})",
                           param_hint="'-f/-F'")
        where, field = by_name[name]
        converted, multiple = _convert(field, value, typed, name)
        if multiple:
            values.setdefault((where, name), []).append(converted)
        else:
            values[(where, name)] = converted
    for (where, name), field in described.items():
        if field.get("required") and (where, name) not in values and not (body and name in body):
            raise MissingInput("", param_hint=f"field {name!r}")
    if op["response"] == "binary" and not output and is_terminal():
        raise BadInput("the answer is binary: give -o FILE (or redirect stdout)", param_hint="'-o' / '--output'")
    if fetch_all and not op.get("paginate"):
        raise BadInput(f"{op['method']} {op['path']} is not a paged list", param_hint="'--all'")
    return assemble(op, _path_values(op["path"], path), values, body, fetch_all=fetch_all, max_items=max_items,
                    output=output)


def _convert(field: dict, value: str, typed: bool, name: str):
    """The value as the matching generated option would parse it; a file field takes @PATH (or PATH)."""
    param_type, multiple = option_type(field)
    try:
        if field["type"] in ("file", "files"):
            value = value.removeprefix("@")
        elif typed and value.startswith("@") and field["type"] not in ("json", "any"):
            value = read_source(value, None, None)
        return param_type.convert(value, None, None), multiple
    except BadInput as exc:
        raise BadInput(exc.message, param_hint=f"field {name!r}") from None


def _path_values(template: str, path: str) -> list:
    """The concrete path's values for the template's {placeholders}, unquoted (assemble quotes them again)."""
    from urllib.parse import unquote
    return [unquote(part) for part, slot in zip(path.strip("/").split("/"), template.strip("/").split("/"))
            if slot.startswith("{")]
