"""Compile OpenAI's OpenAPI spec into the compact operations table the generated commands are built from.

Run `python openapi/compile.py [SPEC] [OUT_DIR]` from the repo root. It writes OUT_DIR/summaries.py (groups and
their one-line summaries: all `oaicli --help` reads) and OUT_DIR/groups/<group>.json (a group's commands).

How names are made (deterministic; a collision stops the compiler):
- the static segments of the path are the group path, kebab-case (`/vector_stores/{id}/files` -> vector-stores
  files); operations that need the admin key (the spec's `AdminApiKeyAuth`) live under `admin`, without the
  `organization` segment; a path the spec tells apart with `?beta=true` lives under `beta`;
- the verb: on an item (`.../{id}`) GET get, POST update, DELETE delete (or `cancel` when the operationId says
  so); on a collection (it has items, an `after` cursor, is top-level, or the POST is a `create...`) GET list,
  POST create; on a singleton with several methods GET get, POST update, DELETE delete; any other last segment
  is the API's own verb (`batches cancel ID`, `vector-stores search ID`, `admin usage completions`);
- RENAMES settles the collisions that rule leaves, by operationId.

Request bodies: $ref and allOf are merged; for oneOf/anyOf the options offer the union of the variants'
top-level fields (required only when every variant requires it), and the whole body can still be given as
JSON with --data. A field's type is a scalar (string, integer, number, boolean, with enum and range), `file` /
`files` (multipart binary), `json` (an object or array, given as JSON text or @file), or `any` (a union with a
string: JSON when it starts with `{`, `[` or `@`, else the string itself).
"""

import json
import pprint
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "openapi" / "openai-openapi-current-v1-patched.yaml"
DEFAULT_OUT = ROOT / "oaicli" / "api" / "operations"
METHODS = ("get", "post", "put", "patch", "delete")

# Collisions the path rule leaves, settled by operationId: command words (group path + verb).
RENAMES = {
    "createThreadAndRun": ("threads", "create-and-run"),
}

# Operations a hand-written command already covers (operationId -> that command), kept in the table so that
# `oaicli api` validates against them; the runtime hides them.
HANDWRITTEN = {
    "listModels": "models list", "retrieveModel": "models get", "deleteModel": "models delete",
    "createChatCompletion": "chat", "createCompletion": "complete", "createEmbedding": "embed",
    "createModeration": "moderate",
    "createImage": "image create", "createImageEdit": "image edit", "createImageVariation": "image variation",
    "createSpeech": "audio speak", "createTranscription": "audio transcribe", "createTranslation": "audio translate",
    "listFiles": "files list", "createFile": "files upload", "retrieveFile": "files get",
    "deleteFile": "files delete", "downloadFile": "files content",
    "createUpload": "files upload", "addUploadPart": "files upload", "completeUpload": "files upload",
    "cancelUpload": "files upload",
    "createFineTuningJob": "fine-tunes create", "listPaginatedFineTuningJobs": "fine-tunes list",
    "retrieveFineTuningJob": "fine-tunes get", "cancelFineTuningJob": "fine-tunes cancel",
    "pauseFineTuningJob": "fine-tunes pause", "resumeFineTuningJob": "fine-tunes resume",
    "listFineTuningEvents": "fine-tunes events", "listFineTuningJobCheckpoints": "fine-tunes checkpoints",
}

# Groups the spec's tags do not describe well: they are made by the naming rule, not by a tag.
GROUP_SUMMARIES = {
    "admin": "Organization administration: projects, users, keys, usage, costs (uses OPENAI_ADMIN_KEY).",
    "beta": "Beta variants of the Responses API (sent with the openai-beta header).",
}

# An item POST is an update, unless its operationId starts with one of these (POST /evals/{id}/runs/{run_id}).
ITEM_ACTIONS = ("cancel",)
BINARY_TYPES = ("application/octet-stream", "application/zip", "application/sdp")


class CompileError(Exception):
    """The spec cannot be turned into a collision-free table; the message says which operations and why."""


