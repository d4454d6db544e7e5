"""Settings: precedence (flags > env > profile > keys file > default), profiles, `config show`, `keys`."""

import json
import os
import stat

import pytest

from oaicli.core import settings
from oaicli.core.errors import ConfigError
from oaicli.core.settings import Settings
from tests.conftest import TEST_KEY
from tests.terminal import run_tty

CONFIG = """
default_profile = "work"

[profiles.work]
api_key = "sk-profile-work-0123456789"
base_url = "http://profile.test/v1"
organization = "org-profile"
format = "jsonl"
timeout = 12.5
models = { chat = "gpt-4o-mini" }

[profiles.other]
base_url = "http://other.test/v1"
"""


@pytest.fixture
def config_file(home):
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    return path


def show(invoke, *args, env=None) -> dict:
    result = invoke(*args, "config", "show", "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_with_nothing_configured():
    s = Settings({}, environ={})
    assert (s.api_key, s.base_url, s.organization, s.api_type, s.timeout, s.max_retries, s.format) == (
        None, "https://api.openai.com/v1", None, "openai", 600.0, 2, None)
    assert s.source("base_url") == "default" and s.profile_name == "default"


def test_precedence_flag_env_profile_keysfile_default(config_file):
    settings.save_key("work", "sk-keysfile-0123456789")
    env = {"OPENAI_API_KEY": "sk-env-0123456789", "OPENAI_BASE_URL": "http://env.test/v1"}
    flags = {"api_key": "sk-flag-0123456789", "base_url": "http://flag.test/v1"}
    assert Settings(flags, environ=env).api_key == "sk-flag-0123456789"
    assert Settings(flags, environ=env).source("api_key") == "flag --api-key"
    assert Settings({}, environ=env).api_key == "sk-env-0123456789"
    assert Settings({}, environ=env).source("base_url") == "env OPENAI_BASE_URL"
    assert Settings({}, environ={}).api_key == "sk-profile-work-0123456789"
    assert Settings({}, environ={}).source("api_key") == "profile work"
    config_file.write_text(CONFIG.replace('api_key = "sk-profile-work-0123456789"\n', ""))
    assert Settings({}, environ={}).api_key == "sk-keysfile-0123456789"
    assert Settings({}, environ={}).source("api_key").startswith("keys file (")
    assert Settings({}, environ={}).max_retries == 2 and Settings({}, environ={}).source("max_retries") == "default"


def test_profile_values_and_models(config_file):
    s = Settings({}, environ={})
    assert (s.profile_name, s.base_url, s.organization, s.format, s.timeout) == (
        "work", "http://profile.test/v1", "org-profile", "jsonl", 12.5)
    assert s.default_model("chat", "gpt-3.5-turbo") == "gpt-4o-mini"
    assert s.default_model("embed", "text-embedding-3-small") == "text-embedding-3-small"


def test_profile_chosen_by_flag_then_env(config_file):
    assert Settings({"profile": "other"}, environ={"OAICLI_PROFILE": "work"}).base_url == "http://other.test/v1"
    assert Settings({}, environ={"OAICLI_PROFILE": "other"}).base_url == "http://other.test/v1"
    assert Settings({}, environ={"OAICLI_PROFILE": "other"}).profile_source == "env OAICLI_PROFILE"


@pytest.mark.parametrize("legacy,modern,field", [("OPENAI_API_BASE", "OPENAI_BASE_URL", "base_url"),
                                                  ("OPENAI_ORGANIZATION", "OPENAI_ORG_ID", "organization")])
def test_legacy_env_names(legacy, modern, field):
    assert getattr(Settings({}, environ={legacy: "legacy-value"}), field) == "legacy-value"
    both = Settings({}, environ={legacy: "legacy-value", modern: "modern-value"})
    assert getattr(both, field) == "modern-value" and both.source(field) == f"env {modern}"


def test_unknown_profile_is_one_line_and_exit_3(invoke, config_file):
    result = invoke("--profile", "nope", "models", "list", env={"OPENAI_API_KEY": TEST_KEY})
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        f"Error: No profile named 'nope' in {config_file} (profiles: other, work)."]
    assert invoke("models", "list", env={"OAICLI_PROFILE": "nope"}).exit_code == 3


