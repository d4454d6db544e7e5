"""Fake /v1/vector_stores: create, list, get, delete, and a store's files (added by id from the file store,
or several at once with a file batch), each file `completed` at once; lists page with OpenAI's cursors."""

import itertools
import time

from tests.fake.records import finder, page

_ids = itertools.count(1)


def install(server):
    state = server.state
    state.setdefault("vector_stores", {})

    found = finder(state, "vector_stores", "No vector store found with id '{id}'.")

    def attach(store: dict, file_id: str, reply) -> dict | None:
        if file_id not in state["files"]:
            reply.error(404, f"No file found with id '{file_id}'.", param="file_id")
            return None
        entry = {"id": file_id, "object": "vector_store.file", "created_at": int(time.time()),
                 "vector_store_id": store["meta"]["id"], "status": "completed", "last_error": None,
                 "usage_bytes": state["files"][file_id]["meta"]["bytes"]}
        store["files"].append(entry)
        store["meta"]["file_counts"]["completed"] += 1
        store["meta"]["file_counts"]["total"] += 1
        store["meta"]["usage_bytes"] += entry["usage_bytes"]
        return entry

    @server.route("POST", "/v1/vector_stores")
    def create(request, reply):
        body = request.json()
        store_id = f"vs_{next(_ids):06d}"
        meta = {"id": store_id, "object": "vector_store", "created_at": int(time.time()), "name": body.get("name"),
                "status": "completed", "usage_bytes": 0, "metadata": body.get("metadata") or {},
                "file_counts": {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}}
        store = state["vector_stores"][store_id] = {"meta": meta, "files": []}
        for file_id in body.get("file_ids") or []:
            if attach(store, file_id, reply) is None:
                del state["vector_stores"][store_id]
                return
        reply.json(meta)

    @server.route("GET", "/v1/vector_stores")
    def list_stores(request, reply):
        reply.json(page([s["meta"] for s in state["vector_stores"].values()], request.query, "id"))

    @server.route("GET", "/v1/vector_stores/(?P<id>[^/]+)")
    def get(request, reply):
        store = found(request, reply)
        if store is not None:
            reply.json(store["meta"])

    @server.route("DELETE", "/v1/vector_stores/(?P<id>[^/]+)")
    def delete(request, reply):
        store = found(request, reply)
        if store is not None:
            del state["vector_stores"][store["meta"]["id"]]
            reply.json({"id": store["meta"]["id"], "object": "vector_store.deleted", "deleted": True})

    @server.route("POST", "/v1/vector_stores/(?P<id>[^/]+)/files")
    def add_file(request, reply):
        store = found(request, reply)
        if store is not None:
            entry = attach(store, request.json().get("file_id"), reply)
            if entry is not None:
                reply.json(entry)

    @server.route("POST", "/v1/vector_stores/(?P<id>[^/]+)/file_batches")
    def add_batch(request, reply):
        store = found(request, reply)
        if store is None:
            return
        entries = [attach(store, file_id, reply) for file_id in request.json().get("file_ids") or []]
        if None in entries:
            return
        reply.json({"id": f"vsfb_{next(_ids):06d}", "object": "vector_store.files_batch", "status": "completed",
                    "created_at": int(time.time()), "vector_store_id": store["meta"]["id"],
                    "file_counts": {"in_progress": 0, "completed": len(entries), "failed": 0, "cancelled": 0,
                                    "total": len(entries)}})

    @server.route("GET", "/v1/vector_stores/(?P<id>[^/]+)/files")
    def list_files(request, reply):
        store = found(request, reply)
        if store is not None:
            reply.json(page(store["files"], request.query, "id"))