class Schemas:
    """Resolves $ref against the spec's components, guarding against recursive schemas."""

    def __init__(self, spec: dict):
        self.components = spec.get("components", {})

    def deref(self, schema, seen=()):
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                return {}
            seen = (*seen, ref)
            _, section, name = ref.lstrip("#/").split("/", 2)
            base = self.components[section][name]
            extra = {k: v for k, v in schema.items() if k != "$ref"}  # OpenAPI 3.1 siblings of $ref
            schema = {**base, **extra} if extra else base
        return schema if isinstance(schema, dict) else {}

    def object_fields(self, schema) -> tuple[dict, set]:
        """The top-level properties and required names of a body schema (allOf merged, oneOf/anyOf unioned)."""
        schema = self.deref(schema)
        properties = dict(schema.get("properties") or {})
        required = set(schema.get("required") or [])
        for part in schema.get("allOf") or []:
            part_props, part_required = self.object_fields(part)
            properties.update(part_props)
            required |= part_required
        variants = [self.object_fields(v) for v in (schema.get("oneOf") or schema.get("anyOf") or [])]
        variants = [v for v in variants if v[0]]
        if variants:
            for variant_props, _ in variants:
                for name, prop in variant_props.items():
                    properties.setdefault(name, prop)
            required |= set.intersection(*(v[1] for v in variants))
        return properties, required


