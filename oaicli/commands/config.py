"""`oaicli config`: the effective settings and where each came from."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command


@click.group()
def config():
    """Show the effective configuration and the config file's path.

    Profiles live in config.toml in the config directory (OAICLI_HOME overrides it):

    \b
      default_profile = "work"
      [profiles.work]
      base_url = "http://127.0.0.1:8000/v1"
      organization = "org-123"
      format = "json"
      models = { chat = "gpt-4o", embed = "text-embedding-3-small" }

    Precedence: flags > environment > profile > stored key > defaults.

    \b
    Example:
      oaicli config show
    """


@command(config, "show")
def show():
    """Print every effective setting (the key masked) with its source.

    \b
    Example:
      oaicli --profile work config show
    """
    from oaicli.output import writers as output
    rows = invocation.current().settings.as_rows()
    if output.resolve_format() == "table":
        output.render_list(rows, ["setting", "value", "source"])
    else:
        output.render_object({row["setting"]: {"value": row["value"], "source": row["source"]} for row in rows})


@config.command("path")
def path():
    """Print the path of the config file.

    \b
    Example:
      $EDITOR "$(oaicli config path)"
    """
    from oaicli.core import settings
    click.echo(str(settings.config_path()))
