"""The spec compiler on small hand-made specs: names, parameters, bodies, responses, pagination, collisions."""

import pytest

from tests.commands.generated.compiler import compiler


def spec(paths: dict, schemas: dict | None = None) -> dict:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas or {}},
            "tags": [{"name": "Widgets", "description": "Make widgets. They are great."}]}


def op(operation_id: str, **extra) -> dict:
    return {"operationId": operation_id, "summary": f"{operation_id} summary.", "tags": ["Widgets"],
            "responses": {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}}, **extra}


def path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def commands(table: dict) -> dict:
    """'group sub verb' -> operation, for every command of a compiled table."""
    found = {}

    def walk(tree, words):
        for verb, operation in tree.get("commands", {}).items():
            found[" ".join((*words, verb))] = operation
        for name, sub in tree.get("groups", {}).items():
            walk(sub, (*words, name))
    walk(table, ())
    return found


def compiled(paths, schemas=None) -> dict:
    return commands(compiler.build(spec(paths, schemas)))


def test_names_follow_the_path_collections_items_and_the_apis_own_verbs():
    table = compiled({
        "/v1/widget_boxes": {"get": op("listBoxes"), "post": op("createBox")},
        "/v1/widget_boxes/{box_id}": {"get": op("getBox", parameters=[path_param("box_id")]),
                                      "post": op("modifyBox", parameters=[path_param("box_id")]),
                                      "delete": op("deleteBox", parameters=[path_param("box_id")])},
        "/v1/widget_boxes/{box_id}/cancel": {"post": op("cancelBox", parameters=[path_param("box_id")])},
        "/v1/widget_boxes/{box_id}/parts": {"get": op("listParts", parameters=[
            path_param("box_id"), {"name": "after", "in": "query", "schema": {"type": "string"}}])},
        "/v1/widget_boxes/{box_id}/runs/{run_id}": {"post": op("cancelRun", parameters=[
            path_param("box_id"), path_param("run_id")])},
        "/v1/settings/retention": {"get": op("getRetention"), "post": op("updateRetention")},
        "/v1/settings/usage": {"get": op("usageReport")},
    })
    assert set(table) == {
        "widget-boxes list", "widget-boxes create", "widget-boxes get", "widget-boxes update",
        "widget-boxes delete", "widget-boxes cancel", "widget-boxes parts list", "widget-boxes runs cancel",
        "settings retention get", "settings retention update", "settings usage"}
    assert [p["name"] for p in table["widget-boxes runs cancel"]["path_params"]] == ["box_id", "run_id"]
    assert table["widget-boxes get"]["path"] == "/widget_boxes/{box_id}"  # /v1 is the base URL's


def test_a_post_named_create_on_a_leaf_path_is_a_create():
    table = compiled({"/v1/realtime/sessions": {"post": op("createRealtimeSession")},
                      "/v1/realtime/calls/{call_id}/accept": {"post": op("acceptCall",
                                                                         parameters=[path_param("call_id")])}})
    assert set(table) == {"realtime sessions create", "realtime calls accept"}


def test_admin_operations_live_under_admin_without_the_organization_segment():
    admin = [{"AdminApiKeyAuth": []}]
    cursor = [{"name": "after", "in": "query", "schema": {"type": "string"}}]
    table = compiled({"/v1/organization/projects": {"get": op("listProjects", security=admin, parameters=cursor)},
                      "/v1/projects/{project_id}/roles": {"get": op("listRoles", security=admin,
                                                                    parameters=[path_param("project_id"), *cursor])},
                      "/v1/organization/usage/completions": {"get": op("usageCompletions", security=admin)},
                      "/v1/widgets": {"get": op("listWidgets")}})
    assert set(table) == {"admin projects list", "admin projects roles list", "admin usage completions",
                          "widgets list"}
    assert table["admin projects list"]["admin"] is True and "admin" not in table["widgets list"]


