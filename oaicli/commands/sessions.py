"""`oaicli sessions`: list, show, export, import, reset, rename and delete locally stored conversations."""

import click

from oaicli.cli import completion, invocation
from oaicli.cli.options import InputFile, command, store_option, yes_option
from oaicli.core.models import DEFAULT_MODELS

COLUMNS = ["name", "kind", "model", "turns", "updated_at"]
TURN_COLUMNS = ["id", "role", "content", "tokens", "question_id", "user_id", "created_at"]


@click.group()
def sessions():
    """Manage the conversations kept in the local store (named sessions and envelope contexts).

    The store is sessions.db in the data directory (OAICLI_HOME overrides it), or the one --store URL
    (or OAICLI_STORE) names: sqlite:///PATH or postgresql://USER@HOST/DB, shared with `oaicli serve`.

    \b
    Example:
      oaicli chat --session trip "Plan a day in Lisbon"
      oaicli sessions show trip
    """


def _store(must_exist: bool = True):
    """The store, or None when it was never created and the caller can do without it."""
    from oaicli.conversation import stores
    url = invocation.current().settings.store_url
    if not must_exist and not stores.exists(url):
        return None
    opened = stores.open_store(url)
    invocation.current().call_on_close(opened.close)
    return opened


def _require(name: str):
    from oaicli.core.errors import InputError
    found = _store(must_exist=False)
    if found is None:
        raise InputError(f"No session named {name!r}.", "See `oaicli sessions list`.")
    return found


@command(sessions, "list")
@store_option
def list_sessions():
    """List sessions and envelope contexts, most recently used first.

    \b
    Example:
      oaicli sessions list --format json | jq -r '.[].name'
    """
    from oaicli.output import writers as output
    store = _store(must_exist=False)
    output.render_list(store.list_sessions() if store else [], COLUMNS)


@command(sessions, "show", formats=("text",))
@store_option
@click.argument("name", shell_complete=completion.session_names)
@click.option("--last", type=click.IntRange(min=1), metavar="N", help="Only the newest N turns.")
def show_session(name, last):
    """Show a session's settings and turns.

    `--format text` prints the conversation as it went.

    \b
    Example:
      oaicli sessions show trip --last 10 --format text
    """
    from dataclasses import asdict

    from oaicli.output import writers as output
    store = _require(name)
    session = store.require_session(name)
    turns = store.last_turns(session.id, last) if last else list(store.turns(session.id))
    fmt = output.resolve_format()
    if fmt == "text":
        _print_conversation(session, turns)
        return
    info = {key: value for key, value in asdict(session).items() if key != "id"}
    rows = [_turn_row(turn) for turn in turns]
    if fmt in ("json", "jsonl"):
        output.render_object({**info, "turns": rows}, fmt=fmt)
    else:
        output.render_object(info)
        output.write("")
        output.render_list(rows, TURN_COLUMNS)


def _turn_row(turn) -> dict:
    return {"id": turn.id, "role": turn.role, "content": turn.content, "tokens": turn.tokens,
            "question_id": turn.question_id, "user_id": turn.user_id, "model": turn.model,
            "usage": turn.usage, "created_at": turn.created_at}


def _print_conversation(session, turns) -> None:
    """The conversation as text; on a terminal, control characters that envelope clients sent (in
    user ids or messages) are shown escaped, so they cannot drive the terminal."""
    from oaicli.cli import invocation
    from oaicli.output import writers as output
    from oaicli.output.escape import printable
    shown = printable if invocation.current().stdout_tty else str
    if session.system:
        output.write(shown(f"[system] {session.system}\n"))
    for turn in turns:
        who = f"{turn.role} {turn.user_id}" if turn.user_id and turn.role == "user" else turn.role
        output.write(shown(f"[{who}] {turn.content}\n"))


@sessions.command("export")
@store_option
@click.argument("name", shell_complete=completion.session_names)
@click.option("--request", "as_request", is_flag=True,
              help="Print a whole /v1/chat/completions body: {\"model\": ..., \"messages\": [...]}.")
def export_session(name, as_request):
    """Print a session as a messages array (JSON).

    The Chat Completions messages array, system prompt first, ready to POST.

    \b
    Example:
      oaicli sessions export trip > trip.json
      oaicli sessions export trip --request | curl -s https://api.openai.com/v1/chat/completions \\
        -H "Authorization: Bearer $OPENAI_API_KEY" -H 'Content-Type: application/json' -d @-
    """
    import json

    from oaicli.output import writers as output
    store = _require(name)
    messages = store.export_messages(name)
    if as_request:
        model = store.require_session(name).model or DEFAULT_MODELS["chat"]
        messages = {"model": model, "messages": messages}
    output.write(json.dumps(messages, ensure_ascii=False, indent=2))


