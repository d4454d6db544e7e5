"""`oaicli man`: write the man pages (generated from this version's commands) where `man` finds them."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command


@command(None, "man", output=False)
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--install", is_flag=True,
              help="Write them to $XDG_DATA_HOME/man/man1 (default ~/.local/share/man/man1).")
def man(directory, install):
    """Write the man pages, one per command, into DIRECTORY or with --install for this user.

    `man` looks in ~/.local/share/man when ~/.local/bin is on PATH (as pipx sets up); otherwise add
    it to MANPATH, as the command then says. For every user: `sudo oaicli man /usr/local/share/man/man1`.

    \b
    Example:
      oaicli man --install && man oaicli
      oaicli man ./man1
    """
    from pathlib import Path

    from oaicli.cli import manpages
    from oaicli.core.errors import InputError
    if bool(directory) == install:
        raise click.UsageError("Give a DIRECTORY or --install (not both).")
    folder = Path(directory) if directory else _user_man_root() / "man1"
    try:
        names = manpages.write(folder)
    except OSError as exc:
        raise InputError(f"Cannot write the man pages into {folder}: {exc.strerror or exc}.")
    say = invocation.current().notice
    say(f"Wrote {len(names)} man pages to {folder}.")
    if install and not _on_manpath(folder.parent):
        say(f"man does not look there yet; add it with: export MANPATH=\"{folder.parent}:$MANPATH\" "
            "(in ~/.bashrc), then: man oaicli")
    elif install:
        say("Read them with: man oaicli")


def _user_man_root():
    import os
    from pathlib import Path
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "man"


def _on_manpath(root) -> bool:
    """Whether `manpath` (man-db) lists the folder; unknown (no manpath) counts as no."""
    import shutil
    import subprocess
    if not shutil.which("manpath"):
        return False
    result = subprocess.run(["manpath"], capture_output=True, text=True)
    return str(root) in result.stdout.strip().split(":")
