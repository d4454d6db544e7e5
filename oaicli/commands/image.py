"""`oaicli image`: create, edit and vary images (/v1/images), saving results to files by default."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command


@click.group()
def image():
    """Create, edit and vary images; results are saved as files.

    \b
    Example:
      oaicli image create "a watercolour fox" -n 2 -o pictures/
    """


def _shared(func):
    """Options every image command takes."""
    for option in reversed([
        click.option("-m", "--model", help="Image model (default dall-e-2; dall-e-3, gpt-image-1 ...)."),
        click.option("-n", "n", type=int, help="How many images, 1 to 10 (dall-e-3: 1)."),
        click.option("--size", help="Image size such as 1024x1024; allowed sizes depend on the model."),
        click.option("--response-format", type=click.Choice(["url", "b64_json"]),
                     help="How the API returns images (dall-e models; gpt-image always sends base64)."),
        click.option("--user", help="An end-user id for abuse monitoring."),
        click.option("-o", "--output-dir", default=".", show_default=True, type=click.Path(file_okay=False),
                     help="Where to save images; names are a slug of the prompt plus a number."),
        click.option("--no-save", is_flag=True, help="Do not save: print the URLs, or the JSON answer."),
    ]):
        func = option(func)
    return func


def _gpt_image_options(func):
    for option in reversed([
        click.option("--quality", type=click.Choice(["standard", "hd", "low", "medium", "high", "auto"]),
                     help="hd for dall-e-3; low, medium, high or auto for gpt-image models."),
        click.option("--background", type=click.Choice(["transparent", "opaque", "auto"]),
                     help="Background (gpt-image models)."),
        click.option("--output-format", type=click.Choice(["png", "jpeg", "webp"]),
                     help="File format of the images (gpt-image models)."),
    ]):
        func = option(func)
    return func


@command(image, "create")
@click.argument("prompt")
@_shared
@_gpt_image_options
@click.option("--style", type=click.Choice(["vivid", "natural"]), help="Style (dall-e-3).")
def create(prompt, model, n, size, response_format, user, output_dir, no_save, quality, background,
           output_format, style):
    """Create images from a prompt and save them (/v1/images/generations).

    Prints each saved path on its own line; --format json prints the API's answer with a
    `path` added to each image. Existing files are never overwritten.

    \b
    Example:
      oaicli image create "a lighthouse at dusk" -m dall-e-3 --size 1792x1024 --quality hd
    """
    from oaicli.media.images import check_request
    model = _model(model)
    check_request(model, n, size)
    _ready(output_dir, no_save)
    body = _fields(prompt=prompt, model=model, n=n, size=size, response_format=response_format, user=user,
                   quality=quality, background=background, output_format=output_format, style=style)
    answer = invocation.current().client().post("/images/generations", json=body)
    _finish(answer, output_dir, prompt, output_format, no_save)


@command(image, "edit")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-p", "--prompt", required=True, help="What the edited image should show.")
@click.option("--mask", help="A PNG whose transparent pixels mark where to edit (same size as IMAGE).")
@_shared
@_gpt_image_options
def edit(images, prompt, mask, model, n, size, response_format, user, output_dir, no_save, quality, background,
         output_format):
    """Edit an image from a prompt and save the results (/v1/images/edits).

    dall-e-2 takes one square PNG under 4 MB with transparency, or a --mask; gpt-image
    models take up to 16 images.

    \b
    Example:
      oaicli image edit room.png --mask window.png --prompt "a window onto the sea"
    """
    from oaicli.media import images as image_files
    model = _model(model)
    image_files.check_request(model, n, size)
    paths = [image_files.check_exists(p) for p in images]
    mask_path = image_files.check_exists(mask, "Mask") if mask else None
    if model == "dall-e-2":
        _check_dalle2_edit(paths, mask_path)
    image_files.check_edit_count(model, len(paths))
    _ready(output_dir, no_save)
    fields = _fields(prompt=prompt, model=model, n=n, size=size, response_format=response_format, user=user,
                     quality=quality, background=background, output_format=output_format)
    uploads = [("image", path) for path in paths] + ([("mask", mask_path)] if mask_path else [])
    answer = _upload("/images/edits", fields, uploads)
    _finish(answer, output_dir, prompt, output_format, no_save)


@command(image, "variation")
@click.argument("image_path", metavar="IMAGE")
@_shared
def variation(image_path, model, n, size, response_format, user, output_dir, no_save):
    """Make variations of a square PNG and save them (/v1/images/variations; dall-e-2).

    \b
    Example:
      oaicli image variation otter.png -n 3 --size 512x512
    """
    from oaicli.media import images as image_files
    model = _model(model)
    image_files.check_request(model, n, size)
    path = image_files.check_exists(image_path)
    if model == "dall-e-2":
        image_files.check_dalle2_png(path)
    _ready(output_dir, no_save)
    fields = _fields(model=model, n=n, size=size, response_format=response_format, user=user)
    answer = _upload("/images/variations", fields, [("image", path)])
    _finish(answer, output_dir, f"{path.stem} variation", None, no_save)


def _model(model):
    return model or invocation.current().settings.default_model("image")


def _ready(output_dir: str, no_save: bool) -> None:
    """A folder we cannot write fails before the request: the images would be paid for and lost."""
    if not no_save:
        from pathlib import Path

        from oaicli.output.files import ready_directory
        ready_directory(Path(output_dir))


def _fields(**values) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def _check_dalle2_edit(paths, mask_path):
    from oaicli.core.errors import InputError
    from oaicli.media import images as image_files
    if len(paths) > 1:
        raise InputError(f"dall-e-2 edits one image at a time (got {len(paths)}); gpt-image models take several.")
    info = image_files.check_dalle2_png(paths[0])
    if mask_path:
        image_files.check_mask(mask_path, info)
    elif not info.has_alpha:
        raise InputError(f"Image {paths[0]} has no transparency, so dall-e-2 cannot tell where to edit; "
                         "give a --mask or a PNG with transparent pixels.")


def _upload(path: str, fields: dict, uploads: list) -> dict:
    """A multipart POST; files are streamed from disk (and rewound by the client on a retry)."""
    import contextlib

    from oaicli.api.uploads import ProgressReader
    from oaicli.core.mime import mime_type
    from oaicli.output.progress import progress_bar
    total = sum(p.stat().st_size for _, p in uploads)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(progress_bar(total, "Uploading"))
        files = [(name, (p.name, ProgressReader(stack.enter_context(open(p, "rb")), bar), mime_type(p)))
                 for name, p in uploads]
        return invocation.current().client().post(path, data={k: str(v) for k, v in fields.items()}, files=files)


def _finish(answer: dict, output_dir: str, name: str, output_format, no_save: bool) -> None:
    """Save (unless --no-save) and print paths, URLs, or the JSON answer."""
    from pathlib import Path

    from oaicli.media import images as image_files
    from oaicli.output import writers as output
    fmt = output.chosen_format()
    items = answer.get("data") or []
    if no_save:
        urls = [item["url"] for item in items if item.get("url")]
        if fmt in ("json", "jsonl") or len(urls) != len(items):
            return _print_json(answer, fmt)
        for url in urls:
            output.write(url)
        return
    api = invocation.current().client()
    as_json = fmt in ("json", "jsonl")
    extension = image_files.EXTENSIONS.get(output_format or "png", "png")
    with image_files.url_fetcher(api) as fetch:
        image_files.save_all(items, Path(output_dir), image_files.slug(name), extension, fetch,
                             on_saved=lambda path: None if as_json else output.write(str(path)))
    if as_json:
        _print_json(answer, fmt)


def _print_json(answer: dict, fmt) -> None:
    from oaicli.output import writers as output
    if fmt == "jsonl":
        for item in answer.get("data") or []:
            output.write_json_line(item)
    else:
        output.write(output.dumps(answer))
