"""The key never appears: every command family against a loopback server that echoes the key in its
headers, bodies, stream events and error texts, with and without -v / -vv / OAICLI_DEBUG=1; a key that
cannot go in an HTTP header is refused before any request; the folder oaicli creates is private."""

import json
import os
import stat
from urllib.parse import quote, quote_plus

import pytest

from tests.conftest import run_process_bytes
from tests.fake.files import add_file
from tests.fake.fine_tunes import add_job

# Keys an HTTP header can carry, with the characters each escaping scheme changes.
KEYS = {
    "quotes": "sk-te\"st'quoted-0123456789abcdef",
    "backslashes": "sk-te\\st\\back\\slash-0123456789",
    "spaces": "sk-test with spaces 0123456789abcdef",
}
# Keys that no HTTP header can carry: refused before any request.
BAD_KEYS = {
    "LF": "sk-test-0123456789abcdef\nlogin: me",
    "CRLF": "sk-test-0123456789abcdef\r\nX-Injected: 1",
    "trailing newline": "sk-test-0123456789abcdef0123\n",
    "unicode": "sk-test-ключ-0123456789abcdef",
    "quotes and tab": "sk-\"te\tst\\-0123456789abcdef",
}
CHAT_LINE = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'
ENVELOPE_LINE = '{"version":"1.0.0","pars":{"user_id":"u1","question":"Hi"}}\n'


def forms(key: str) -> set[str]:
    """Every way a program or a server may write the key in text (written here independently of oaicli)."""
    encoded = key.encode("utf-8")
    return {key, " ".join(key.split()), repr(key)[1:-1], repr(encoded)[2:-1], json.dumps(key)[1:-1],
            json.dumps(key, ensure_ascii=False)[1:-1], quote(key, safe=""), quote_plus(key, safe="")}


def assert_nowhere(key: str, *texts: str, home=None) -> None:
    for form in forms(key):
        for text in texts:
            assert form not in text, f"the key appeared as {form!r} in:\n{text}"
        for path in (home.rglob("*") if home is not None and home.exists() else ()):
            if path.is_file() and path.name != "keys.json":  # the key store itself holds it, 0600
                assert form.encode() not in path.read_bytes(), f"the key appeared as {form!r} in {path}"


def steps_for(family: str, tmp_path, fake) -> list[tuple[list, str | None]]:
    """The command lines (and stdin) that exercise one command family."""
    clip = tmp_path / "talk.mp3"
    clip.write_bytes(bytes(range(256)) * 4)
    train = tmp_path / "train.jsonl"
    train.write_text(CHAT_LINE)
    return {
        "models": [(["models", "list", "--format", "json"], None), (["models", "get", "gpt-3.5-turbo"], None)],
        "chat": [(["chat", "hi"], None), (["chat", "--no-stream", "--format", "json", "hi"], None)],
        "chat session": [(["chat", "--session", "trip", "hi"], None), (["sessions", "show", "trip"], None),
                         (["sessions", "list"], None)],
        "chat envelope": [(["chat", "--envelope"], ENVELOPE_LINE), (["chat", "--envelope", "--stream"], ENVELOPE_LINE)],
        "complete": [(["complete", "Once upon a time"], None)],
        "edit": [(["edit", "--input", "teh cat", "--instruction", "fix spelling"], None)],
        "image": [(["image", "create", "otter", "-o", tmp_path / "out"], None)],
        "embed": [(["embed", "hello", "--format", "json"], None)],
        "audio": [(["audio", "transcribe", clip], None), (["audio", "speak", "hi", "-o", tmp_path / "a.mp3"], None)],
        "moderate": [(["moderate", "some text"], None)],
        "files": [(["files", "upload", train, "--purpose", "fine-tune"], None), (["files", "list", "--format", "json"], None)],
        "fine-tunes": [(["fine-tunes", "list"], None),
                       (["fine-tunes", "follow", add_job(fake)["id"], "--timeout", "0.3"], None)],
        "chat responses": [(["chat", "--api", "responses", "hi"], None),
                           (["chat", "--api", "responses", "--background", "long report"], None),
                           (lambda started: ["responses", "follow", started.strip() or "resp_none"], None)],
        "batches": [(["batches", "submit", batch_requests(tmp_path), "--wait", "-d", tmp_path / "batch"], None)],
        "keys": [(["keys", "get"], None), (["keys", "set"], "sk-another-stored-key-0123456789\n")],
        "config": [(["config", "show", "--format", "json"], None)],
    }[family]


