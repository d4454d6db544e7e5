"""`oaicli models`: list, get and delete models (/v1/models)."""

import click

from oaicli.cli import completion, invocation
from oaicli.cli.options import command, list_options, yes_option
from oaicli.core.models import model_path

COLUMNS = ["id", "owned_by", "created"]


@click.group()
def models():
    """List, inspect and delete models.

    \b
    Example:
      oaicli models list
    """


@command(models, "list")
@list_options
def list_models():
    """List the models the key can use.

    \b
    Example:
      oaicli models list --format json | jq -r '.[].id'
    """
    from oaicli.core import model_ids
    from oaicli.output import writers as output
    page = invocation.current().client().list_all("/models", {"limit": invocation.flag("limit")},
                                          fetch_all=bool(invocation.flag("fetch_all")))
    page["data"].sort(key=lambda model: model.get("id", ""))
    model_ids.remember(invocation.current().settings.base_url, [m["id"] for m in page["data"] if m.get("id")])
    output.render_list(page, COLUMNS, raw=bool(invocation.flag("raw")))


@command(models, "get")
@click.argument("model", shell_complete=completion.model_ids)
def get_model(model):
    """Show one model.

    \b
    Example:
      oaicli models get gpt-4o
    """
    from oaicli.output import writers as output
    output.render_object(invocation.current().client().get(model_path(model)))


@command(models, "delete")
@click.argument("model", shell_complete=completion.model_ids)
@yes_option
def delete_model(model, yes):
    """Delete a fine-tuned model you own. Asks first on a terminal; a script must pass --yes.

    \b
    Example:
      oaicli models delete ft:gpt-4o-mini:acme::abc123 --yes
    """
    from oaicli.output import prompts
    from oaicli.output import writers as output
    prompts.confirm_or_abort(f"Delete model {model}?", yes)
    output.render_object(invocation.current().client().delete(model_path(model)))
