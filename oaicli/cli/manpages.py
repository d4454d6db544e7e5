"""Man pages generated from the Click tree: `python -m oaicli.cli.manpages DIR` (or `make man`) writes oaicli.1 and
one page per command (oaicli-models-list.1). Deterministic (no dates), so a test can compare them."""

import inspect
import re
import sys
from pathlib import Path

import click

from oaicli import __version__
from oaicli.cli import options
from oaicli.core.errors import ExitCode

EXIT_CODES = {
    ExitCode.OK: "Success.",
    ExitCode.FAILURE: "General failure (including a question answered no).",
    ExitCode.USAGE: "Usage error: bad arguments or options.",
    ExitCode.AUTH: "Missing configuration, or a key the API refuses (no key, HTTP 401, 403).",
    ExitCode.REQUEST: "Any other request the API rejects (other 4xx), or bad local input found before sending.",
    ExitCode.SERVER: "Server or network failure after retries, or a stream that broke off.",
    ExitCode.JOB_FAILED: "A followed fine-tuning job failed.",
    ExitCode.JOB_CANCELLED: "A followed fine-tuning job was cancelled.",
    ExitCode.TIMEOUT: "A wait or follow gave up after --timeout.",
    ExitCode.FLAGGED: "Moderation flagged the input.",
    ExitCode.INTERRUPTED: "Interrupted (Ctrl-C).",
    ExitCode.TERMINATED: "Stopped by SIGTERM; temporary files are removed as on Ctrl-C.",
}

ENVIRONMENT = [
    ("OPENAI_API_KEY", "The API key, when --api-key is not given (else the key stored by `oaicli keys set`)."),
    ("OPENAI_BASE_URL, OPENAI_API_BASE", "The API base URL; default https://api.openai.com/v1."),
    ("OPENAI_ORG_ID, OPENAI_ORGANIZATION", "Organization, sent as the OpenAI-Organization header."),
    ("OPENAI_PROJECT_ID", "Project, sent as the OpenAI-Project header."),
    ("OPENAI_API_TYPE, OPENAI_API_VERSION", "azure selects Azure OpenAI: deployment paths, the api-key header and "
                                            "the api-version query parameter."),
    ("OAICLI_PROFILE", "The profile of the config file to use."),
    ("OAICLI_HOME", "The config and data directory (config.toml, keys.json, conversations)."),
    ("OAICLI_FORMAT", "The default output format: table, json or jsonl."),
    ("OAICLI_TIMEOUT, OAICLI_MAX_RETRIES", "Defaults for --timeout and --max-retries."),
    ("OAICLI_DEBUG", "When set, errors are re-raised with a traceback."),
    ("NO_COLOR", "When set, no colour even on a terminal."),
    ("HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY", "Proxies, as usual."),
    ("SSL_CERT_FILE, SSL_CERT_DIR", "Certificate authorities to trust instead of the bundled ones."),
]


