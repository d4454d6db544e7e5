"""A stand-in for a hand-written module that adds verbs to a generated group (cli/root.py's EXTRA_COMMANDS)."""

import click


@click.command("submit")
def submit():
    """Submit (a hand-written verb)."""
    click.echo("hand-written submit")


@click.command("get")
def get():
    """A hand-written get, which wins over the generated one."""
    click.echo("hand-written get")


extra_commands = [submit, get]
