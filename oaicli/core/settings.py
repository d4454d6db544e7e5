"""Effective settings: flags > environment > profile > stored key > defaults, with where each came from."""

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from oaicli.core.errors import ConfigError, mask, register_secret
from oaicli.core.models import DEFAULT_MODELS

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Field:
    env: tuple[str, ...] = ()
    default: object = None
    convert: type = str
    valid: Callable[[object], bool] | None = None  # checked after convert; flags have Click's own ranges
    expected: str = ""


FIELDS = {
    "api_key": Field(("OPENAI_API_KEY",)),
    # The organization's admin key, for the admin endpoints (usage, costs, projects, keys): the official SDKs' variable.
    "admin_key": Field(("OPENAI_ADMIN_KEY",)),
    "base_url": Field(("OPENAI_BASE_URL", "OPENAI_API_BASE"), DEFAULT_BASE_URL),
    "organization": Field(("OPENAI_ORG_ID", "OPENAI_ORGANIZATION")),
    "project": Field(("OPENAI_PROJECT_ID",)),
    "api_type": Field(("OPENAI_API_TYPE",), "openai"),
    "api_version": Field(("OPENAI_API_VERSION",), DEFAULT_AZURE_API_VERSION),
    "timeout": Field(("OAICLI_TIMEOUT",), 600.0, float, lambda v: v > 0, "a number of seconds above 0"),
    "max_retries": Field(("OAICLI_MAX_RETRIES",), 2, int, lambda v: v >= 0, "a whole number, 0 or more"),
    "format": Field(("OAICLI_FORMAT",)),
    # chat's default --api (a profile's `chat_api`): chat, completions, responses or auto.
    "chat_api": Field(("OAICLI_CHAT_API",), None, str, lambda v: v in ("chat", "completions", "responses", "auto"),
                      "chat, completions, responses or auto"),
    # The conversation store: sqlite:///PATH or postgresql://...; unset, the SQLite file in the data folder.
    "store_url": Field(("OAICLI_STORE",)),
}


SECRET_FIELDS = ("api_key", "admin_key")


def home_dir() -> Path:
    """The config and data directory; OAICLI_HOME overrides the platform's choice."""
    override = os.environ.get("OAICLI_HOME")
    return Path(override) if override else Path(click.get_app_dir("oaicli"))


def config_path() -> Path:
    return home_dir() / "config.toml"


def keys_path() -> Path:
    return home_dir() / "keys.json"


def ensure_home() -> Path:
    """The config and data directory, created private (0700) when oaicli creates it: it holds keys and
    conversations. An existing directory is left as its owner set it (OAICLI_HOME may name any folder)."""
    path = home_dir()
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # another process made it first
            pass
        else:
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask; 0700 whatever it is
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file that may hold secrets: created 0600, replaced atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.parent == home_dir():
            ensure_home()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        from oaicli.core.home import unwritable
        raise unwritable(path, exc) or exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_keys() -> dict[str, str]:
    path = keys_path()
    if not path.exists():
        return {}
    _make_private(path)
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.", "Fix or delete the file, then `oaicli keys set`.")
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise ConfigError(f"{path} is not a JSON object of profile names and keys.",
                          "Fix or delete the file, then `oaicli keys set`.")
    return keys


def _make_private(path: Path) -> None:
    """oaicli's own keys file, if an older version or a copy left it readable by others: 0600 again."""
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        try:
            os.chmod(path, 0o600)
        except OSError:  # not ours to change (another owner): reading it still works
            pass


def save_key(profile: str, key: str) -> Path:
    check_header_value("The API key", key, "to store")
    keys = load_keys()
    keys[profile] = key
    write_private(keys_path(), json.dumps(keys, indent=2) + "\n")
    return keys_path()


def load_config() -> dict:
    path = config_path()
    if not path.exists():
        return {}
    config = _read_config(path)
    _keep_private(path, config)
    return config


def _read_config(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.", "Fix the file's TOML syntax.")
    _check_shape(path, config)
    return config


def _check_shape(path: Path, config: dict) -> None:
    """Valid TOML of the wrong shape (`profiles = 5`, a profile that is a string) is one config error."""
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"In {path}, each profile must be a table ([profiles.NAME]).")
    for name, profile in profiles.items():
        if not isinstance(profile.get("models", {}), dict):
            raise ConfigError(f"In {path}, profiles.{name}.models must be a table (models = {{ chat = \"...\" }}).")


def _profile_keys(config: dict) -> list[str]:
    return [profile[name] for profile in config.get("profiles", {}).values() for name in SECRET_FIELDS
            if isinstance(profile.get(name), str)]


def _keep_private(path: Path, config: dict) -> None:
    """A config file that holds a key and that others can read is made 0600 when it is the user's own,
    saying so once (the next run finds it private); one that oaicli may not change gets a warning each run."""
    if not _profile_keys(config) or os.name != "posix":
        return
    status = path.stat()
    if not status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return
    if status.st_uid == os.geteuid():
        try:
            os.chmod(path, 0o600)
        except OSError:  # a read-only file system, an ACL: leave it to the user
            pass
        else:
            click.echo(f"Warning: {path} holds an API key and others could read it; made it private "
                       "(chmod 600).", err=True)
            return
    click.echo(f"Warning: {path} holds an API key but others can read it; run: chmod 600 {path}", err=True)


