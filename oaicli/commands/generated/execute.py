"""The seam between the generated commands and the network: a Request in, the answer sent and rendered."""

from oaicli.cli import invocation
from oaicli.commands.generated.request import Request


def execute(request: Request, whole: bool = False) -> None:
    """Send `request` with the invocation's API client (the admin client when request.admin), following its
    pagination (--all / --max-items), streaming a binary answer to -o FILE and SSE events as they come, and
    render the answer through the output layer (`whole`: a list's JSON is the page object, as `oaicli api`
    prints it, rather than its items)."""
    from oaicli.api import generic
    from oaicli.output import writers as output
    current = invocation.current()
    client = current.admin_client() if request.admin else current.client()
    if request.expects == "binary":
        return _download(client, request, current)
    if request.expects == "sse":
        return output.render_events(generic.events(client, request))
    answer = generic.collect(client, request) if request.paginate and request.fetch_all else generic.send(client, request)
    output.render_answer(answer, whole=whole)


def _download(client, request: Request, current) -> None:
    """To -o FILE (written atomically, a progress bar on a terminal's stderr), or to stdout when it is not a
    terminal (the command refused a terminal before sending)."""
    from pathlib import Path

    from oaicli.api import generic
    from oaicli.output import files, progress
    from oaicli.output import writers as output
    destination = Path(request.output) if request.output else None
    if destination is not None:
        files.ready_file(destination)  # a bad -o costs nothing: checked before the request
    with progress.progress_bar(None, destination.name if destination else request.path) as bar, \
            files.download_target(destination) as sink:
        written = generic.download(client, request, sink, bar, destination)
    if destination is not None:
        output.notice(f"Wrote {written} bytes to {destination}.")