def test_query_parameters_keep_type_enum_range_default_and_first_sentence():
    table = compiled({"/v1/widgets": {"get": op("listWidgets", parameters=[
        {"name": "order", "in": "query", "description": "Sort order. Defaults to asc.",
         "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        {"name": "tag_ids[]", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "start", "in": "query", "required": True, "schema": {"type": "integer"}}])}})
    query = {q["name"]: q for q in table["widgets list"]["query"]}
    assert query["order"] == {"name": "order", "type": "string", "enum": ["asc", "desc"], "default": "asc",
                              "help": "Sort order."}
    assert (query["limit"]["min"], query["limit"]["max"]) == (1, 100)
    assert query["tag_ids[]"] == {"name": "tag_ids[]", "type": "array", "items": {"type": "string"}}
    assert query["start"]["required"] is True


def test_body_refs_allof_and_nullable_unions_resolve_to_top_level_fields():
    schemas = {
        "Base": {"type": "object", "required": ["model"], "properties": {
            "model": {"anyOf": [{"type": "string"}, {"type": "string", "enum": ["w-1", "w-2"]}]},
            "temperature": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 2}, {"type": "null"}]}}},
        "Create": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"type": "object", "properties": {
            "mode": {"type": ["string", "null"], "enum": ["fast", "slow", None]},
            "tools": {"type": "array", "items": {"type": "object"}},
            "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}}}]},
    }
    table = compiled({"/v1/widgets": {"post": op("createWidget", requestBody=json_body(
        {"$ref": "#/components/schemas/Create"}))}}, schemas)
    body = table["widgets create"]["body"]
    fields = {f["name"]: f for f in body["fields"]}
    assert body["content"] == ["json"] and body["required"] is True
    assert fields["model"] == {"name": "model", "type": "string", "required": True}  # an open string: no choice
    assert fields["temperature"] == {"name": "temperature", "type": "number", "min": 0, "max": 2}
    assert fields["mode"]["enum"] == ["fast", "slow"]
    assert fields["tools"]["type"] == "json" and fields["input"]["type"] == "any"


def test_a_oneof_body_offers_the_union_of_its_variants_fields_required_only_when_all_require_them():
    body = {"oneOf": [
        {"type": "object", "required": ["name", "url"], "properties": {"name": {"type": "string"},
                                                                         "url": {"type": "string"}}},
        {"type": "object", "required": ["name", "file_id"], "properties": {"name": {"type": "string"},
                                                                             "file_id": {"type": "string"}}}]}
    table = compiled({"/v1/widgets": {"post": op("createWidget", requestBody=json_body(body))}})
    fields = {f["name"]: f for f in table["widgets create"]["body"]["fields"]}
    assert set(fields) == {"name", "url", "file_id"}
    assert fields["name"].get("required") and not fields["url"].get("required")
    assert not fields["file_id"].get("required")


def test_multipart_bodies_mark_their_file_fields():
    multipart = {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "purpose": {"type": "string"},
        "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "reference": {"oneOf": [{"type": "string", "format": "binary"}, {"type": "object"}]}}}
    table = compiled({"/v1/uploads": {"post": op("createUpload", requestBody={"content": {
        "multipart/form-data": {"schema": multipart},
        "application/json": {"schema": {"type": "object", "properties": {"file_id": {"type": "string"}}}}}})}})
    body = table["uploads create"]["body"]
    fields = {f["name"]: f["type"] for f in body["fields"]}
    assert body["content"] == ["json", "multipart"]
    assert fields == {"file_id": "string", "file": "file", "purpose": "string", "images": "files",
                      "reference": "file"}
    # Required in the multipart variant only: the JSON variant needs no file, so neither is required.
    assert not any(f.get("required") for f in body["fields"])


@pytest.mark.parametrize("path, responses, kind, stream", [
    ("/v1/speech", {"200": {"content": {"application/octet-stream": {}, "text/event-stream": {}}}}, "binary", True),
    ("/v1/videos/{id}/content", {"200": {"content": {"video/mp4": {}, "application/json": {}}}}, "binary", False),
    ("/v1/files/{id}/content", {"200": {"content": {"application/json": {"schema": {"type": "string"}}}}},
     "binary", False),
    ("/v1/boxes/{id}/content", {"200": {"description": "the bytes"}}, "binary", False),
    ("/v1/stores/{id}/content", {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}},
     "json", False),
    ("/v1/events", {"200": {"content": {"text/event-stream": {}}}}, "sse", False),
    ("/v1/chat", {"200": {"content": {"application/json": {}, "text/event-stream": {}}}}, "json", True),
])
def test_response_kinds(path, responses, kind, stream):
    method = "post" if "{" not in path else "get"
    params = [path_param("id")] if "{" in path else []
    table = compiled({path: {method: {**op("x", parameters=params), "responses": responses}}})
    (operation,) = table.values()
    assert operation["response"] == kind
    assert operation.get("stream", False) is stream


def list_op(query: list, properties: list) -> dict:
    return op("listThings", parameters=[{"name": n, "in": "query", "schema": {"type": "string"}} for n in query],
              responses={"200": {"content": {"application/json": {"schema": {
                  "type": "object", "properties": {p: {"type": "string"} for p in properties}}}}}})


@pytest.mark.parametrize("query, properties, shape", [
    (["after", "limit"], ["data", "has_more", "last_id", "first_id"], "cursor"),
    (["after", "limit"], ["data", "has_more"], "cursor-id"),
    (["page", "limit"], ["data", "has_more", "next_page"], "page"),
    (["limit"], ["data", "has_more", "next_page"], None),
    ([], ["data"], None),
])
def test_pagination_shapes(query, properties, shape):
    (operation,) = compiled({"/v1/things": {"get": list_op(query, properties)}}).values()
    assert operation.get("paginate") == shape


def test_deprecated_and_handwritten_operations_are_marked_and_kept():
    table = compiled({"/v1/assistants": {"get": op("listAssistants", deprecated=True)},
                      "/v1/models": {"get": op("listModels")}})
    assert table["assistants list"]["deprecated"] is True
    assert table["models list"]["handwritten"] == "models list"
    assert "deprecated" not in table["models list"]


def test_two_operations_on_one_command_name_stop_the_compiler_naming_both():
    paths = {"/v1/threads/runs": {"post": op("createThreadRun")},
             "/v1/threads/{thread_id}/runs": {"post": op("createRun", parameters=[path_param("thread_id")])}}
    with pytest.raises(compiler.CompileError) as caught:
        compiler.build(spec(paths))
    assert "threads runs create" in str(caught.value)
    assert "createThreadRun" in str(caught.value) and "createRun" in str(caught.value)


def test_a_name_both_command_and_group_stops_the_compiler():
    paths = {"/v1/boxes/{box_id}/open": {"post": op("openBox", parameters=[path_param("box_id")])},
             "/v1/boxes/open/{lid_id}": {"get": op("getLid", parameters=[path_param("lid_id")])}}
    with pytest.raises(compiler.CompileError, match="both a command and a group"):
        compiler.build(spec(paths))


def test_renames_settle_a_collision_by_operation_id(monkeypatch):
    monkeypatch.setitem(compiler.RENAMES, "createThreadRun", ("threads", "create-and-run"))
    table = compiled({"/v1/threads/runs": {"post": op("createThreadRun")},
                      "/v1/threads/{thread_id}/runs": {"post": op("createRun", parameters=[path_param("thread_id")])}})
    assert table["threads create-and-run"]["path"] == "/threads/runs"
    assert table["threads runs create"]["path"] == "/threads/{thread_id}/runs"


def test_beta_variants_keep_their_fixed_query_and_header():
    header = {"name": "openai-beta", "in": "header", "schema": {"type": "array", "items": {
        "type": "string", "enum": ["multi=v1"]}}}
    table = compiled({"/v1/responses": {"post": op("createResponse")},
                      "/v1/responses?beta=true": {"post": op("beta_createResponse", parameters=[header])}})
    beta = table["beta responses create"]
    assert (beta["path"], beta["fixed_query"]) == ("/responses", {"beta": "true"})
    assert beta["headers"][0]["items"]["enum"] == ["multi=v1"]
    assert table["responses create"]["path"] == "/responses"


def test_group_summaries_come_from_the_tag_description():
    table = compiler.build(spec({"/v1/widgets": {"get": op("listWidgets")}}))
    assert table["groups"]["widgets"]["summary"] == "Make widgets."
    assert compiler.index_of(table)["groups"]["widgets"] == {"summary": "Make widgets.", "operations": 1}


def test_first_sentence_drops_links_and_stops_at_the_first_full_stop():
    text = "A list of [File](/docs/files) IDs. Useful for tools.\nMore."
    assert compiler.first_sentence(text) == "A list of File IDs."
    assert compiler.first_sentence("Version 1.5 of it. Next") == "Version 1.5 of it."
    assert compiler.first_sentence("How many to return. - `1d`: up to 31") == "How many to return."