FAMILIES = ["models", "chat", "chat session", "chat envelope", "chat responses", "complete", "edit", "image",
            "embed", "audio", "moderate", "files", "fine-tunes", "batches", "keys", "config"]


def batch_requests(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                        "body": {"model": "gpt-4o-mini", "messages": [
                                            {"role": "user", "content": f"question {i}"}]}}) + "\n"
                            for i in range(2)))
    return path
# (how the server behaves, the verbosity flags, whether OAICLI_DEBUG is set)
MODES = [("echo", (), False), ("echo", ("-v",), False), ("echo", ("-vv",), True),
         ("fail 500", (), False), ("fail 500", ("-v",), False), ("fail 401", ("-vv",), True)]


@pytest.mark.parametrize("key_kind", KEYS)
@pytest.mark.parametrize("server, flags, debug", MODES, ids=[f"{m[0]}{' '.join(('',) + m[1])}"
                                                           f"{' debug' if m[2] else ''}" for m in MODES])
@pytest.mark.parametrize("family", FAMILIES)
def test_the_key_never_appears(invoke, fake, tmp_path, home, monkeypatch, family, server, flags, debug, key_kind):
    key = KEYS[key_kind]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    if debug:
        monkeypatch.setenv("OAICLI_DEBUG", "1")
    fake.state["echo_key"] = True
    # Answers quote the key too, streamed in 7 pieces that split it: still masked, and never stored.
    fake.state["answer"] = lambda messages: f"echo: the key is {key}, yes"
    fake.state["completion_answer"] = lambda prompt: f" the key is {key}, yes"
    fake.state["responses_answer"] = lambda body: f"echo: the key is {key}, yes"  # streamed word by word
    fake.state["chunks"] = 7
    if server.startswith("fail"):
        fake.state["fail_with_key"] = int(server.split()[1])
    add_file(fake, CHAT_LINE.encode(), "train.jsonl")
    outputs, stdout = [], ""
    for args, stdin in steps_for(family, tmp_path, fake):
        args = args(stdout) if callable(args) else args  # a step that needs the previous one's answer
        result = invoke(*flags, *args, input=stdin)
        stdout = result.stdout
        outputs += [result.stdout, result.stderr]
        if server == "echo":  # the command worked: the key was echoed into real output paths
            assert result.exit_code == 0, result.output
    assert_nowhere(key, *outputs, home=home)
    if family not in ("keys", "config"):  # these send nothing
        assert fake.requests, "the command never reached the server"
        if server.startswith("fail"):
            # the server's error text was shown, with the key masked in it
            assert "Incorrect API key provided" in "".join(outputs) or family == "chat session"
        if "-v" in flags:
            assert "x-request-id: sk-" in "".join(outputs)  # the echoed header is traced, masked
        if server == "fail 500" and family == "fine-tunes":  # follow's notice quotes the server, redacted
            assert "Lost contact with the server (Incorrect API key provided: sk-..." in "".join(outputs)
        if server == "echo" and family in ("chat", "chat session", "chat envelope", "chat responses", "complete"):
            assert "the key is sk-..." in "".join(outputs)  # the answer was shown, the key masked in it


@pytest.mark.parametrize("key_kind", BAD_KEYS)
@pytest.mark.parametrize("family", ["models", "chat", "chat session", "chat envelope", "complete", "embed",
                                    "files", "fine-tunes", "audio"])
