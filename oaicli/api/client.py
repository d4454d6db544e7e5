"""The HTTP client layer every command shares: auth, retries, errors, streaming, pagination, transfers."""

import json
import os
import sys
import time
from typing import Iterator

import httpx

from oaicli.api.retry import RetryPolicy
from oaicli.api.sse import SSEParser
from oaicli.core import settings as settings_module
from oaicli.core.errors import ApiError, ConfigError, NetworkError, StreamError, redact

# Paths that Azure OpenAI serves under /deployments/{model}/.
AZURE_DEPLOYMENT_PATHS = ("/chat/completions", "/completions", "/embeddings", "/images/", "/audio/", "/edits")


class ApiClient:
    def __init__(self, settings: settings_module.Settings, transport: httpx.BaseTransport | None = None,
                 sleep=time.sleep, max_connections: int | None = None, echo=None, admin: bool = False):
        """`max_connections`: for a client shared by many threads (serve); all of them are kept alive.
        `echo` writes one line for the user (retry notices, -v traces); stderr by default.
        `admin`: authenticate with OPENAI_ADMIN_KEY (the organization's admin endpoints)."""
        self.settings = settings
        self.admin = admin
        self.echo = echo or _to_stderr
        self.sleep = sleep
        self.max_retries = settings.max_retries
        # self.sleep is looked up at each wait, so a test (or serve) may replace it after construction.
        self.retry = RetryPolicy(self.max_retries, lambda seconds: self.sleep(seconds),
                                 notice=None if settings.quiet else self.echo)
        self.azure = settings.api_type == "azure"
        check_base_url(settings)
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=self._headers(),
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
            transport=transport,
            verify=verify_for(settings.base_url),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            if max_connections else httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    def _headers(self) -> dict[str, str]:
        return auth_headers(self.settings, self.settings.require_admin_key() if self.admin else self.settings.require_key())

    def close(self) -> None:
        self._http.close()

    # Requests

    def request(self, method: str, path: str, *, parse: str = "json", **kwargs):
        """One request with retries; returns the parsed JSON (or text, or bytes)."""
        response = self.send(method, path, **kwargs)
        try:
            body = response.read()
        except httpx.TransportError as exc:
            raise NetworkError(f"The connection dropped while reading the answer: {exc}.",
                               "Check the network and try again.") from exc
        finally:
            response.close()
        self._trace_body("<", body, response.headers.get("content-type", ""))
        if parse == "text":
            return body.decode("utf-8", errors="replace")
        if parse == "bytes":
            return body
        if not body.strip():
            return {}
        try:
            return json.loads(body)
        except ValueError as exc:
            if parse == "json-or-text":  # an operation that may answer text (transcripts as srt, vtt)
                return body.decode("utf-8", errors="replace")
            raise NetworkError(f"The server answered {method} {path} with something that is not JSON.",
                               "Is --base-url pointing at an OpenAI-compatible API?") from exc

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def send(self, method: str, path: str, *, params=None, json=None, data=None, files=None,
             headers=None, timeout: float | None = None) -> httpx.Response:
        """Send with retries and return the open response (the caller reads and closes it).

        Retries cover 408, 409, 429, 5xx, connection errors and timeouts. Uploads are streamed
        again from the start of each file on a retry."""
        path, params = self._route(path, params, json if json is not None else data)
        for attempt, last in self.retry.attempts():
            _rewind(files)
            request = self._http.build_request(method, path, params=params, json=json, data=data,
                                               files=files, headers=headers,
                                               timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
            self._trace_request(request, json)
            started = time.monotonic()
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:  # timeouts included
                if last or self._http.is_closed:  # closed on Ctrl-C or SIGTERM: nothing to retry for
                    raise self._network_error(exc, method, request.url, uploading=bool(files)) from exc
                timed_out = isinstance(exc, httpx.TimeoutException)
                self.retry.wait(None, attempt, f"timed out ({exc.__class__.__name__})" if timed_out
                           else f"connection failed ({describe(exc)})")
                continue
            self._trace_response(response, time.monotonic() - started)
            if response.status_code < 400:
                return response
            response.read()
            response.close()
            self._trace_body("<", response.content, response.headers.get("content-type", ""))
            if self.retry.retries(response.status_code, last):
                self.retry.wait(response, attempt, f"HTTP {response.status_code}")
                continue
            error = _with_model_hint(error_from_response(response), path, json if json is not None else data)
            if self.admin and error.status in (401, 403):
                error.hint = "This endpoint needs an organization admin key in OPENAI_ADMIN_KEY (`oaicli config show`)."
            raise error
        raise AssertionError("unreachable")

    def _network_error(self, exc: httpx.TransportError, method: str, url, uploading: bool = False) -> NetworkError:
        """Say what happened: no connection, a TLS handshake with a plain-HTTP server, a timeout, or a
        connection the server closed (while an upload was going out, or before any answer)."""
        origin, https = self._origin(), self._http.base_url.scheme == "https"
        plain_http_hint = f"If the server speaks plain HTTP, use {origin.replace('https://', 'http://', 1)} in --base-url."
        if isinstance(exc, httpx.ConnectError) and https and any(sign in str(exc) for sign in PLAIN_HTTP_SIGNS):
            return NetworkError(f"Cannot reach {origin} over HTTPS: the server answered in plain HTTP.",
                                f"Use {origin.replace('https://', 'http://', 1)} in --base-url.")
        if isinstance(exc, httpx.TimeoutException):
            handshake = isinstance(exc, httpx.ConnectTimeout) and https
            return NetworkError(f"{method} {url} timed out after {self.max_retries + 1} attempts.",
                                f"Raise --timeout or try again later. {plain_http_hint}" if handshake
                                else "Raise --timeout or try again later.")
        if isinstance(exc, httpx.ConnectError):
            return NetworkError(f"Cannot reach {origin}: {describe(exc)}.",
                                "Check --base-url and your network or proxy settings.")
        if uploading:
            return NetworkError(f"The server at {origin} closed the connection during the upload: {describe(exc)}.",
                                "It may refuse bodies this large; try again, or check its upload limit.")
        return NetworkError(f"The server at {origin} closed the connection without answering: {describe(exc)}.",
                            "Try again; if it keeps happening, check that --base-url points at an HTTP API.")

    def _route(self, path: str, params, body):
        return route(self.settings, path, params, body)

    def _origin(self) -> str:
        url = self._http.base_url
        return f"{url.scheme}://{url.netloc.decode()}"

    # Streaming

    def stream_events(self, path: str, body: dict | None, method: str = "POST", params=None,
                      timeout: float | None = None, require_done: bool = True, files=None,
                      headers=None) -> Iterator[dict]:
        """Yield each server-sent event's JSON as soon as it arrives; `[DONE]` ends the stream.

        A stream that breaks, or ends without `[DONE]`, raises StreamError: never a silent success
        (`require_done=False` for APIs that end with a typed last event instead, as Responses does).
        A server that ignores `stream` and answers with one JSON document yields that document."""
        response = self.send(method, path, json=body, params=params, timeout=timeout, files=files, headers=headers)
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                yield self._whole_answer(response, method, path)
                return
            yield from self._events(response, require_done)
        except httpx.TransportError as exc:
            raise StreamError(f"The connection dropped mid-stream: {describe(exc)}.",
                              "Nothing was saved; try again.") from exc
        finally:
            response.close()

    def _whole_answer(self, response: httpx.Response, method: str, path: str) -> dict:
        body = response.read()
        self._trace_body("<", body, response.headers.get("content-type", ""))
        return whole_answer(body, response.headers.get("content-type", ""), method, path)

    def _events(self, response: httpx.Response, require_done: bool = True) -> Iterator[dict]:
        parser = SSEParser()
        for chunk in response.iter_bytes():
            for event in parser.feed(chunk):
                if event.data.strip() == "[DONE]":
                    return
                if event.data.strip():  # an empty `data:` is a keep-alive, not a document
                    yield self._decode_event(event.data)
        for event in parser.close():
            if event.data.strip() == "[DONE]":
                return
            if event.data.strip():
                yield self._decode_event(event.data)
        if not require_done:
            return
        raise StreamError("The stream ended before the server said it was done ([DONE] missing).",
                          "Nothing was saved; try again.")

    def _decode_event(self, data: str) -> dict:
        if self.settings.verbose >= 2:
            self.echo(redact(f"< event: {data}"))
        return event_payload(data)

    # Lists

    def list_all(self, path: str, params: dict | None = None, fetch_all: bool = False) -> dict:
        """Fetch a list; with fetch_all follow `has_more` and `after` to the end. Returns one page object."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        first = page = self.get(path, params=params)
        items = list(page.get("data", []))
        seen = {params.get("after")}
        while fetch_all and page.get("has_more") and page.get("data"):
            cursor = page.get("last_id") or page["data"][-1].get("id")
            if not cursor or cursor in seen:  # a server that loops would otherwise page forever
                self.echo("Warning: the server repeated a page cursor; stopped paging.")
                break
            seen.add(cursor)
            params["after"] = cursor
            page = self.get(path, params=params)
            items.extend(page.get("data", []))
        return {**first, "data": items, "has_more": bool(page.get("has_more"))}

    # Downloads

    def download(self, path: str, sink, bar, *, method: str = "GET", json=None, params=None, files=None,
                 what: str = "download", where: object = None) -> int:
        """Stream a body into `sink` (output.files.download_target: an atomic file or stdout), counting
        bytes on `bar` (output.progress.progress_bar, reset to the body's length); the bytes written."""
        _widen_socket_reads()
        response = self.send(method, path, json=json, params=params, files=files)
        counted = _CountingSink(sink)
        try:
            bar.reset(total=int(response.headers.get("content-length") or 0) or None)
            return copy_body(response, counted, bar)
        except httpx.TransportError as exc:
            raise NetworkError(f"The {what} broke off: {describe(exc)}.", _after_a_break(where, counted.count)) from exc
        finally:
            response.close()

    # Tracing for --verbose

    def _trace_request(self, request: httpx.Request, body) -> None:
        if not self.settings.verbose:
            return
        self.echo(redact(f"> {request.method} {request.url}"))
        if self.settings.verbose >= 2:
            for name, value in request.headers.items():
                shown = "[redacted]" if name.lower() in ("authorization", "api-key") else value
                self.echo(redact(f"> {name}: {shown}"))
            if body is not None:
                self.echo(redact(f"> {json.dumps(body, ensure_ascii=False)}"))
            elif request.headers.get("content-type", "").startswith("multipart/"):
                self.echo(f"> <multipart body, {request.headers.get('content-length', '?')} bytes>")

    def _trace_response(self, response: httpx.Response, seconds: float) -> None:
        if not self.settings.verbose:
            return
        request_id = response.headers.get("x-request-id", "-")
        # A server or proxy may echo the key in any header it sends back: every trace line is redacted.
        self.echo(redact(f"< {response.status_code} {response.reason_phrase} in {seconds * 1000:.0f} ms "
                         f"(x-request-id: {request_id})"))

    def _trace_body(self, direction: str, body: bytes, content_type: str) -> None:
        if self.settings.verbose < 2 or not body:
            return
        if "json" in content_type or content_type.startswith("text/"):
            text = body.decode("utf-8", errors="replace")
            shown = text if len(text) <= 4000 else text[:4000] + f"... ({len(text)} characters)"
            self.echo(redact(f"{direction} {shown}"))
        else:
            self.echo(f"{direction} <{len(body)} bytes of {content_type or 'binary data'}>")


def auth_headers(settings, key: str) -> dict[str, str]:
    """The headers of every request: the key (Azure's api-key or a bearer token), organization, project."""
    headers = {"User-Agent": "oaicli/0.1"}
    if settings.api_type == "azure":
        headers["api-key"] = key
    else:
        headers["Authorization"] = f"Bearer {key}"
    if settings.organization:
        headers["OpenAI-Organization"] = settings.organization
    if settings.project:
        headers["OpenAI-Project"] = settings.project
    return headers


def route(settings, path: str, params, body):
    """Azure OpenAI's path and api-version for a request; others' unchanged."""
    if settings.api_type != "azure":
        return path, params
    params = dict(params or {})
    params.setdefault("api-version", settings.api_version)
    model = body.get("model") if isinstance(body, dict) else None
    if model and path.startswith(AZURE_DEPLOYMENT_PATHS):
        path = f"/deployments/{model}{path}"
    return path, params


def event_payload(data: str) -> dict:
    """One server-sent event's JSON; an error event or a non-JSON one is a StreamError."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise StreamError(f"The server sent an event that is not JSON: {data[:80]!r}.") from exc
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = payload["error"]
        raise StreamError(f"The server reported an error mid-stream: {error.get('message')} "
                          f"({error.get('type') or error.get('code') or 'error'}).")
    return payload


# How OpenSSL reports a TLS handshake answered by a plain-HTTP server (an HTTP 400 page, not a ServerHello).
PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "wrong version number", "RECORD_LAYER_FAILURE", "packet length too long")


def check_base_url(settings) -> None:
    """A base URL without http(s):// is a setting to fix, not a network failure to retry three times."""
    if not settings.base_url.lower().startswith(("http://", "https://")):
        raise ConfigError(f"The base URL {settings.base_url!r} ({settings.source('base_url')}) does not start "
                          "with http:// or https://.", "For example: --base-url http://localhost:8000/v1")


def verify_for(base_url: str):
    """A plain-http base URL needs no certificates; skip loading them (tens of milliseconds)."""
    if base_url.startswith("http://") and not any(os.environ.get(v) for v in (
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")):
        import ssl
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA loaded: any https redirect fails safely
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:  # a corporate CA bundle: load it here, so a bad path is one clear line
        import ssl
        try:
            return ssl.create_default_context(cafile=cafile or None, capath=None if cafile else capath)
        except (OSError, ssl.SSLError) as exc:
            variable = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}"
            raise ConfigError(f"Cannot load the certificates in {variable}: {exc.strerror or exc}.",
                              "Point it at a PEM file of CA certificates, or unset it.") from exc
    return True


def _rewind(files) -> None:
    for value in (files or {}).values() if isinstance(files, dict) else (v for _, v in files or []):
        handle = value[1] if isinstance(value, tuple) else value
        if hasattr(handle, "seek"):
            handle.seek(0)


def describe(exc: Exception) -> str:
    """The exception's text without a final full stop, since our sentences add their own."""
    return (str(exc) or exc.__class__.__name__).rstrip(".")


def error_from_response(response: httpx.Response) -> ApiError:
    """One error type for every non-2xx answer, whatever its body: OpenAI JSON, problem+json, HTML, empty."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ApiError(status, error.get("message") or f"HTTP {status}", error.get("type"),
                        _text(error.get("code")), request_id, error.get("param"))
    if isinstance(error, str):
        return ApiError(status, error, None, None, request_id)
    if isinstance(body, dict) and (body.get("detail") or body.get("title")):
        return ApiError(status, _problem_message(body), "invalid_request" if status == 422 else None,
                        None, request_id)
    return ApiError(status, _plain_message(response), None, None, request_id)


def _with_model_hint(error: ApiError, path: str, body) -> ApiError:
    """A 404 about the model (not about a missing endpoint) points at `oaicli models list`."""
    model = body.get("model") if isinstance(body, dict) else None
    names_model = (error.code == "model_not_found" or path.startswith("/models/")
                   or (isinstance(model, str) and model in error.message))
    if error.status == 404 and names_model:
        error.hint = "See `oaicli models list` for the models this key can use."
    return error


def _text(value) -> str | None:
    return None if value is None else str(value)


def whole_answer(body: bytes, content_type: str, method: str, path: str) -> dict:
    """A server that ignored `stream` answers with one JSON document; anything else (a proxy's or a
    captive portal's HTML page with status 200) is a failed request, not an answer."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = None
    if not isinstance(document, dict):
        kind = content_type.split(";")[0].strip() or "a body of no type"
        raise StreamError(f"The server answered the streamed {method} {path} with {kind}, not an event "
                          "stream or JSON (a proxy or login page?).",
                          "Nothing was saved; check --base-url and your proxy settings.")
    return document


def json_document(body: bytes, method: str, path: str):
    """A non-streamed answer's JSON; an HTML page or other text is a NetworkError that says so."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise NetworkError(f"The server answered {method} {path} with something that is not JSON.",
                           "Is --base-url pointing at an OpenAI-compatible API?") from exc



def _problem_message(body: dict) -> str:
    """RFC 7807 bodies (Prism, proxies): the title plus any validation messages."""
    message = body.get("title") or body.get("detail")
    details = [f"{'.'.join(map(str, v.get('location', [])))}: {v.get('message')}"
               for v in body.get("validation", []) if isinstance(v, dict)]
    return f"{message}: {'; '.join(details)}" if details else str(body.get("detail") or message)


def _plain_message(response: httpx.Response) -> str:
    text = response.text.strip()
    reason = response.reason_phrase or "error"
    if not text:
        return f"The server answered {response.status_code} {reason} with an empty body"
    if text.lstrip().lower().startswith(("<!doctype", "<html")) or "text/html" in response.headers.get(
            "content-type", ""):
        return f"The server answered {response.status_code} {reason} with an HTML page (a proxy or gateway error?)"
    first_line = text.splitlines()[0][:200]
    return f"The server answered {response.status_code} {reason}: {first_line}"


BAR_STEP = 1 << 20  # bytes between progress-bar updates: tqdm.update per socket read costs ~0.1 s a GiB


def copy_body(response: httpx.Response, sink, bar=None) -> int:
    """The one stream-to-file copy (API downloads, image URLs, saved transcripts): the body's bytes into
    `sink` as they arrive, counted on `bar` if given (at most once a MiB, and in full at the end); the
    number of bytes."""
    written = shown = 0
    # No chunk_size: re-chunking the socket reads into bigger pieces doubled the CPU of a download.
    for chunk in response.iter_bytes():
        sink.write(chunk)
        written += len(chunk)
        if bar is not None and written - shown >= BAR_STEP:
            bar.update(written - shown)
            shown = written
    if bar is not None and written > shown:
        bar.update(written - shown)
    sink.flush()
    return written


class _CountingSink:
    """A sink that counts what went into it, so a broken download can say how much already went out."""

    def __init__(self, sink):
        self.sink = sink
        self.count = 0

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.count += len(chunk)

    def flush(self) -> None:
        self.sink.flush()


def _after_a_break(where, count: int) -> str:
    """What a broken download left: a file target keeps nothing (atomic); stdout keeps what went out."""
    if where is not None:
        return f"Nothing was written at {where}; try again."
    if not count:
        return "Nothing was written to stdout; try again."
    return (f"The first {count} bytes already went to stdout and are incomplete; "
            "download again (with -o FILE, nothing partial is kept).")


def _widen_socket_reads() -> None:
    """httpcore reads the socket 64 KiB at a time, each read a trip through h11; 1 MiB reads cut a
    download's CPU by a fifth (benchmarks/download.py). A class attribute of httpcore's, hence the guard."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
        HTTP11Connection.READ_NUM_BYTES = max(HTTP11Connection.READ_NUM_BYTES, 1 << 20)
    except (ImportError, AttributeError):
        pass




def _to_stderr(text: str) -> None:
    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()
