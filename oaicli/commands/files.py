"""`oaicli files`: upload, list, get, delete and download files (/v1/files, /v1/uploads)."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import InputFile, command, list_options, wait_deadline, yes_option

COLUMNS = ["id", "filename", "purpose", "bytes", "status", "created_at"]
PURPOSES = ["fine-tune", "assistants", "batch", "vision", "user_data", "evals"]


@click.group()
def files():
    """Upload, list, inspect, download and delete files.

    \b
    Example:
      oaicli files upload train.jsonl --purpose fine-tune --wait
    """


@command(files, "upload", formats=("plain",))
@click.argument("paths", nargs=-1, required=True, metavar="FILE...",
                type=InputFile())
@click.option("--purpose", type=click.Choice(PURPOSES), required=True, help="What the file is for.")
@click.option("--wait", is_flag=True, help="Poll until each file is processed (with --timeout as the limit).")
@click.option("--no-validate", is_flag=True, help="Skip the local check of fine-tune data.")
@click.option("--model", default="gpt-4o-mini", show_default=True,
              help="Model whose token limit the fine-tune check applies.")
def upload(paths, purpose, wait, no_validate, model):
    """Upload files, streamed from disk with a progress bar on stderr.

    Files over 512 MB go through the Uploads API in 64 MB parts when the server has it.
    With --format plain only the new file IDs are printed, one a line.

    \b
    Example:
      FILE_ID=$(oaicli files upload train.jsonl --purpose fine-tune --wait --format plain)
    """
    from pathlib import Path

    from oaicli.api import uploads
    from oaicli.jobs import training_data
    from oaicli.output import writers as output
    from oaicli.output.progress import progress_bar
    api = invocation.current().client()
    if purpose == "fine-tune" and not no_validate:
        for path in paths:
            training_data.refuse_invalid(Path(path), model)
    uploaded = [uploads.upload_one(api, Path(path), purpose, progress_bar, output.notice, wait, wait_deadline())
                for path in paths]
    if output.resolve_format() == "plain":
        output.write("\n".join(item["id"] for item in uploaded))
    else:
        output.render_list(uploaded, COLUMNS)


for _param in upload.params:
    if _param.name == "timeout":
        _param.help = "Request timeout; with --wait also the longest wait for processing (exit 8)."


@command(files, "list")
@click.option("--purpose", type=click.Choice(PURPOSES), help="Only files with this purpose.")
@list_options
def list_files(purpose):
    """List uploaded files, newest first.

    \b
    Example:
      oaicli files list --purpose fine-tune --format json | jq -r '.[].id'
    """
    from oaicli.output import writers as output
    page = invocation.current().client().list_all("/files", {"purpose": purpose, "limit": invocation.flag("limit")},
                                          fetch_all=bool(invocation.flag("fetch_all")))
    output.render_list(page, COLUMNS, raw=bool(invocation.flag("raw")))


@command(files, "get")
@click.argument("file_id")
def get_file(file_id):
    """Show one file's details.

    \b
    Example:
      oaicli files get file-abc123
    """
    from oaicli.output import writers as output
    output.render_object(invocation.current().client().get(f"/files/{file_id}"))


@command(files, "delete")
@click.argument("file_id")
@yes_option
def delete_file(file_id, yes):
    """Delete a file. Asks first on a terminal; a script must pass --yes.

    \b
    Example:
      oaicli files delete file-abc123 --yes
    """
    from oaicli.output import prompts
    from oaicli.output import writers as output
    prompts.confirm_or_abort(f"Delete file {file_id}?", yes)
    output.render_object(invocation.current().client().delete(f"/files/{file_id}"))


@command(files, "content")
@click.argument("file_id")
@click.option("-o", "--output", "path", type=click.Path(dir_okay=False, writable=True),
              help="Write here (atomically: nothing appears unless the download completes); else stdout.")
def content(file_id, path):
    """Download a file's content, streamed, with a progress bar on stderr.

    \b
    Example:
      oaicli files content file-abc123 -o results.csv
    """
    from pathlib import Path

    from oaicli.output import writers as output
    from oaicli.output.files import download_target
    from oaicli.output.progress import progress_bar
    destination = Path(path) if path else None
    with progress_bar(None, file_id) as bar, download_target(destination) as sink:
        written = invocation.current().client().download(f"/files/{file_id}/content", sink, bar, where=destination)
    if path:
        output.notice(f"Wrote {written} bytes to {path}.")
