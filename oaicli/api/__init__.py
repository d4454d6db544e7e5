"""The HTTP client: auth, retries, errors from responses, SSE, uploads and downloads."""
