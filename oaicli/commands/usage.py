"""`oaicli usage` and `oaicli costs`: the organization's token usage and costs of the last days, as tables
with totals (or json/jsonl/yaml rows), read with the admin key (OPENAI_ADMIN_KEY)."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command

DAYS = click.IntRange(1, 366)


@command(None, "usage")
@click.option("--days", type=DAYS, default=7, show_default=True, help="How many days back, today included.")
@click.option("--group-by", type=click.Choice(["model", "project", "day"]), default="model", show_default=True,
              help="One row per day and model, per day and project, or per day (with cost, for project and day).")
def usage(days, group_by):
    """Show the organization's token usage per day: requests, tokens in and out, with totals.

    Reads /organization/usage/completions (and /organization/costs for --group-by day or project) with
    OPENAI_ADMIN_KEY. Days are UTC.

    \b
    Example:
      oaicli usage --days 7 --group-by day --format table
    """
    from oaicli.jobs import usage as reports
    rows = reports.usage_rows(invocation.current().admin_client(), days, group_by)
    _render(rows, reports)


@command(None, "costs")
@click.option("--days", type=DAYS, default=7, show_default=True, help="How many days back, today included.")
@click.option("--group-by", type=click.Choice(["line-item", "project", "day"]), default="line-item",
              show_default=True, help="One row per day and line item (model and direction), project, or day.")
def costs(days, group_by):
    """Show the organization's costs in USD per day, with the total.

    Reads /organization/costs with OPENAI_ADMIN_KEY. Days are UTC.

    \b
    Example:
      oaicli costs --days 30 --group-by day
    """
    from oaicli.jobs import usage as reports
    rows = reports.cost_rows(invocation.current().admin_client(), days, group_by)
    _render(rows, reports)


def _render(rows: list[dict], reports) -> None:
    """A table ends with a total row; json, jsonl and yaml give the rows alone, for scripts to sum as they like."""
    from oaicli.output import writers as output
    fmt = output.resolve_format()
    if fmt == "table" and rows and not invocation.flag("jq"):
        rows = [*rows, reports.total_row(rows, "day")]
    output.render_list(rows, columns=list(rows[0]) if rows else None, fmt=fmt)