def escape(text: str) -> str:
    """Roff-escape text: backslashes, hyphens, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"(?m)^([.'])", r"\\&\1", text)


def _walk(command: click.Command, ctx: click.Context):
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx))


def page_name(ctx: click.Context) -> str:
    return ctx.command_path.replace(" ", "-")


def _summary(command: click.Command) -> str:
    return command.get_short_help_str(limit=300).rstrip(".")


def _description(command: click.Command) -> list[str]:
    """The help text: \b blocks verbatim (.nf), other paragraphs reflowed; the summary line is the NAME."""
    text = inspect.cleandoc(command.help or "")
    paragraphs = re.split(r"\n\s*\n", text)
    lines = []
    for paragraph in paragraphs:
        if paragraph.startswith("\b"):
            body = paragraph[1:].strip("\n")
            lines += [".PP", ".nf", ".RS 4", *(escape(line) or "" for line in body.splitlines()), ".RE", ".fi"]
        elif paragraph.strip():
            lines += [".PP", escape(" ".join(paragraph.split()))]
    return lines


def _options(records: list[tuple[str, str]]) -> list[str]:
    lines = []
    for decl, help_text in records:
        lines += [".TP", f"\\fB{escape(decl)}\\fR", escape(help_text or "")]
    return lines


def render(command: click.Command, ctx: click.Context) -> str:
    name = page_name(ctx)
    own, common = options.split_help(command, ctx)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f'.TH "{name.upper()}" "1" "" "oaicli {__version__}" "oaicli manual"',
             ".SH NAME", f"{escape(name)} \\- {escape(_summary(command))}",
             ".SH SYNOPSIS", f"\\fB{escape(ctx.command_path)}\\fR {escape(usage)}",
             ".SH DESCRIPTION", *_description(command)]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                lines += [".TP", f"\\fB{escape(sub_name)}\\fR",
                          f"{escape(_summary(sub))}. See \\fB{escape(name)}\\-{escape(sub_name)}\\fR(1)."]
    if own:
        lines += [".SH OPTIONS", *_options(own)]
    if common:  # as --help shows them: one short section, described in oaicli(1)
        lines += [".SH GLOBAL OPTIONS", ".PP", "Accepted before or after the command; described in \\fBoaicli\\fR(1).",
                  ".PP", ".nf", *(escape(line) for line in options.pack([decl for decl, _ in common], 78)), ".fi"]
    if ctx.parent is None:
        lines += _root_sections()
    lines += [".SH SEE ALSO", _see_also(ctx)]
    return "\n".join(lines) + "\n"


def _root_sections() -> list[str]:
    lines = [".SH EXIT STATUS"]
    for code, meaning in EXIT_CODES.items():
        lines += [".TP", f"\\fB{int(code)}\\fR", escape(meaning)]
    lines.append(".SH ENVIRONMENT")
    for names, meaning in ENVIRONMENT:
        lines += [".TP", f"\\fB{escape(names)}\\fR", escape(meaning)]
    lines += [".SH FILES", ".TP", "\\fBconfig.toml\\fR",
              escape("Profiles, in the config directory (OAICLI_HOME, else the platform's user config directory); "
                     "see `oaicli config --help`."),
              ".TP", "\\fBkeys.json\\fR", escape("Keys stored by `oaicli keys set`, mode 0600.")]
    return lines


def _see_also(ctx: click.Context) -> str:
    if ctx.parent is None:
        return escape("oaicli-<command>(1) for each command, and `oaicli <command> --help`.")
    return f"\\fB{escape(page_name(ctx.parent))}\\fR(1)"


SUMMARIES_FILE = Path(__file__).with_name("summaries.py")


def generate(root: click.Command | None = None) -> dict[str, str]:
    """File name -> page text, for the whole tree."""
    if root is None:
        from oaicli.cli.root import cli as root
    top = click.Context(root, info_name="oaicli", **root.context_settings)
    return {f"{page_name(ctx)}.1": render(command, ctx) for command, ctx in _walk(root, top)}


def summaries_module() -> str:
    """The source of oaicli/cli/summaries.py: each listed hand-written command's short_help, or its help's first
    paragraph, which `oaicli --help` shows without importing the command modules. Kept beside the man pages
    because it is generated from the same tree and checked for staleness the same way."""
    from oaicli.cli.root import LAZY_COMMANDS, cli
    ctx = click.Context(cli, info_name="oaicli", **cli.context_settings)
    rows = []
    for name in sorted(LAZY_COMMANDS):
        command = cli.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        described = {"short_help": command.short_help} if command.short_help else {"help": _first_paragraph(command)}
        rows.append(f"    {name!r}: {described!r},")
    return ('"""Generated by `make man` from the Click tree (tests/cli/test_docs.py fails when stale): the one-line\n'
            'summaries `oaicli --help` lists for the hand-written commands, so listing them imports none."""\n\n'
            "SUMMARIES = {\n" + "\n".join(rows) + "\n}\n")


def _first_paragraph(command: click.Command) -> str:
    """What Click's short help is cut from (make_default_short_help reads only the first paragraph)."""
    return (command.help or "").split("\n\n")[0]


def write(directory: Path) -> list[str]:
    """Write every page and remove pages of commands that no longer exist."""
    directory.mkdir(parents=True, exist_ok=True)
    pages = generate()
    for stale in directory.glob("oaicli*.1"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        (directory / name).write_text(text, encoding="utf-8")
    return sorted(pages)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m oaicli.cli.manpages DIRECTORY", file=sys.stderr)
        return 2
    names = write(Path(argv[0]))
    SUMMARIES_FILE.write_text(summaries_module(), encoding="utf-8")
    print(f"Wrote {len(names)} man pages to {argv[0]}/ and {SUMMARIES_FILE.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