def test_default_profile_that_does_not_exist_is_an_error(home):
    home.mkdir(parents=True)
    (home / "config.toml").write_text('default_profile = "gone"\n')
    with pytest.raises(ConfigError, match="No profile named 'gone'"):
        Settings({}, environ={})


def test_bad_toml_and_bad_values_are_config_errors(invoke, home):
    home.mkdir(parents=True)
    (home / "config.toml").write_text("[profiles.x\n")
    result = invoke("config", "show")
    assert result.exit_code == 3 and result.stderr.startswith("Error: Cannot read") and "TOML" in result.stderr
    (home / "config.toml").write_text('[profiles.default]\ntimeout = "soon"\n')
    assert invoke("config", "show").exit_code == 3
    result = invoke("config", "show", env={"OAICLI_TIMEOUT": "abc"})
    assert result.exit_code == 3 and "OAICLI_TIMEOUT='abc' is not a valid float" in result.stderr


@pytest.mark.parametrize("variable, value", [("OAICLI_TIMEOUT", "-5"), ("OAICLI_TIMEOUT", "0"),
                                             ("OAICLI_MAX_RETRIES", "-1")])
def test_out_of_range_numbers_from_the_environment_are_config_errors(invoke, variable, value):
    result = invoke("config", "show", env={variable: value})
    assert result.exit_code == 3
    assert result.stderr.startswith(f"Error: {variable}='{value}' is out of range: expected")


def test_a_keys_file_that_is_not_an_object_of_keys_is_a_config_error(invoke, home):
    home.mkdir(parents=True)
    (home / "keys.json").write_text("[1]")
    result = invoke("keys", "get", env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 3 and "keys.json is not a JSON object" in result.stderr


def test_config_show_lists_sources_and_masks_the_key(invoke, config_file):
    shown = show(invoke, "--organization", "org-flag", env={"OPENAI_API_KEY": TEST_KEY})
    assert shown["api_key"] == {"value": "sk-...cdef", "source": "env OPENAI_API_KEY"}
    assert shown["organization"] == {"value": "org-flag", "source": "flag --organization"}
    assert shown["base_url"] == {"value": "http://profile.test/v1", "source": "profile work"}
    assert shown["max_retries"] == {"value": 2, "source": "default"}
    assert shown["profile"]["value"] == "work" and "default_profile" in shown["profile"]["source"]


def test_config_show_table_never_prints_the_key(invoke):
    result = invoke("config", "show", "--format", "table", "--api-key", TEST_KEY)
    assert "api_key" in result.stdout and "flag --api-key" in result.stdout
    assert TEST_KEY not in result.stdout + result.stderr


def test_options_after_the_subcommand_count_too(invoke):
    assert show(invoke, "--base-url", "http://before.test/v1")["base_url"]["value"] == "http://before.test/v1"
    result = invoke("config", "show", "--base-url", "http://after.test/v1", "--format", "json")
    assert json.loads(result.stdout)["base_url"]["value"] == "http://after.test/v1"
    result = invoke("--base-url", "http://before.test/v1", "config", "show", "--base-url", "http://after.test/v1",
                    "--format", "json")
    assert json.loads(result.stdout)["base_url"]["value"] == "http://after.test/v1"  # the later one wins


def test_keys_set_from_a_pipe_writes_a_private_file(invoke, home):
    result = invoke("keys", "set", input=TEST_KEY + "\n")
    assert result.exit_code == 0, result.stderr
    path = home / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"default": TEST_KEY}
    assert TEST_KEY not in result.stdout + result.stderr and result.stdout == ""
    got = invoke("keys", "get", "--format", "json")
    assert json.loads(got.stdout) == {"key": "sk-...cdef", "source": f"keys file ({path})", "profile": "default"}


def test_keys_set_per_profile_keeps_the_others(invoke, home, config_file):
    invoke("keys", "set", input="sk-first-key-0123456789\n")
    invoke("keys", "set", "--profile", "other", input="sk-other-key-0123456789\n")
    assert json.loads((home / "keys.json").read_text()) == {"work": "sk-first-key-0123456789",
                                                            "other": "sk-other-key-0123456789"}


