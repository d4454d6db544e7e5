"""Fake /v1/models: a fixed catalogue, paginated when `state["models_page_size"]` is set."""

from tests.fake.records import page

MODELS = [
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    {"id": "gpt-3.5-turbo", "object": "model", "created": 1677610602, "owned_by": "openai"},
    {"id": "text-davinci-003", "object": "model", "created": 1669599635, "owned_by": "openai-internal"},
    {"id": "ft:gpt-4o-mini:acme::abc123", "object": "model", "created": 1720000000, "owned_by": "acme"},
]


def install(server):
    server.state.setdefault("models", [dict(m) for m in MODELS])

    @server.route("GET", "/v1/models")
    def list_models(request, reply):
        models = server.state["models"]
        size = server.state.get("models_page_size")
        if not size:
            return reply.json({"object": "list", "data": models})
        reply.json(page(models, {**request.query, "limit": size}))

    @server.route("GET", "/v1/models/(?P<model>.+)")
    def get_model(request, reply):
        for model in server.state["models"]:
            if model["id"] == request.match["model"]:
                return reply.json(model)
        reply.error(404, f"The model '{request.match['model']}' does not exist", code="model_not_found")

    @server.route("DELETE", "/v1/models/(?P<model>.+)")
    def delete_model(request, reply):
        models = server.state["models"]
        for model in list(models):
            if model["id"] == request.match["model"]:
                models.remove(model)
                return reply.json({"id": model["id"], "object": "model", "deleted": True})
        reply.error(404, f"The model '{request.match['model']}' does not exist", code="model_not_found")
