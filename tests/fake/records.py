"""What every fake collection shares: a record by the path's id (or a 404), and OpenAI's cursor paging."""


def finder(state: dict, key: str, missing: str, param: str | None = None):
    """`found(request, reply)`: the record in `state[key]` under the path's `id`, or None after a 404 whose
    message is `missing` with `{id}` filled in. The table is looked up at each request, not bound once:
    tests and benchmarks replace a whole table (`server.state.update(files={...})`)."""
    def found(request, reply):
        record = state[key].get(request.match["id"])
        if record is None:
            reply.error(404, missing.format(id=request.match["id"]), param=param)
        return record
    return found


def page(items: list[dict], query: dict, key: str = "id", default_limit: int = 20) -> dict:
    """OpenAI's cursor paging: `after` is the id of the last item seen, `limit` the page size."""
    start = 0
    if "after" in query:
        ids = [item[key] for item in items]
        start = ids.index(query["after"]) + 1 if query["after"] in ids else len(items)
    limit = int(query.get("limit", default_limit))
    chunk = items[start:start + limit]
    return {"object": "list", "data": chunk, "has_more": start + limit < len(items),
            "first_id": chunk[0][key] if chunk else None, "last_id": chunk[-1][key] if chunk else None}