def test_a_key_no_header_can_carry_is_refused_before_any_request(invoke, fake, tmp_path, home, monkeypatch,
                                                                 family, key_kind):
    key = BAD_KEYS[key_kind]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    args, stdin = steps_for(family, tmp_path, fake)[0]
    result = invoke(*args, input=stdin)
    assert result.exit_code == 3, result.output
    assert fake.requests == []
    assert len(result.stderr.splitlines()) == 1 and "The API key (env OPENAI_API_KEY: sk-..." in result.stderr
    assert "cannot go in an HTTP header" in result.stderr and result.stdout == ""
    assert_nowhere(key, result.stdout, result.stderr, home=home)
    debug = invoke("-vv", *args, input=stdin, env={"OAICLI_DEBUG": "1"})
    assert debug.exit_code == 3 and "Traceback" in debug.stderr
    assert_nowhere(key, debug.stdout, debug.stderr, home=home)


@pytest.mark.parametrize("name, variable", [("organization", "OPENAI_ORG_ID"), ("project", "OPENAI_PROJECT_ID")])
def test_an_organization_or_project_with_a_line_break_is_refused_before_any_request(invoke, fake, monkeypatch,
                                                                                    name, variable):
    monkeypatch.setenv(variable, "org-abc\r\nX-Injected: yes")
    result = invoke("models", "list")
    assert result.exit_code == 3 and fake.requests == []
    assert f"The {name} (env {variable}: " in result.stderr and "carriage return" in result.stderr
    assert "X-Injected: yes" not in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("key", [BAD_KEYS["unicode"], BAD_KEYS["quotes and tab"], "sk-test-\x01-0123456789abcdef"])
def test_keys_set_refuses_a_key_no_header_can_carry(invoke, home, key):
    result = invoke("keys", "set", input=key + "\n")
    assert result.exit_code == 3 and not (home / "keys.json").exists()
    assert_nowhere(key, result.stdout, result.stderr)


def test_a_non_utf8_key_in_argv_is_a_config_error(fake):
    raw = b"sk-test-\xff\xfe-0123456789abcdef"
    result = run_process_bytes(b"--api-key", raw, b"models", b"list")
    assert result.returncode == 3, result.stderr
    assert b"not UTF-8" in result.stderr and raw not in result.stderr and fake.requests == []
    assert b"\\xff\\xfe-0123456789" not in result.stderr and b"UnicodeEncodeError" not in result.stderr


def test_an_answer_that_quotes_the_key_is_printed_masked(invoke, fake, monkeypatch):
    key = KEYS["quotes"]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    fake.state["answer"] = lambda messages: f"the key is {key}"  # even an answer that quotes it
    result = invoke("chat", "--no-stream", "hi")
    assert result.exit_code == 0 and "the key is sk-..." in result.stdout
    assert_nowhere(key, result.stdout, result.stderr)