@command(sessions, "import")
@store_option
@click.argument("name", shell_complete=completion.session_names)
@click.argument("file", type=InputFile(allow_dash=True))
@click.option("--replace", is_flag=True, help="Replace the turns of an existing session.")
@click.option("--append", is_flag=True, help="Add to the turns of an existing session.")
@click.option("-m", "--model", metavar="MODEL", help="The session's model.")
def import_session(name, file, replace, append, model):
    """Create a session from a messages array (JSON).

    FILE (or - for stdin) holds a messages array as `export` prints it.

    A leading system message becomes the session's system prompt. A whole request body
    ({"model": ..., "messages": [...]}) is accepted too.

    \b
    Example:
      oaicli sessions import trip2 trip.json
      cat history.json | oaicli sessions import support -
    """
    from oaicli.core.errors import InputError
    from oaicli.output import writers as output
    if replace and append:
        raise click.UsageError("--replace and --append exclude each other.")
    if not name.strip():
        raise InputError("The session name is empty.")
    messages, body_model = _read_messages(file)
    store = _store()
    with store.exclusive(name):
        count = store.import_messages(name, messages, replace=replace, append=append, model=model or body_model)
    output.render_object({"name": name, "imported_turns": count})


def _read_messages(path: str) -> tuple[list, str | None]:
    import json
    import sys

    from oaicli.core.errors import InputError
    label = "stdin" if path == "-" else path
    try:
        if path == "-":
            data = json.loads(sys.stdin.buffer.read())
        else:
            with open(path, "rb") as handle:
                data = json.loads(handle.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{label} is not valid JSON: {exc}.", "Expected a messages array as `sessions export` prints it.")
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        return data["messages"], data.get("model") if isinstance(data.get("model"), str) else None
    return data, None


@command(sessions, "reset")
@store_option
@click.argument("name", shell_complete=completion.session_names)
@yes_option
def reset_session(name, yes):
    """Forget a session's turns but keep the session.

    The name, model and system prompt stay. Asks first on a terminal; a script must pass --yes.

    \b
    Example:
      oaicli sessions reset trip --yes
    """
    from oaicli.output import prompts
    from oaicli.output import writers as output
    store = _require(name)
    store.require_session(name)
    prompts.confirm_or_abort(f"Remove every turn of session {name!r}?", yes)
    with store.exclusive(name):
        removed = store.reset(name)
    output.render_object({"name": name, "removed_turns": removed})


@command(sessions, "rename")
@store_option
@click.argument("old", shell_complete=completion.session_names)
@click.argument("new")
def rename_session(old, new):
    """Rename a session.

    \b
    Example:
      oaicli sessions rename trip lisbon-trip
    """
    from oaicli.output import writers as output
    store = _require(old)
    with store.exclusive(old):
        store.rename(old, new)
    output.render_object({"name": new, "previous_name": old})


@command(sessions, "delete")
@store_option
@click.argument("name", shell_complete=completion.session_names)
@yes_option
def delete_session(name, yes):
    """Delete a session and all its turns.

    The text is erased from the store file, not just hidden. Asks first on a terminal; a script must
    pass --yes.

    \b
    Example:
      oaicli sessions delete trip --yes
    """
    from oaicli.output import prompts
    from oaicli.output import writers as output
    store = _require(name)
    store.require_session(name)
    prompts.confirm_or_abort(f"Delete session {name!r} and all its turns?", yes)
    with store.exclusive(name):
        removed = store.delete(name)
    output.render_object({"name": name, "deleted": True, "removed_turns": removed})


@command(sessions, "copy")
@click.option("--from", "source", required=True, metavar="URL", help="The store to copy: sqlite:///PATH or postgresql://...")
@click.option("--to", "target", required=True, metavar="URL", help="An empty store to copy into (created if new).")
def copy_sessions(source, target):
    """Copy every session and envelope context, with their turns and ids, into an empty store.

    Turns keep their ids, question ids, user ids and token counts: from SQLite to PostgreSQL to share the
    store with several `oaicli serve`, or back. Each session is copied in one transaction; the target
    must hold no session yet.

    \b
    Example:
      oaicli sessions copy --from sqlite:///home/me/.local/share/oaicli/sessions.db \\
        --to postgresql://oaicli@db.internal/oaicli
    """
    from oaicli.conversation import stores
    from oaicli.core.errors import InputError
    from oaicli.output import writers as output
    if not stores.exists(source):
        raise InputError(f"There is no store at {source}.", "Check the --from URL.")
    with stores.open_store(source) as opened_source, stores.open_store(target) as opened_target:
        counts = stores.copy_store(opened_source, opened_target)
    output.render_object(counts)
