"""Fake /v1/moderations: an input is flagged for `violence` when it mentions "kill", for `hate` on "hate"."""

CATEGORIES = ["hate", "hate/threatening", "harassment", "self-harm", "sexual", "sexual/minors", "violence",
              "violence/graphic"]
TRIGGERS = {"kill": "violence", "hate": "hate"}


def result_for(text: str) -> dict:
    hit = {category for word, category in TRIGGERS.items() if word in text.lower()}
    return {"flagged": bool(hit),
            "categories": {c: c in hit for c in CATEGORIES},
            "category_scores": {c: (0.91 if c in hit else 0.0012) for c in CATEGORIES}}


def install(server):
    @server.route("POST", "/v1/moderations")
    def moderations(request, reply):
        body = request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        reply.json({"id": "modr-fake", "model": body.get("model") or "omni-moderation-latest",
                    "results": [result_for(text) for text in inputs]})
