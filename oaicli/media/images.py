"""Local side of `oaicli image`: checks on inputs before any upload, and saving results under unique names."""

import base64
import contextlib
import os
import re
from pathlib import Path

import httpx

from oaicli.api.client import copy_body
from oaicli.core.errors import InputError, NetworkError
from oaicli.core.inputs import input_file
from oaicli.media.png import NotPNG, read_info
from oaicli.output.files import atomic_writer
from oaicli.output.progress import progress_bar

MAX_DALLE2_BYTES = 4 * 1024 * 1024
MAX_GPT_IMAGE_EDITS = 16
GPT_IMAGE_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def allowed_sizes(model: str) -> tuple[str, ...] | None:
    """Sizes the model accepts, or None for a model we do not know (another server's): no local check."""
    if model in SIZES:
        return SIZES[model]
    if model.startswith("gpt-image-1"):
        return GPT_IMAGE_SIZES
    return None


def check_request(model: str, n: int | None, size: str | None) -> None:
    if n is not None and not 1 <= n <= 10:
        raise InputError(f"-n must be between 1 and 10 (got {n}).")
    if n is not None and n != 1 and model == "dall-e-3":
        raise InputError(f"dall-e-3 makes one image per request: -n must be 1 (got {n}).")
    sizes = allowed_sizes(model)
    if size and sizes and size not in sizes:
        raise InputError(f"--size {size} is not available for {model}; choose one of {', '.join(sizes)}.")


def check_edit_count(model: str, count: int) -> None:
    if model.startswith("gpt-image") and count > MAX_GPT_IMAGE_EDITS:
        raise InputError(f"{model} edits at most {MAX_GPT_IMAGE_EDITS} images at a time (got {count}).")


def check_exists(path: str, what: str = "Image") -> Path:
    return input_file(path, f"{what} file")


def check_dalle2_png(path: Path, what: str = "Image"):
    """dall-e-2 edits and variations: a real PNG (by signature), square, under 4 MB."""
    try:
        info = read_info(path)
    except NotPNG as exc:
        raise InputError(f"{what} {path} is {exc}; dall-e-2 needs a PNG.")
    if path.stat().st_size >= MAX_DALLE2_BYTES:
        raise InputError(f"{what} {path} is {path.stat().st_size / 1048576:.1f} MB; dall-e-2 needs under 4 MB.")
    if not info.square:
        raise InputError(f"{what} {path} is {info.width}x{info.height}; dall-e-2 needs a square image.")
    return info


def check_mask(mask: Path, image_info) -> None:
    info = check_dalle2_png(mask, "Mask")
    if (info.width, info.height) != (image_info.width, image_info.height):
        raise InputError(f"Mask {mask} is {info.width}x{info.height} but the image is "
                         f"{image_info.width}x{image_info.height}; they must match.")
    if not info.has_alpha:
        raise InputError(f"Mask {mask} has no alpha channel; its transparent pixels mark where to edit.")


def slug(text: str, limit: int = 40) -> str:
    """Lower-case letters and digits (any script) joined by hyphens: `A fox, über alles!` -> `a-fox-über-alles`."""
    words = re.sub(r"[\W_]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "image"


def claim(directory: Path, stem: str, extension: str) -> Path:
    """The first free `stem-N.ext` in directory, created empty at once (O_EXCL) so that no other run,
    and no existing file, is ever overwritten. Only for file systems without hard links (see place)."""
    directory.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        path = directory / f"{stem}-{index}.{extension}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return path
        except FileExistsError:
            index += 1


def place(finished: Path, directory: Path, stem: str, extension: str) -> Path:
    """Give a finished file the first free `stem-N.ext`. A hard link fails rather than replace a name,
    so no file is ever overwritten (not even one another run saves at that moment), and the name
    appears only with the whole image in it: nothing half-made or empty is left under it by a kill."""
    index = 1
    while True:
        path = directory / f"{stem}-{index}.{extension}"
        try:
            os.link(finished, path)
        except FileExistsError:
            index += 1
            continue
        except OSError:  # no hard links here (FAT, some network shares): claim a name, then replace it
            path = claim(directory, stem, extension)
            os.replace(finished, path)
            return path
        finished.unlink()
        return path


def save_all(items: list[dict], directory: Path, stem: str, extension: str, fetch, on_saved) -> list[Path]:
    """Save every result (base64 decoded, URLs streamed), calling on_saved(path) as each lands.
    Each is written under a hidden name of this process's, then placed (see place)."""
    saved = []
    directory.mkdir(parents=True, exist_ok=True)
    for number, item in enumerate(items, 1):
        staging = directory / f".{stem}.{os.getpid()}.{number}.{extension}"
        try:
            _save_one(item, staging, fetch, f"{stem} {number}/{len(items)}")
            path = place(staging, directory, stem, extension)
        finally:
            staging.unlink(missing_ok=True)
        saved.append(path)
        item["path"] = str(path)
        on_saved(path)
    return saved


def _save_one(item: dict, path: Path, fetch, label: str) -> None:
    if item.get("b64_json"):
        with atomic_writer(path) as sink:
            sink.write(base64.b64decode(item["b64_json"]))
    elif item.get("url"):
        fetch(item["url"], path, label)
    else:
        raise NetworkError("The server returned an image with neither b64_json nor url.")


@contextlib.contextmanager
def url_fetcher(client):
    """A fetch(url, path, label) for result URLs (a CDN), through one plain HTTP client made on first use:
    the API key must never be sent to the image host. One client for all the images, not one each:
    each loads the CA certificates (about 20 ms) and opens its own TLS connection."""
    plain = None

    def fetch(url: str, path: Path, label: str) -> None:
        nonlocal plain
        if plain is None:
            plain = httpx.Client(timeout=client.settings.timeout, follow_redirects=True)
        fetch_url(client, plain, url, path, label)

    try:
        yield fetch
    finally:
        if plain is not None:
            plain.close()


def fetch_url(client, plain: httpx.Client, url: str, path: Path, label: str) -> None:
    """Stream a result URL to a file atomically through `plain` (no credentials). Retried like API calls."""
    retry = client.retry
    for attempt, last in retry.attempts():
        try:
            with plain.stream("GET", url) as response:
                if retry.retries(response.status_code, last):
                    retry.wait(response, attempt)
                    continue
                if response.status_code >= 400:
                    raise NetworkError(f"Downloading {_short(url)} failed: HTTP {response.status_code}.",
                                       "Image URLs expire after an hour; run the command again.")
                return _write(response, path, label)
        except httpx.TransportError as exc:
            if last:
                raise NetworkError(f"Downloading {_short(url)} failed: {exc or exc.__class__.__name__}.",
                                   "Nothing was saved at that path; try again.") from exc
            retry.wait(None, attempt)


def _write(response: httpx.Response, path: Path, label: str) -> None:
    total = int(response.headers.get("content-length") or 0) or None
    with progress_bar(total, label) as bar, atomic_writer(path) as sink:
        copy_body(response, sink, bar)


def _short(url: str) -> str:
    return url.split("?", 1)[0]
