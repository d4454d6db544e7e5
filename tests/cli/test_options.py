"""Shared options: each command gets its own copy, so adjusting one command's option leaves the rest alone."""

import click

from oaicli.cli import options


def test_each_command_gets_its_own_copy_of_the_shared_options():
    group = click.Group("g")

    @options.command(group, "one")
    def one():
        """One."""

    @options.command(group, "two")
    @options.list_options
    def two():
        """Two."""

    timeout_one = next(p for p in one.params if p.name == "timeout")
    timeout_two = next(p for p in two.params if p.name == "timeout")
    assert timeout_one is not timeout_two
    timeout_one.help = "Only for one."
    assert timeout_two.help == "Request timeout."
    assert [p.name for p in two.params][-3:] == ["limit", "fetch_all", "raw"]


def test_the_options_come_in_order_own_options_first():
    group = click.Group("g")

    @options.command(group, "cmd", formats=("text",))
    @click.option("--mine")
    def cmd(mine):
        """Cmd."""

    names = [p.name for p in cmd.params]
    assert names[0] == "mine"
    assert names[1:] == ["api_key", "base_url", "organization", "project", "api_type", "api_version", "profile",
                         "timeout", "max_retries", "verbose", "quiet", "format", "jq", "raw_output"]
    assert next(p for p in cmd.params if p.name == "format").type.choices == ("table", "json", "jsonl", "yaml", "text")
