"""Click groups and commands built from the operations table at run time, one group file at a time."""

import sys

import click

from oaicli.api import operations
from oaicli.cli.invocation import with_invocation
from oaicli.cli.options import OaicliCommand, connection_options, format_option
from oaicli.commands.generated.errors import BadInput, MissingInput, check_text
from oaicli.commands.generated.params import IntRange, json_object, make_option, option_name, read_source

# Options every generated command may have; a field with one of these names gets a `--body-` prefix.
RESERVED = {"--data", "--output", "--all", "--max-items", "--help"}


class GeneratedRoot(click.Group):
    """The top-level generated groups (Click's documented lazy-group pattern): listed with their summaries
    from the small index; a group's own file is read only when that group is used."""

    def __init__(self, execute, is_terminal=None, load_index=operations.index, load_group=operations.group,
                 **attrs):
        super().__init__(**attrs)
        self.execute = execute
        self.is_terminal = is_terminal or (lambda: sys.stdout.isatty())
        self.load_index, self.load_group = load_index, load_group

    def list_commands(self, ctx):
        # Groups whose every operation has a hand-written command are left to those commands.
        return sorted(name for name, entry in self.load_index()["groups"].items() if not entry.get("handwritten"))

    def get_command(self, ctx, name):
        return self.group(name)

    def group(self, name, words=(), extra_commands=(), help=None, alias=None):
        """The generated group `name` (or its subtree at `words`, shown as `alias`), with hand-written
        `extra_commands` beside its own verbs (they win on a name clash); None for a name not in the table."""
        entry = self.load_index()["groups"].get(name)
        if entry is None:
            return None

        def load_tree():
            tree = self.load_group(name)
            for word in words:
                tree = tree["groups"][word]
            return tree
        return GeneratedGroup(alias or name, (alias or name,), load_tree, self, extra_commands=extra_commands,
                              short_help=None if help else _sentence(entry["summary"]), help=help,
                              hidden=bool(entry.get("deprecated")))


class GeneratedGroup(click.Group):
    """One group of the table; its tree (a dict) is loaded on first use, its commands built when looked up.
    Hand-written `extra_commands` join it (cli/root.py's EXTRA_COMMANDS) and win over a generated verb."""

    def __init__(self, name, words, load_tree, root, extra_commands=(), **attrs):
        super().__init__(name, commands=list(extra_commands), **attrs)
        self.words, self.load_tree, self.root = words, load_tree, root

    # The help (summary and an example) is made from the tree when it is read, not when the group is listed.
    @property
    def help(self):
        if self._help is None:
            self._help = _group_help(self.words, self.load_tree(), self.short_help)
        return self._help

    @help.setter
    def help(self, text):
        self._help = text

    def list_commands(self, ctx):
        tree = self.load_tree()
        return sorted({*self.commands, *tree.get("commands", {}), *tree.get("groups", {})})

    def get_command(self, ctx, name):
        if name in self.commands:
            return self.commands[name]
        tree = self.load_tree()
        if name in tree.get("groups", {}):
            sub = tree["groups"][name]
            return GeneratedGroup(name, (*self.words, name), lambda: sub, self.root,
                                  short_help=_sentence(f"{' '.join((*self.words, name))}: {sub['summary']}"),
                                  hidden=_all_hidden(sub))
        if name in tree.get("commands", {}):
            return make_command((*self.words, name), tree["commands"][name], self.root)
        return None


def _all_hidden(tree: dict) -> bool:
    ops = list(tree.get("commands", {}).values())
    subs = list(tree.get("groups", {}).values())
    return all(_hidden(op) for op in ops) and all(_all_hidden(s) for s in subs)


def _hidden(op: dict) -> bool:
    return bool(op.get("deprecated") or op.get("handwritten"))


def make_command(words: tuple, op: dict, root: GeneratedRoot) -> click.Command:
    """The Click command of one operation: path parameters as arguments, fields as typed options."""
    fields = option_fields(op)
    params = [click.Argument([f"path_{i}"], metavar=p["name"].upper()) for i, p in enumerate(op["path_params"])]
    params += [make_option(described, dest, flag) for dest, (_, described, flag) in fields.items()]
    params += _fixed_options(op)

    deletes = op["method"] == "DELETE"
    if deletes:  # as every delete command: asked on a terminal, refused in a script without --yes
        params.append(click.Option(["-y", "--yes", "yes"], is_flag=True,
                                   help="Do not ask for confirmation (needed when stdin is not a terminal)."))

    def callback(yes=False, **given):
        request = build_request(op, fields, given, root.is_terminal)
        if deletes:
            from oaicli.output.prompts import confirm_or_abort
            confirm_or_abort(f"Send DELETE {request.path}?", yes)
        return root.execute(request)

    command = OaicliCommand(words[-1], callback=with_invocation(callback), params=params, help=_help(words, op),
                            short_help=op.get("summary") or None, hidden=_hidden(op), no_args_is_help=False)
    # The options every command shares (connection, --format, --jq, -r), after the operation's own.
    return connection_options(format_option()(command))


