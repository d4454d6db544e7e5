"""`oaicli keys`: store the API key in a private file (mode 0600) in the config directory."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import OaicliCommand, command, connection_options


@click.group()
def keys():
    """Store, show (masked) and locate the API key.

    \b
    Example:
      oaicli keys set            # prompts with hidden input
    """


@keys.command("set", cls=OaicliCommand)
@connection_options
def set_key():
    """Store a key for the current profile, read with hidden input (or from a pipe).

    \b
    Example:
      oaicli keys set --profile work
    """
    from oaicli.core import settings
    profile = invocation.current().settings.profile_name
    key = _read_key(f"API key for profile {profile!r}")
    if not key:
        raise click.BadParameter("the key is empty", param_hint="key")
    path = settings.save_key(profile, key)
    click.echo(f"Saved the key for profile {profile!r} in {path} (mode 0600).", err=True)


def _read_key(prompt: str) -> str:
    """Hidden input on a terminal; from a pipe, the first line (getpass would read the terminal instead)."""
    import sys
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, err=True).strip()
    return sys.stdin.readline().strip()


@command(keys, "get")
def get_key():
    """Show the effective key, masked, and where it came from.

    \b
    Example:
      oaicli keys get
    """
    from oaicli.core.errors import mask
    from oaicli.output import writers as output
    current = invocation.current().settings
    current.require_key()
    output.render_object({"key": mask(current.api_key), "source": current.source("api_key"),
                          "profile": current.profile_name})


@keys.command("path")
def key_path():
    """Print the path of the keys file.

    \b
    Example:
      ls -l "$(oaicli keys path)"
    """
    from oaicli.core import settings
    click.echo(str(settings.keys_path()))
