"""The HTTP face of the envelope for `oaicli serve` (needs the `serve` extra: uvicorn).

Nothing outside this package imports it, so the rest of oaicli never loads the server libraries."""