def test_keys_set_empty_is_refused(invoke, home):
    result = invoke("keys", "set", input="\n")
    assert result.exit_code == 2 and "the key is empty" in result.stderr
    assert not (home / "keys.json").exists()


def test_keys_get_without_a_key(invoke):
    result = invoke("keys", "get")
    assert result.exit_code == 3 and "No API key" in result.stderr and "oaicli keys set" in result.stderr


def test_key_file_is_replaced_atomically(home, monkeypatch):
    settings.save_key("default", "sk-old-key-0123456789")
    before = (home / "keys.json").read_text()

    def crash(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(settings.os, "replace", crash)
    with pytest.raises(OSError):
        settings.save_key("default", "sk-new-key-0123456789")
    assert (home / "keys.json").read_text() == before
    assert sorted(p.name for p in home.iterdir()) == ["keys.json"]  # no temporary file left behind


def test_key_file_created_private_even_with_a_loose_umask(home):
    old = os.umask(0)
    try:
        settings.save_key("default", "sk-umask-0123456789")
    finally:
        os.umask(old)
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600


def test_keys_set_on_a_terminal_hides_the_input(home):
    typed = "sk-typed-at-terminal-0123456789"
    result = run_tty("keys", "set", answers=[("API key for profile 'default':", typed + "\r")])
    assert result.returncode == 0, result.output
    assert typed not in result.output and "Saved the key" in result.output
    assert json.loads((home / "keys.json").read_text()) == {"default": typed}
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600


def test_paths(invoke, home):
    assert invoke("keys", "path").stdout.strip() == str(home / "keys.json")
    assert invoke("config", "path").stdout.strip() == str(home / "config.toml")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
def test_a_readable_config_with_a_key_is_made_private_saying_so_once(invoke, config_file, mode):
    config_file.chmod(mode)
    first = invoke("config", "show", "--format", "json")
    assert first.exit_code == 0 and stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert first.stderr.splitlines() == [f"Warning: {config_file} holds an API key and others could read it; "
                                         "made it private (chmod 600)."]
    assert "sk-profile-work-0123456789" not in first.stdout + first.stderr
    assert invoke("config", "show", "--format", "json").stderr == ""  # private now: nothing more to say


def test_a_readable_config_oaicli_cannot_change_keeps_the_warning(invoke, config_file, monkeypatch):
    config_file.chmod(0o644)

    def refused(path, mode):
        raise PermissionError(1, "Operation not permitted", str(path))
    monkeypatch.setattr(settings.os, "chmod", refused)
    for _ in range(2):  # each run says it again: nothing was fixed
        result = invoke("config", "show", "--format", "json")
        assert result.exit_code == 0
        assert result.stderr.splitlines() == [f"Warning: {config_file} holds an API key but others can read it; "
                                              f"run: chmod 600 {config_file}"]
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o644


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to give the file to another user")
def test_a_readable_config_of_another_user_is_left_alone_with_the_warning(invoke, config_file):
    config_file.chmod(0o644)
    os.chown(config_file, 65534, 65534)  # nobody's
    result = invoke("config", "show", "--format", "json")
    assert f"run: chmod 600 {config_file}" in result.stderr
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o644


def test_a_readable_config_without_a_key_is_left_as_it_is(invoke, home):
    home.mkdir(parents=True)
    config_file = home / "config.toml"
    config_file.write_text('[profiles.default]\nbase_url = "http://profile.test/v1"\n')
    config_file.chmod(0o644)
    result = invoke("config", "show", "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o644


@pytest.mark.parametrize("text, message", [
    ("profiles = 5\n", "each profile must be a table"),
    ('[profiles]\ndefault = "x"\n', "each profile must be a table"),
    ('[profiles.default]\nmodels = "gpt-4o"\n', "profiles.default.models must be a table"),
])
def test_a_config_file_of_the_wrong_shape_is_one_config_error(invoke, home, text, message):
    home.mkdir(parents=True)
    (home / "config.toml").write_text(text)
    result = invoke("config", "show")
    assert result.exit_code == 3 and message in result.stderr and len(result.stderr.splitlines()) == 1
