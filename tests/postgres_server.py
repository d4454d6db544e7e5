"""A throwaway PostgreSQL server for tests: Debian's server binaries, a cluster in a temp folder, a free port.

    from tests.postgres_server import postgres_server
    with postgres_server() as dsn:            # postgresql://postgres@127.0.0.1:PORT/postgres
        ...

The `postgres_dsn` fixture (session-wide) starts one server for the whole run and skips, saying why, when
the binaries are missing (`apt-get install postgresql` installs them); `fresh_database(dsn)` gives a test a
database of its own. The cluster is built for speed, not durability (fsync off), and trusts loopback
connections: it lives only as long as the test run.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BIN_ROOT = Path("/usr/lib/postgresql")
# Room for the two-instance and many-process tests (each holds a pool of connections).
MAX_CONNECTIONS = 300


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def server_bin_dir() -> Path:
    """The newest Debian PostgreSQL bin folder that has initdb and pg_ctl."""
    candidates = [path / "bin" for path in BIN_ROOT.glob("*")
                  if (path / "bin" / "initdb").exists() and (path / "bin" / "pg_ctl").exists()]
    if not candidates:
        raise PostgresMissing(f"no PostgreSQL server binaries under {BIN_ROOT}/*/bin "
                              "(install them with `apt-get install -y postgresql`)")
    return max(candidates, key=lambda path: _version_key(path.parent.name))


def _version_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _runner():
    """How to run the server's programs: as the `postgres` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}, None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresMissing("running as root, but there is no `postgres` user to run the server as") from exc
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}, account


@contextlib.contextmanager
def postgres_server():
    """Start a throwaway server; yields its DSN; stops it and removes every file on exit."""
    bin_dir = server_bin_dir()
    as_user, account = _runner()
    folder = Path(tempfile.mkdtemp(prefix="oaicli-pg-"))
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(folder)}
    run = dict(env=env, cwd=folder, capture_output=True, text=True, timeout=120, **as_user)
    try:
        sockets.mkdir()
        if account is not None:
            os.chown(sockets, account.pw_uid, account.pw_gid)
        _check(subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "-E", "UTF8", "--locale=C", "--no-sync"], **run), "initdb")
        port = _start(bin_dir, data, sockets, log, run)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], **run)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(bin_dir: Path, data: Path, sockets: Path, log: Path, run: dict, attempts: int = 3) -> int:
    """pg_ctl start on a free port; another process may take the port between our probe and the server's
    bind, so a failed start is retried on a new port."""
    for _attempt in range(attempts):
        port = _free_port()
        options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={MAX_CONNECTIONS}")
        result = subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
                                 "-w", "-t", "60", "start"], **run)
        if result.returncode == 0:
            return port
    _check(result, f"pg_ctl start (log: {log.read_text(errors='replace')[-500:] if log.exists() else 'none'})")


def _check(result: subprocess.CompletedProcess, step: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{step} failed ({result.returncode}): {(result.stderr or result.stdout)[-800:]}")


def fresh_database(dsn: str) -> str:
    """A new, empty database on the server; returns its DSN."""
    import psycopg
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_dsn():
    """One throwaway server for the whole run (skipped, with the reason, where PostgreSQL is missing)."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary,pool]')")
    try:
        server = postgres_server()
        dsn = server.__enter__()
    except PostgresMissing as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        yield dsn
    finally:
        server.__exit__(None, None, None)