def test_the_folder_oaicli_creates_is_private_and_a_loose_keys_file_is_tightened(invoke, fake, home):
    old = os.umask(0o022)
    try:
        assert invoke("chat", "--session", "trip", "hi").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    (home / "keys.json").write_text('{"default": "sk-stored-0123456789abcdef"}')
    os.chmod(home / "keys.json", 0o644)
    result = invoke("keys", "get", env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0 and "sk-...cdef" in result.stdout
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600


def test_keys_set_into_a_new_folder_makes_it_private(invoke, home):
    result = invoke("keys", "set", input="sk-stored-0123456789abcdef\n")
    assert result.exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("server", ["echo", "fail 500", "fail 401"])
def test_serve_never_answers_or_logs_the_key(fake, home, server):
    pytest.importorskip("uvicorn")
    from tests.envelope.test_http import Served, body
    key = KEYS["quotes"]
    fake.state["echo_key"] = True
    if server.startswith("fail"):
        fake.state["fail_with_key"] = int(server.split()[1])
    served = Served(home, fake, "-vv", env={"OPENAI_API_KEY": key, "OAICLI_DEBUG": "1", "OAICLI_MAX_RETRIES": "0"})
    try:
        answers = [served.post(body("hi")), served.post(body("again", user_id="u2"),
                                                        headers={"Accept": "text/event-stream"})]
    finally:
        served.stop()
        served.process.stdout.close()
    assert [a.status_code for a in answers] == ([200, 200] if server == "echo" else [502, 502])
    if server != "echo":  # the server's error text reached the client, the key masked in it
        assert all("Incorrect API key provided: sk-..." in a.json()["msg"] for a in answers)
    texts = [a.text + repr(dict(a.headers)) for a in answers] + ["".join(served.log)]
    assert fake.requests and "x-request-id: sk-" in texts[-1]  # the echoed header was traced, masked
    assert_nowhere(key, *texts, home=home)


# A key pasted where Click expects something else, and the words Click then uses.
USAGE_MISTAKES = {
    "stray argument": (["models", "list", "{key}"], "Got unexpected extra argument"),
    "unknown option": (["chat", "--{key}", "hi"], "No such option"),
    "bad choice": (["models", "list", "--format", "{key}"], "Invalid value for '--format'"),
    "unknown command": (["{key}"], "No such command"),
    "errors as JSON": (["models", "list", "--format", "json", "{key}"], '"type": "usage"'),
}
# A key of no recognisable shape (Azure's are 32 hex characters): masked only because it is configured.
PLAIN_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def usage_mistake(mistake: str, key: str, before=(), env=None):
    words, said = USAGE_MISTAKES[mistake]
    args = [*before, *(word.format(key=key) for word in words)]
    result = run_process_bytes(*(arg.encode() for arg in args), env=env)
    return result.returncode, (result.stdout + result.stderr).decode(), said


def configure(source: str, home, key: str) -> tuple[list[str], dict]:
    """Configure `key` one way: (arguments to put first, environment)."""
    home.mkdir(parents=True, exist_ok=True)
    if source == "config file":
        (home / "config.toml").write_text(f'[profiles.default]\napi_key = "{key}"\n')
        (home / "config.toml").chmod(0o600)
    if source == "keys file":
        (home / "keys.json").write_text(json.dumps({"default": key}))
        (home / "keys.json").chmod(0o600)
    return (["--api-key", key] if source == "--api-key" else []), {
        "env OPENAI_API_KEY": {"OPENAI_API_KEY": key}, "env OPENAI_ADMIN_KEY": {"OPENAI_ADMIN_KEY": key}}.get(source)


@pytest.mark.parametrize("mistake", ["stray argument", "unknown option"])
@pytest.mark.parametrize("source", ["env OPENAI_API_KEY", "env OPENAI_ADMIN_KEY", "--api-key", "config file",
                                    "keys file"])
def test_a_configured_key_typed_by_mistake_is_masked_in_usage_errors(home, source, mistake):
    before, env = configure(source, home, PLAIN_KEY)
    code, output, said = usage_mistake(mistake, PLAIN_KEY, before, env)
    assert code == 2 and said in output
    assert "0a1...e8f9" in output  # what was typed is still pointed at, masked
    assert_nowhere(PLAIN_KEY, output)


@pytest.mark.parametrize("mistake", USAGE_MISTAKES)
@pytest.mark.parametrize("key", ["sk-proj-FAKEtestFAKEtestFAKE_te-st-012345", "sk-test-abcdefghij-klmnopqrstuvwxyz"])
def test_a_key_shaped_argument_is_masked_in_usage_errors_with_no_key_configured(invoke, key, mistake):
    words, said = USAGE_MISTAKES[mistake]
    result = invoke(*(word.format(key=key) for word in words))
    code, output = result.exit_code, result.stdout + result.stderr
    assert code == 2 and said in output
    assert f"sk-...{key[-4:]}" in output
    assert_nowhere(key, output)