def first_sentence(text) -> str:
    """The description's first sentence, markdown links reduced to their text, on one line."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", str(text or "")).strip()
    text = text.split("\n\n")[0].replace("\n", " ")
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z`(]|- )", text)
    sentence = text[:match.start()] if match else text
    return sentence[:197] + "..." if len(sentence) > 200 else sentence


def kebab(word: str) -> str:
    return word.replace("_", "-").lower()


def scalar_type(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: ["string", "null"]
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if "const" in schema and kind is None:
        kind = "string" if isinstance(schema["const"], str) else None
    return kind


def describe_type(schemas: Schemas, schema, depth=0) -> dict:
    """A field's type for the command line: kind, enum, range and default (see the module's docstring)."""
    schema = schemas.deref(schema)
    variants = schema.get("oneOf") or schema.get("anyOf")
    if variants and depth < 4:
        return _union_type(schemas, [schemas.deref(v) for v in variants], depth)
    if schema.get("allOf") and not schema.get("type") and depth < 4:
        merged = {}
        for part in schema["allOf"]:
            merged.update(describe_type(schemas, part, depth + 1))
        return merged
    kind = scalar_type(schema)
    if kind == "string" and schema.get("format") == "binary":
        return {"type": "file"}
    if kind == "array":
        items = describe_type(schemas, schema.get("items"), depth + 1)
        if items["type"] in ("file", "files"):
            return {"type": "files"}
        if items["type"] in ("string", "integer", "number", "boolean"):
            return {"type": "array", "items": items}
        return {"type": "json"}
    if kind in ("string", "integer", "number", "boolean"):
        return _scalar(schema, kind)
    return {"type": "json"}


def _scalar(schema: dict, kind: str) -> dict:
    described = {"type": kind}
    enum = schema.get("enum") or ([schema["const"]] if "const" in schema else None)
    if enum:
        described["enum"] = [v for v in enum if v is not None]
    for key, short in (("minimum", "min"), ("maximum", "max")):
        if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
            described[short] = schema[key]
    for key, short in (("exclusiveMinimum", "min"), ("exclusiveMaximum", "max")):
        if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
            described[short] = schema[key]
            described[short + "_open"] = True
    if isinstance(schema.get("default"), (str, int, float, bool)):
        described["default"] = schema["default"]
    return described


def _union_type(schemas: Schemas, variants: list, depth: int) -> dict:
    variants = [v for v in variants if scalar_type(v) != "null"]
    described = [describe_type(schemas, v, depth + 1) for v in variants]
    kinds = {d.get("type") for d in described}
    if not described:
        return {"type": "json"}
    if "file" in kinds or "files" in kinds:
        return {"type": "files" if "files" in kinds else "file"}
    if len(kinds) == 1 and kinds <= {"string", "integer", "number", "boolean"}:
        merged = dict(described[0])
        # An open string among the variants ("gpt-4o" or any model id) means no fixed choice.
        if all("enum" in d for d in described):
            merged["enum"] = list(dict.fromkeys(v for d in described for v in d["enum"]))
        else:
            merged.pop("enum", None)
        return merged
    return {"type": "any" if "string" in kinds else "json"}


def field(schemas: Schemas, name: str, schema, required: bool, description=None) -> dict:
    resolved = schemas.deref(schema)
    described = {"name": name, **describe_type(schemas, schema)}
    if required:
        described["required"] = True
    help_text = first_sentence(description or (schema or {}).get("description") or resolved.get("description"))
    if help_text:
        described["help"] = help_text
    if resolved.get("deprecated") or (isinstance(schema, dict) and schema.get("deprecated")):
        described["deprecated"] = True
    return described


def parameters(schemas: Schemas, op: dict, path_item: dict) -> dict:
    """Path, query and header parameters of an operation, each a field."""
    found = {"path": [], "query": [], "header": []}
    for raw in (path_item.get("parameters") or []) + (op.get("parameters") or []):
        param = schemas.deref(raw)
        where = param.get("in")
        if where not in found:
            continue
        described = field(schemas, param["name"], param.get("schema"), bool(param.get("required")),
                          param.get("description"))
        if where == "query" and param.get("style") == "deepObject":
            described["style"] = "deep"
        found[where].append(described)
    return found


def request_body(schemas: Schemas, op: dict) -> dict | None:
    body = schemas.deref(op.get("requestBody"))
    content = body.get("content") or {}
    kinds, fields, required_all = [], {}, None
    for media_type, kind in (("application/json", "json"), ("multipart/form-data", "multipart")):
        if media_type not in content:
            continue
        kinds.append(kind)
        properties, required = schemas.object_fields(content[media_type].get("schema"))
        required_all = required if required_all is None else required_all & required
        for name, prop in properties.items():
            described = field(schemas, name, prop, False)
            # A field that is a file in the multipart variant stays a file whatever the JSON variant says.
            if name not in fields or described["type"] in ("file", "files"):
                fields[name] = described
    if not kinds:
        return None
    for name in required_all or ():
        if name in fields:
            fields[name]["required"] = True
    return {"content": kinds, "required": bool(body.get("required")), "fields": list(fields.values())}


def response_kind(op: dict, path: str) -> tuple[str, bool]:
    """What a success answers: json, binary or sse; and whether `stream` turns a JSON answer into SSE."""
    types, schemas = [], []
    for status, response in (op.get("responses") or {}).items():
        if str(status).startswith("2"):
            for media_type, body in (response.get("content") or {}).items():
                types.append(media_type)
                schemas.append((media_type, (body or {}).get("schema") or {}))
    can_stream = "text/event-stream" in types
    others = [t for t in types if t != "text/event-stream"]
    if any(t in BINARY_TYPES or t.split("/")[0] in ("audio", "video", "image") for t in others):
        return "binary", can_stream
    # File contents: the spec declares a JSON string, or nothing at all, for what is really the file's bytes.
    if path.endswith("/content") and all(t != "application/json" or s.get("type") == "string"
                                          for t, s in schemas):
        return "binary", False
    if can_stream and not others:
        return "sse", False
    return "json", can_stream


def pagination(schemas: Schemas, op: dict, query: list) -> str | None:
    """cursor (`after` + `has_more` + `last_id`), cursor-id (`after` + `has_more`: the last item's id), page
    (`page` + `next_page`), or None."""
    names = {q["name"] for q in query}
    response = ((op.get("responses") or {}).get("200") or {}).get("content", {}).get("application/json", {})
    properties, _ = schemas.object_fields(response.get("schema"))
    if "after" in names and "has_more" in properties:
        return "cursor" if "last_id" in properties else "cursor-id"
    if "page" in names and "next_page" in properties:
        return "page"
    return None


def segments(path: str) -> list[str]:
    return [s for s in path.split("?")[0].strip("/").split("/") if s]


def is_param(segment: str) -> bool:
    return segment.startswith("{")


def command_words(path: str, method: str, op: dict, spec_paths: dict, admin: bool) -> tuple:
    """(group words..., verb) for an operation, by the rule in the module's docstring."""
    if op.get("operationId") in RENAMES:
        words = RENAMES[op["operationId"]]
    else:
        words = _derived_words(path, method, op, spec_paths)
    if admin:
        words = ("admin", *(words[1:] if words[0] == "organization" else words))
    if "?beta=true" in path:
        words = ("beta", *words)
    return tuple(kebab(w) for w in words)


def _derived_words(path: str, method: str, op: dict, spec_paths: dict) -> tuple:
    parts = segments(path)
    statics = [s for s in parts if not is_param(s)]
    base = path.split("?")[0]
    operation_id = (op.get("operationId") or "").lower()
    if is_param(parts[-1]):
        verb = {"get": "get", "delete": "delete"}.get(method, "update")
        if method == "post" and operation_id.startswith(ITEM_ACTIONS):
            verb = next(a for a in ITEM_ACTIONS if operation_id.startswith(a))
        return (*statics, verb)
    has_items = any(p.split("?")[0].startswith(base + "/{") for p in spec_paths)
    has_cursor = any(p.get("name") == "after" for p in op.get("parameters") or [])
    creates = method == "post" and operation_id.startswith("create")
    if has_items or has_cursor or len(statics) == 1 or creates:
        return (*statics, {"get": "list", "post": "create"}.get(method, method))
    if spec_paths[path] > 1:  # several methods on one path without items: a singleton (data_retention)
        return (*statics, {"get": "get", "delete": "delete"}.get(method, "update"))
    return tuple(statics)


def compile_spec(spec: dict) -> dict:
    """The table: {"groups": {name: tree}} where a tree is {"summary", "commands": {verb: op}, "groups": {...}}."""
    schemas = Schemas(spec)
    paths = spec.get("paths") or {}
    # path (without /v1) -> how many methods it has
    spec_paths = {_strip_v1(p): sum(1 for m in item if m in METHODS) for p, item in paths.items()}
    tags = {t.get("name"): first_sentence(t.get("description")) for t in spec.get("tags") or []}
    root = {"groups": {}}
    owners: dict = {}
    for raw_path, item in paths.items():
        for method in METHODS:
            if method in item:
                _add(root, owners, schemas, spec_paths, _strip_v1(raw_path), method, item[method], item)
    for name, tree in root["groups"].items():
        tree["summary"] = _group_summary(name, tree, tags)
        _summarise_subgroups(tree)
    return root


def _strip_v1(path: str) -> str:
    return path[3:] if path.startswith("/v1/") else path


def _add(root, owners, schemas, spec_paths, path, method, op, path_item) -> None:
    admin = any("AdminApiKeyAuth" in s for s in op.get("security") or [])
    words = command_words(path, method, op, spec_paths, admin)
    where = " ".join(words)
    label = f"{method.upper()} {path} ({op.get('operationId')})"
    if where in owners:
        raise CompileError(f"command `{where}` would run both {owners[where]} and {label}; "
                           "add one of them to RENAMES in openapi/compile.py")
    owners[where] = label
    tree = root
    for word in words[:-1]:
        tree = tree["groups"].setdefault(word, {"summary": "", "commands": {}, "groups": {}})
    tree.setdefault("commands", {})[words[-1]] = operation(schemas, path, method, op, path_item, admin)


def operation(schemas, path, method, op, path_item, admin) -> dict:
    params = parameters(schemas, op, path_item)
    base, _, fixed = path.partition("?")
    kind, can_stream = response_kind(op, base)
    described = {"method": method.upper(), "path": base, "operation_id": op.get("operationId"),
                 "summary": first_sentence(op.get("summary") or op.get("description")),
                 "tag": (op.get("tags") or [""])[0],
                 "path_params": params["path"], "query": params["query"], "response": kind}
    optional = {"fixed_query": dict(p.split("=", 1) for p in fixed.split("&")) if fixed else None,
                "headers": params["header"], "body": request_body(schemas, op), "stream": can_stream,
                "paginate": pagination(schemas, op, params["query"]), "deprecated": bool(op.get("deprecated")),
                "admin": admin, "handwritten": HANDWRITTEN.get(op.get("operationId"))}
    described.update({k: v for k, v in optional.items() if v})
    return described


def _group_summary(name: str, tree: dict, tags: dict) -> str:
    if name in GROUP_SUMMARIES:
        return GROUP_SUMMARIES[name]
    counts = Counter(op["tag"] for op in _operations(tree) if op["tag"])
    tag = counts.most_common(1)[0][0] if counts else name.replace("-", " ").capitalize()
    return tags.get(tag) or f"{tag}: " + ", ".join(sorted(tree.get("commands", {})) + sorted(tree.get("groups", {})))


def _summarise_subgroups(tree: dict) -> None:
    for sub in tree.get("groups", {}).values():
        verbs = sorted(sub.get("commands", {})) + sorted(f"{g} ..." for g in sub.get("groups", {}))
        sub["summary"] = ", ".join(verbs)
        _summarise_subgroups(sub)


def _operations(tree: dict):
    yield from tree.get("commands", {}).values()
    for sub in tree.get("groups", {}).values():
        yield from _operations(sub)


def check_names(table: dict) -> None:
    """A name may not be both a command and a subgroup of the same group."""
    def walk(tree, where):
        clash = set(tree.get("commands", {})) & set(tree.get("groups", {}))
        if clash:
            raise CompileError(f"`{' '.join(where)} {sorted(clash)[0]}` is both a command and a group; "
                               "add the operation to RENAMES in openapi/compile.py")
        for name, sub in tree.get("groups", {}).items():
            walk(sub, (*where, name))
    walk(table, ())


def index_of(table: dict) -> dict:
    groups = {}
    for name, tree in sorted(table["groups"].items()):
        ops = list(_operations(tree))
        groups[name] = {"summary": tree["summary"], "operations": len(ops)}
        if all(op.get("handwritten") for op in ops):
            groups[name]["handwritten"] = True
        if all(op.get("deprecated") for op in ops):
            groups[name]["deprecated"] = True
    return {"groups": groups}


def dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"


INDEX_MODULE = '''"""The groups of the operations table and their one-line summaries: all `oaicli --help` reads. Written by
openapi/compile.py (do not edit). A Python module, not JSON, so that listing the groups imports no json."""

INDEX = {index}
'''


def write_table(table: dict, out_dir: Path) -> None:
    """summaries.py (the index) and groups/<name>.json; files of groups no longer in the spec are removed."""
    groups_dir = out_dir / "groups"
    groups_dir.mkdir(parents=True, exist_ok=True)
    index = pprint.pformat(index_of(table), width=110, sort_dicts=True)
    (out_dir / "summaries.py").write_text(INDEX_MODULE.format(index=index), encoding="utf-8")
    for name, tree in table["groups"].items():
        (groups_dir / f"{name}.json").write_text(dump(tree), encoding="utf-8")
    for stale in groups_dir.glob("*.json"):
        if stale.stem not in table["groups"]:
            stale.unlink()


def load_spec(path: Path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's loader is about 10x faster
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=loader)


def build(spec: dict) -> dict:
    table = compile_spec(spec)
    check_names(table)
    return table


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0]) if argv else DEFAULT_SPEC
    out_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    try:
        table = build(load_spec(spec_path))
    except CompileError as exc:
        print(f"compile.py: {exc}", file=sys.stderr)
        return 1
    write_table(table, out_dir)
    ops = list(op for tree in table["groups"].values() for op in _operations(tree))
    handwritten = sum(1 for op in ops if op.get("handwritten"))
    print(f"{len(ops)} operations in {len(table['groups'])} groups ({handwritten} covered by hand-written "
          f"commands) -> {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
