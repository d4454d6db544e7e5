"""Which store a URL names (SQLite, the default, or PostgreSQL), and copying a whole store to another.

    open_store(None)                          the default SQLite file in the data folder
    open_store("sqlite:///path/to/sessions.db")
    open_store("postgresql://user@host/db")   needs the `postgres` extra (psycopg 3)
"""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from oaicli.conversation.store import Store, default_path
from oaicli.core.errors import ExitCode, InputError, OaicliError

POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_INSTALL = ("Install the postgres extra: pipx inject oaicli 'psycopg[binary,pool]' greenlet "
                    "(in a venv: pip install '.[postgres]' from the clone).")


def open_store(url: str | None = None, *, max_connections: int = 10):
    """The store a --store URL (or OAICLI_STORE) names; None or "" is the default SQLite file."""
    if not url:
        return Store.open()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return Store.open(_sqlite_path(url))
    if scheme in POSTGRES_SCHEMES:
        try:
            from oaicli.conversation.pgstore import PgStore
        except ImportError as exc:
            raise OaicliError("A postgresql:// store needs psycopg 3, which is not installed.", POSTGRES_INSTALL,
                              exit_code=ExitCode.AUTH) from exc
        return PgStore.open(url, max_connections=max_connections)
    raise InputError(f"Unknown store URL {url.split('://')[0]!r}://...: expected sqlite:///PATH or postgresql://...",
                     "For example --store sqlite:///home/me/sessions.db or --store postgresql://me@db/oaicli.")


def exists(url: str | None) -> bool:
    """Whether the store holds anything yet: a SQLite file that was never created need not be made to list
    nothing. A PostgreSQL store is a server: it exists."""
    if not url:
        return default_path().exists()
    if url.split(":", 1)[0].lower() == "sqlite":
        return _sqlite_path(url).exists()
    return True


def _sqlite_path(url: str) -> Path:
    """sqlite:///abs/path (also SQLAlchemy's sqlite:////abs/path) and sqlite:///./relative/path: an empty host,
    then the file's path."""
    parts = urlsplit(url)
    if parts.netloc or not parts.path or parts.path == "/":
        raise InputError(f"A SQLite store URL needs a file path after three slashes, not {url!r}.",
                         "For example sqlite:///home/me/sessions.db.")
    path = unquote(parts.path)
    return Path(path[1:] if path.startswith("/./") else "/" + path.lstrip("/"))


def copy_store(source, target) -> dict:
    """Copy every session and turn of `source` into the empty store `target`, keeping ids, question ids,
    user ids, usage and cached token counts; returns {"sessions": n, "turns": m}. Each session is one
    transaction; `target` must be empty so no id can collide."""
    if not target.is_empty():
        raise InputError("The target store already holds sessions; copy only into an empty store.",
                         "Point --to at a new database or file.")
    sessions = turns = 0
    for listed in reversed(source.list_sessions()):  # oldest first, so ids keep their order of creation
        session = source.get_session(listed["name"])
        turns += target.insert_copy(session, source.turns(session.id))
        sessions += 1
    target.finish_copy()
    return {"sessions": sessions, "turns": turns}
