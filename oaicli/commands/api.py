"""`oaicli api METHOD PATH`: any request, as `gh api` sends one; checked against the operations table when the
path is one of the API's, sent as is otherwise (any OpenAI-compatible server's own paths)."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command


@command(None, "api")
@click.argument("words", nargs=-1, required=True, metavar="[METHOD] PATH")
@click.option("-f", "--raw-field", "raw_fields", multiple=True, metavar="KEY=VALUE",
              help="A string field (a query parameter for GET and DELETE, else a body field); repeatable.")
@click.option("-F", "--field", "typed_fields", multiple=True, metavar="KEY=VALUE",
              help="A typed field: true, false, null, numbers and JSON become JSON; @FILE reads the file "
                   "(uploads it when the operation takes a file); repeatable.")
@click.option("--input", "input_path", metavar="FILE|-", help="The request body: a JSON file, or - for stdin.")
@click.option("-H", "--header", "headers", multiple=True, metavar="NAME:VALUE", help="An HTTP header; repeatable.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write a binary answer (audio, video, file content) to FILE.")
@click.option("--all", "fetch_all", is_flag=True, help="Follow the pagination to the last page.")
@click.option("--max-items", type=click.IntRange(min=1), help="Stop after N items (implies --all).")
def api(words, raw_fields, typed_fields, input_path, headers, output, fetch_all, max_items):
    """Send any request to the API, like `gh api`: PATH is relative to the base URL.

    METHOD defaults to GET, or POST when fields or --input are given. A PATH the operations table knows
    is checked against it first (field names, types, enums, required fields: exit 4, nothing sent);
    any other PATH is sent as it is. Query parameters may be written in PATH.

    \b
    Example:
      oaicli api GET /models --jq '.data[].id' -r
      oaicli api POST /vector_stores -f name=docs
      oaicli api /batches --all --max-items 50 --format table
    """
    import sys

    from oaicli.commands.generated.api_request import build
    from oaicli.commands.generated.execute import execute
    request = build(words, raw_fields, typed_fields, input_path, headers, output=output, fetch_all=fetch_all,
                    max_items=max_items, is_terminal=lambda: invocation.current().stdout_tty,
                    stdin=sys.stdin)
    execute(request, whole=True)