def option_fields(op: dict) -> dict:
    """dest -> (where, field description, --flag) for every query, header and body field, names kept apart."""
    fields, taken = {}, set(RESERVED)
    sources = [("query", f) for f in op["query"]] + [("header", f) for f in op.get("headers", [])]
    sources += [("body", f) for f in (op.get("body") or {}).get("fields", [])]
    for i, (where, described) in enumerate(sources):
        flag = option_name(described["name"])
        if flag in taken:
            flag = "--body-" + flag[2:] if where == "body" else f"--{where}-" + flag[2:]
        taken.add(flag)
        fields[f"{where[0]}{i}"] = (where, described, flag)
    return fields


def _fixed_options(op: dict) -> list:
    options = []
    if op.get("body"):
        options.append(click.Option(["--data", "data"], metavar="JSON|@FILE|-",
                                    help="The whole body as JSON, @file.json or - (stdin); options override "
                                         "its fields."))
    if op["response"] == "binary":
        options.append(click.Option(["-o", "--output", "output"], metavar="FILE",
                                    help="Write the answer (binary) to FILE; required on a terminal."))
    if op.get("paginate"):
        options.append(click.Option(["--all", "fetch_all"], is_flag=True, help="Fetch every page."))
        options.append(click.Option(["--max-items", "max_items"], type=IntRange(min=1),
                                    help="Fetch pages until N items (implies --all)."))
    return options


def build_request(op: dict, fields: dict, given: dict, is_terminal):
    """Check what Click could not (required fields after --data, a binary answer to a terminal) and assemble
    the Request; any problem is BadInput (exit 4) and nothing is sent."""
    data = _data_body(given.get("data"))
    values = {}
    for dest, (where, described, flag) in fields.items():
        value = given.get(dest)
        if value is None or value == ():
            continue
        check_text(value, f"'{flag}'")
        values[(where, described["name"])] = list(value) if isinstance(value, tuple) else value
    _check_required(op, fields, values, data)
    if op["response"] == "binary" and not given.get("output") and is_terminal():
        raise BadInput("the answer is binary: give -o FILE (or redirect stdout)", param_hint="'-o' / '--output'")
    path_values = [given[f"path_{i}"] for i in range(len(op["path_params"]))]
    for param, value in zip(op["path_params"], path_values):
        check_text(value, param["name"].upper())
    max_items = given.get("max_items")
    from oaicli.commands.generated.request import assemble  # dataclasses: when a command runs, not for --help
    return assemble(op, path_values, values, data, fetch_all=bool(given.get("fetch_all")) or max_items is not None,
                    max_items=max_items, output=given.get("output"))


def _data_body(value):
    if value is None:
        return None
    return json_object(lambda: read_source(value, None, None) if value == "-" or value.startswith("@") else value,
                       "'--data'")


def _check_required(op, fields, values, data) -> None:
    for where, described, flag in fields.values():
        if not described.get("required") or (where, described["name"]) in values:
            continue
        if where == "body" and data and described["name"] in data:
            continue
        raise MissingInput("", param_hint=f"'{flag}'")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith(".") else text + "."


def _group_help(words: tuple, tree: dict, summary: str) -> str:
    """A group's help: its summary and, as its example, the first visible verb's (a list when there is one)."""
    example = _first_example(words, tree)
    return f"{summary}\n\n\b\nExample:\n  {example}" if example else summary


def _first_example(words: tuple, tree: dict) -> str | None:
    commands = {verb: op for verb, op in tree.get("commands", {}).items() if not _hidden(op)}
    for verb in sorted(commands, key=lambda v: (v != "list", v)):
        return _example((*words, verb), commands[verb])
    for name, sub in sorted(tree.get("groups", {}).items()):
        example = _first_example((*words, name), sub)
        if example:
            return example
    return None


def _example(words: tuple, op: dict) -> str:
    required = [f"{option_name(f['name'])} {f['name'].upper()}" for f in op["query"] if f.get("required")]
    required += [f"{option_name(f['name'])} {f['name'].upper()}"
                 for f in (op.get("body") or {}).get("fields", []) if f.get("required")]
    return " ".join(["oaicli", *words, *(p["name"].upper() for p in op["path_params"]), *required])


def _help(words: tuple, op: dict) -> str:
    lines = [_sentence(op.get("summary") or f"{op['method']} {op['path']}"), "", "\b", f"{op['method']} {op['path']}"]
    lines += [f"{p['name'].upper()}: {p['help']}" for p in op["path_params"] if p.get("help")]
    if op.get("admin"):
        lines.append("Sent with OPENAI_ADMIN_KEY.")
    if op.get("deprecated"):
        lines.append("Deprecated by the API.")
    if op.get("handwritten"):
        lines.append(f"Also available, with more to it, as `oaicli {op['handwritten']}`.")
    return "\n".join([*lines, "", "\b", "Example:", f"  {_example(words, op)}"])


def generated_group(name: str, words: tuple = (), extra_commands=(), help=None, alias=None):
    """The generated group the real root (cli/root.py) shows as `name` (or `alias`), sending through the
    API client."""
    return GeneratedRoot(_execute, name="oaicli").group(name, words, extra_commands, help, alias)


def _execute(request) -> None:
    from oaicli.commands.generated.execute import execute  # the client and output layers: only when sending
    execute(request)