def register_configured_keys(typed_key: str | None) -> None:
    """Make every key oaicli may be configured with known to the redactor without resolving the settings
    (Click's usage errors come before them): the key typed after --api-key, the environment's keys, the
    config file's and the stored ones. A file that cannot be read is skipped: the usage error must show."""
    register_secret(typed_key)
    for name in SECRET_FIELDS:
        for var in FIELDS[name].env:
            register_secret(os.environ.get(var))
    for read in (lambda: _profile_keys(_read_config(config_path())) if config_path().exists() else [],
                 lambda: load_keys().values()):
        try:
            for key in read():
                register_secret(key)
        except (ConfigError, OSError):
            pass


class Settings:
    """Resolved settings for one invocation; `source(name)` says where a value came from."""

    def __init__(self, flags: dict, environ=os.environ):
        self.flags = flags
        self.environ = environ
        self.config = load_config()
        self.profile_name, self.profile_source = self._profile_choice()
        profiles = self.config.get("profiles", {})
        if self.profile_source != "default" and self.profile_name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"No profile named {self.profile_name!r} in {config_path()} (profiles: {known}).")
        self.profile = profiles.get(self.profile_name, {})
        self._resolved = {name: self._resolve(name, field) for name, field in FIELDS.items()}
        register_secret(self._resolved["api_key"][0])
        register_secret(self._resolved["admin_key"][0])

    def _profile_choice(self) -> tuple[str, str]:
        if self.flags.get("profile"):
            return self.flags["profile"], "flag --profile"
        if self.environ.get("OAICLI_PROFILE"):
            return self.environ["OAICLI_PROFILE"], "env OAICLI_PROFILE"
        if self.config.get("default_profile"):
            return str(self.config["default_profile"]), f"config default_profile ({config_path()})"
        return "default", "default"

    def _resolve(self, name: str, field: Field):
        if self.flags.get(name) is not None:
            return field.convert(self.flags[name]), "flag --" + name.replace("_", "-")
        for var in field.env:
            if self.environ.get(var):
                return self._convert(field, self.environ[var], var), f"env {var}"
        if self.profile.get(name) is not None:
            return self._convert(field, self.profile[name], f"profile {self.profile_name}: {name}"), \
                f"profile {self.profile_name}"
        if name == "api_key":
            stored = load_keys().get(self.profile_name)
            if stored:
                return stored, f"keys file ({keys_path()})"
        return field.default, "default"

    @staticmethod
    def _convert(field: Field, raw: str, var: str):
        try:
            value = field.convert(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{var}={raw!r} is not a valid {field.convert.__name__}.")
        if field.valid and not field.valid(value):
            raise ConfigError(f"{var}={raw!r} is out of range: expected {field.expected}.")
        return value

    def __getattr__(self, name):
        if name in FIELDS:
            return self._resolved[name][0]
        raise AttributeError(name)

    def source(self, name: str) -> str:
        return self._resolved[name][1]

    @property
    def verbose(self) -> int:
        return self.flags.get("verbose") or 0

    @property
    def quiet(self) -> bool:
        return bool(self.flags.get("quiet"))

    def default_model(self, command: str, fallback: str | None = None) -> str:
        """A profile may set `models.<command>`; else the command's own default (core/models.py)."""
        return self.profile.get("models", {}).get(command) or (DEFAULT_MODELS[command] if fallback is None else fallback)

    def require_key(self) -> str:
        """The key, and the organization and project sent beside it, checked before any request."""
        if self.api_key:
            check_header_value("The API key", self.api_key, self.source("api_key"))
            for name in ("organization", "project"):
                if getattr(self, name):
                    check_header_value(f"The {name}", getattr(self, name), self.source(name))
            return self.api_key
        raise ConfigError(
            "No API key.",
            "Set OPENAI_API_KEY, pass --api-key, or store one with `oaicli keys set`.")

    def require_admin_key(self) -> str:
        if self.admin_key:
            return self.admin_key
        raise ConfigError("No admin key: this is an organization admin endpoint, sent with OPENAI_ADMIN_KEY.",
                          "Set OPENAI_ADMIN_KEY to an admin key (platform.openai.com, Organization > Admin keys).")

    def as_rows(self) -> list[dict]:
        rows = [{"setting": "profile", "value": self.profile_name, "source": self.profile_source}]
        for name in FIELDS:
            value, source = self._resolved[name]
            shown = mask(value) if name in SECRET_FIELDS else value
            rows.append({"setting": name, "value": "" if shown is None else shown, "source": source})
        return rows


def check_header_value(what: str, value: str, source: str) -> None:
    """Refuse, as one config error showing the value masked, a key (organization, project) that cannot
    go in an HTTP header: a pasted newline, a non-ASCII or non-UTF-8 character, a control character.
    Sent, it would fail inside the HTTP library, whose error text quotes the whole header."""
    for position, char in enumerate(value, 1):
        if " " <= char <= "~":
            continue
        raise ConfigError(f"{what} ({source}: {mask(value)}) contains {_describe_char(char)} at character "
                          f"{position}, which cannot go in an HTTP header.",
                          "Set it again as it was issued: ASCII letters, digits and punctuation only "
                          "(a pasted key may carry its line break).")
    if value != value.strip():
        raise ConfigError(f"{what} ({source}: {mask(value)}) starts or ends with a space, which cannot go "
                          "in an HTTP header.", "Set it again without the space.")


def _describe_char(char: str) -> str:
    names = {"\n": "a line break (LF)", "\r": "a carriage return (CR)", "\t": "a tab"}
    if char in names:
        return names[char]
    if "\udc80" <= char <= "\udcff":
        return "a byte that is not UTF-8"
    if char < " " or char == "\x7f":
        return f"a control character (0x{ord(char):02x})"
    return f"a non-ASCII character ({char.encode('unicode_escape').decode('ascii')})"
