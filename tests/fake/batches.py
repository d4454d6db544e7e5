"""Fake /v1/batches and the organization usage and costs endpoints.

A batch reads its input file from the fake's file store (tests/fake/files.py), checks it the way the
Batch API does (a bad line fails the batch with `errors`), then moves one step per read of the batch
(or every `state["batch_polls_per_step"]` reads): validating -> in_progress (0 done) -> in_progress
(half done) -> finalizing -> completed. On completion its answers go to an output file and its
failures to an error file, both in the store, so `GET /v1/files/{id}/content` serves them. The output
file lists answers in reverse input order: the real API promises no order, and results must be
matched by custom_id. Knobs in `server.state`:
- `batch_fail_ids`: custom_ids whose requests fail (400, in the error file);
- `admin_keys`: when set, the /organization endpoints answer only these keys (OPENAI_ADMIN_KEY), else 401;
- `usage_models`: the models usage is reported for (default two).
Cancelling moves a batch to cancelling, and the next read to cancelled, keeping the answers done by then.
"""

import itertools
import json
import time

from tests.fake.files import add_file
from tests.fake.records import finder, page

_ids = itertools.count(1)
ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos")
STEPS = ("validating", "in_progress", "in_progress", "finalizing", "completed")
DAY = 86400


def requests_of(content: bytes, endpoint: str) -> tuple[list[dict], list[dict]]:
    """The input file's requests, and the errors that fail the batch at validation (as the API lists them)."""
    requests, errors = [], []
    for number, raw in enumerate(content.splitlines(), 1):
        try:
            request = json.loads(raw)
        except ValueError:
            errors.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                           "param": None, "line": number})
            continue
        if request.get("url") != endpoint:
            errors.append({"code": "mismatched_endpoint", "message": f"The url of this line does not match the "
                           f"batch endpoint {endpoint}.", "param": "url", "line": number})
            continue
        requests.append(request)
    return requests, errors


def answer(endpoint: str, body: dict, number: int, state: dict | None = None) -> dict:
    """A plausible answer body for one request of the batch's endpoint; a chat answer is the one the chat
    fake gives (`state["answer"]`, else an echo), `n` times, so batch and plain runs can be compared."""
    if endpoint == "/v1/chat/completions":
        from tests.fake.chat import default_answer
        message = {"role": "assistant", "content": (state or {}).get("answer", default_answer)(body.get("messages", []))}
        return {"id": f"chatcmpl-batch{number:06d}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": i, "finish_reason": "stop", "logprobs": None, "message": message}
                            for i in range(body.get("n", 1))],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
    if endpoint == "/v1/embeddings":
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        return {"object": "list", "model": body.get("model"), "usage": {"prompt_tokens": 4, "total_tokens": 4},
                "data": [{"object": "embedding", "index": i, "embedding": _vector(text)} for i, text in
                         enumerate(inputs)]}
    return {"object": "batch.fake_answer", "endpoint": endpoint, "model": body.get("model"), "echo": body}


def _vector(text, dims: int = 8) -> list[float]:
    """A deterministic vector that tells inputs apart (by length and first character)."""
    seed = len(str(text)) + (ord(str(text)[0]) if text else 0)
    return [round(((seed * (i + 3)) % 97) / 97, 4) for i in range(dims)]


def _result_line(request: dict, endpoint: str, number: int, failing: set, state: dict) -> tuple[bool, dict]:
    custom_id = request.get("custom_id")
    line = {"id": f"batch_req_{number:06d}", "custom_id": custom_id}
    if custom_id in failing:
        line["response"] = {"status_code": 400, "request_id": f"req_b{number:06d}", "body": {"error": {
            "message": "Invalid request in the batch (scripted failure).", "type": "invalid_request_error",
            "param": None, "code": None}}}
        return False, {**line, "error": None}
    line["response"] = {"status_code": 200, "request_id": f"req_b{number:06d}",
                        "body": answer(endpoint, request.get("body") or {}, number, state)}
    return True, {**line, "error": None}


def _finish(server, record: dict, done: int) -> None:
    """Write the output and error files for the first `done` requests."""
    batch, failing = record["batch"], set(server.state.get("batch_fail_ids", ()))
    outputs, errors = [], []
    for number, request in enumerate(record["requests"][:done]):
        ok, line = _result_line(request, batch["endpoint"], number, failing, server.state)
        (outputs if ok else errors).append(json.dumps(line))
    outputs.reverse()
    if outputs:
        batch["output_file_id"] = add_file(server, ("\n".join(outputs) + "\n").encode(), "batch_output.jsonl",
                                           "batch_output")["id"]
    if errors:
        batch["error_file_id"] = add_file(server, ("\n".join(errors) + "\n").encode(), "batch_errors.jsonl",
                                          "batch_output")["id"]
    batch["request_counts"] = {"total": len(record["requests"]), "completed": len(outputs), "failed": len(errors)}


