"""`oaicli keys`: store the API key in a private file (mode 0600) in the config directory."""

import click

from oaicli.options import command, connection_options


@click.group()
def keys():
    """Store, show (masked) and locate the API key.

    \b
    Example:
      oaicli keys set            # prompts with hidden input
    """


@keys.command("set")
@connection_options
def set_key():
    """Store a key for the current profile, read with hidden input (or from a pipe).

    \b
    Example:
      oaicli keys set --profile work
    """
    from oaicli import settings
    profile = settings.current().profile_name
    key = click.prompt(f"API key for profile {profile!r}", hide_input=True, err=True).strip()
    if not key:
        raise click.BadParameter("the key is empty", param_hint="key")
    path = settings.save_key(profile, key)
    click.echo(f"Saved the key for profile {profile!r} in {path} (mode 0600).", err=True)


@command(keys, "get")
def get_key():
    """Show the effective key, masked, and where it came from.

    \b
    Example:
      oaicli keys get
    """
    from oaicli import output, settings
    from oaicli.errors import mask
    current = settings.current()
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
    from oaicli import settings
    click.echo(str(settings.keys_path()))