def _advance(server, record: dict) -> None:
    batch = record["batch"]
    if batch["status"] in ("completed", "failed", "cancelled", "expired"):
        return
    if batch["status"] == "cancelling":
        batch.update(status="cancelled", cancelled_at=int(time.time()))
        return _finish(server, record, record["done"])
    record["polls"] += 1
    if record["polls"] < server.state.get("batch_polls_per_step", 1):
        return
    record["polls"] = 0
    record["step"] += 1
    status = STEPS[record["step"]]
    if status == "in_progress" and record["errors"]:
        batch.update(status="failed", failed_at=int(time.time()),
                     errors={"object": "list", "data": record["errors"]})
        return
    total = len(record["requests"])
    record["done"] = {1: 0, 2: total // 2}.get(record["step"], total)
    batch["status"] = status
    batch["request_counts"] = {"total": total, "completed": record["done"], "failed": 0}
    stamp = {"in_progress": "in_progress_at", "finalizing": "finalizing_at", "completed": "completed_at"}[status]
    batch.setdefault(stamp, int(time.time()))
    if status == "completed":
        _finish(server, record, total)


def install(server):
    state = server.state
    state.setdefault("batches", {})

    found = finder(state, "batches", "No batch found with id '{id}'.", param="batch_id")

    @server.route("POST", "/v1/batches")
    def create(request, reply):
        body = request.json()
        entry = state["files"].get(body.get("input_file_id"))
        if entry is None:
            return reply.error(400, f"Invalid input_file_id: {body.get('input_file_id')}", param="input_file_id")
        if entry["meta"]["purpose"] != "batch":
            return reply.error(400, "The input file must be uploaded with purpose 'batch'.", param="input_file_id")
        if body.get("endpoint") not in ENDPOINTS:
            return reply.error(400, f"Invalid endpoint: {body.get('endpoint')}", param="endpoint")
        if body.get("completion_window") != "24h":
            return reply.error(400, "completion_window must be '24h'.", param="completion_window")
        requests, errors = requests_of(entry["blob"].content or b"", body["endpoint"])
        number, now = next(_ids), int(time.time())
        batch = {"id": f"batch_{number:06d}", "object": "batch", "endpoint": body["endpoint"],
                 "errors": None, "input_file_id": body["input_file_id"], "completion_window": "24h",
                 "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
                 "expires_at": now + DAY, "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": body.get("metadata")}
        state["batches"][batch["id"]] = {"batch": batch, "requests": requests, "errors": errors, "step": 0,
                                         "polls": 0, "done": 0}
        reply.json(batch)

    @server.route("GET", "/v1/batches")
    def list_batches(request, reply):
        reply.json(page([r["batch"] for r in reversed(state["batches"].values())], request.query, key="id"))

    @server.route("GET", "/v1/batches/(?P<id>[^/]+)")
    def get(request, reply):
        record = found(request, reply)
        if record:
            _advance(server, record)
            reply.json(record["batch"])

    @server.route("POST", "/v1/batches/(?P<id>[^/]+)/cancel")
    def cancel(request, reply):
        record = found(request, reply)
        if record is None:
            return
        if record["batch"]["status"] not in ("validating", "in_progress", "finalizing"):
            return reply.error(409, f"Cannot cancel a batch that is {record['batch']['status']}.")
        record["batch"].update(status="cancelling", cancelling_at=int(time.time()))
        reply.json(record["batch"])

    _install_usage(server, state)


def _admin(state: dict, request, reply) -> bool:
    allowed = state.get("admin_keys")
    key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if allowed is not None and key not in allowed:
        reply.error(401, "This endpoint needs an admin API key (OPENAI_ADMIN_KEY).", code="invalid_api_key")
        return False
    return True


def _buckets(query: dict, results) -> dict:
    """Daily buckets from start_time, `limit` at a time, paged with `page` (the next bucket's index)."""
    if "start_time" not in query:
        return {"error": "start_time"}
    start = int(query["start_time"]) // DAY * DAY
    end = int(query.get("end_time", time.time()))
    days = list(range(start, end, DAY))
    first = int(query.get("page") or 0)
    limit = int(query.get("limit", 7))
    chosen = days[first:first + limit]
    more = first + limit < len(days)
    return {"object": "page", "has_more": more, "next_page": str(first + limit) if more else None,
            "data": [{"object": "bucket", "start_time": day, "end_time": day + DAY,
                      "results": results(day, (day - start) // DAY)} for day in chosen]}


def _install_usage(server, state):
    def group_by(request) -> str:
        return request.query.get("group_by", "")

    @server.route("GET", "/v1/organization/usage/(?P<kind>[a-z_]+)")
    def usage(request, reply):
        if not _admin(state, request, reply):
            return
        kind, by = request.match["kind"], group_by(request)
        models = state.get("usage_models", ["gpt-4o-mini", "gpt-4.1"]) if "model" in by else [None]

        def results(day, n):
            return [{"object": f"organization.usage.{kind}.result", "input_tokens": 1000 * (n + 1) * (i + 1),
                     "input_cached_tokens": 100 * (n + 1), "output_tokens": 250 * (n + 1) * (i + 1),
                     "num_model_requests": 5 * (n + 1), "project_id": "proj_fake" if "project_id" in by else None,
                     "model": model, "batch": None} for i, model in enumerate(models)]
        page = _buckets(request.query, results)
        if "error" in page:
            return reply.error(400, "start_time is required", param="start_time")
        reply.json(page)

    @server.route("GET", "/v1/organization/costs")
    def costs(request, reply):
        if not _admin(state, request, reply):
            return
        by = group_by(request)
        items = ["Completions, input", "Completions, output"] if "line_item" in by else [None]

        def results(day, n):
            return [{"object": "organization.costs.result", "amount": {"value": round(0.25 * (n + 1) * (i + 1), 2),
                                                                       "currency": "usd"},
                     "line_item": item, "project_id": "proj_fake" if "project_id" in by else None}
                    for i, item in enumerate(items)]
        page = _buckets(request.query, results)
        if "error" in page:
            return reply.error(400, "start_time is required", param="start_time")
        reply.json(page)
