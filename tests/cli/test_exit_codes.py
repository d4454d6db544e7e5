"""Each documented exit code, from real processes: `python -m oaicli` and the installed console script."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_KEY
from tests.fake.server import Scripted

SCRIPT = Path(sys.executable).parent / "oaicli"
LAUNCHERS = {"python -m oaicli": [sys.executable, "-m", "oaicli"], "console script": [str(SCRIPT)]}


@pytest.fixture(params=list(LAUNCHERS))
def oaicli(request):
    """Run oaicli one way or the other; both must behave identically, exit codes included."""
    if request.param == "console script" and not SCRIPT.exists():
        pytest.skip(f"the console script is not installed at {SCRIPT}")
    launcher = LAUNCHERS[request.param]

    def run(*args, env=None, timeout=60):
        return subprocess.run([*launcher, *map(str, args)], env={**os.environ, **(env or {})}, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
    run.launcher = launcher
    return run


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert TEST_KEY not in result.stdout + result.stderr
    return lines[0]


def test_success_is_0(oaicli, fake):
    result = oaicli("models", "list", "--format", "jsonl")
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout.splitlines()) == 4


@pytest.mark.parametrize("args,message", [(["models", "frobnicate"], "No such command 'frobnicate'"),
                                          (["--bogus"], "No such option '--bogus'"),
                                          (["models", "get"], "Missing argument 'MODEL'"),
                                          (["models", "list", "--timeout", "-1"], "--timeout")])
def test_usage_error_is_2(oaicli, args, message):
    result = oaicli(*args)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


def test_no_key_is_3(oaicli):
    result = oaicli("models", "list")
    assert result.returncode == 3
    assert one_error_line(result) == ("Error: No API key. Set OPENAI_API_KEY, pass --api-key, "
                                      "or store one with `oaicli keys set`.")


def test_refused_key_is_3_and_the_echoed_key_is_never_printed(oaicli, fake):
    fake.state["valid_keys"] = {"sk-some-other-key"}
    result = oaicli("models", "list")
    assert result.returncode == 3
    line = one_error_line(result)
    assert line.startswith("Error: Incorrect API key provided: sk-...cdef. (invalid_request_error, HTTP 401).")
    assert "Check your API key and organization" in line


def test_missing_model_is_4(oaicli, fake):
    result = oaicli("models", "get", "no-such-model")
    assert result.returncode == 4 and result.stdout == ""
    assert one_error_line(result) == ("Error: The model 'no-such-model' does not exist (invalid_request_error, "
                                      "HTTP 404). See `oaicli models list` for the models this key can use.")


def test_server_error_after_retries_is_5(oaicli, fake):
    failure = Scripted(500, {"error": {"message": "The server had an error", "type": "server_error"}},
                       headers={"Retry-After": "0"})
    fake.queue("GET", "/v1/models", failure, failure, failure)
    result = oaicli("models", "list", "--quiet")
    assert result.returncode == 5
    assert one_error_line(result) == ("Error: The server had an error (server_error, HTTP 500). "
                                      "The server failed; try again later.")
    assert len(fake.calls("GET", "/v1/models")) == 3


def test_unreachable_server_is_5(oaicli):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = oaicli("models", "list", "--max-retries", "0",
                    env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"})
    assert result.returncode == 5
    assert one_error_line(result).startswith(f"Error: Cannot reach http://127.0.0.1:{port}:")


def test_debug_prints_a_traceback_and_keeps_the_exit_code(oaicli):
    result = oaicli("models", "list", env={"OAICLI_DEBUG": "1"})
    assert result.returncode == 3
    assert "Traceback (most recent call last)" in result.stderr and "ConfigError: No API key." in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: No API key.")


def test_version_and_help_are_0(oaicli):
    assert oaicli("--version").stdout.strip() == "oaicli, version 0.1.0"
    result = oaicli("models", "--help")
    assert result.returncode == 0 and "list" in result.stdout


def test_sigint_is_130(oaicli, fake):
    fake.queue("GET", "/v1/models", Scripted(200, {"data": []}, delay=120))
    process = subprocess.Popen([*oaicli.launcher, "models", "list"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # the request is in flight: the server holds it
    stdout, stderr = signal_once(process, lambda: fake.calls("GET", "/v1/models"), signal.SIGINT,
                                 lambda: "oaicli never sent its request")
    assert process.returncode == 130
    assert stdout == "" and stderr.strip() == "Interrupted." and "Traceback" not in stderr


def test_closed_stdout_pipe_is_quiet(fake):
    process = subprocess.Popen([sys.executable, "-m", "oaicli", "models", "list", "--format", "jsonl"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert process.wait(timeout=30) == 1
    assert process.stderr.read() == b""
    process.stderr.close()


def test_ctrl_c_typed_at_a_terminal_is_130(fake):
    from tests.terminal import run_tty
    fake.queue("GET", "/v1/models", Scripted(200, {"data": []}, delay=120))
    # -v prints the request line just before sending it; ^C then arrives while the server holds the answer.
    result = run_tty("-v", "models", "list", answers=[("> GET http://", "\x03")], timeout=60)
    assert result.returncode == 130
    assert result.output.rstrip().endswith("Interrupted.") and "Traceback" not in result.output


def test_sigterm_mid_download_unwinds_leaving_no_partial_file_and_exits_143(oaicli, fake, tmp_path):
    def stalls_mid_body(request, reply):
        reply._head(200, "application/octet-stream", 10_000_000)
        reply._handler.wfile.write(b"x" * 1_000_000)
        reply._handler.wfile.flush()
        time.sleep(30)
    fake.routes.insert(0, ("GET", re.compile(r"^/v1/files/file-slow/content$"), stalls_mid_body))
    target = tmp_path / "out.bin"
    process = subprocess.Popen([*oaicli.launcher, "files", "content", "file-slow", "-o", target], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the body has started arriving
    stdout, stderr = signal_once(process, lambda: list(tmp_path.glob(".out.bin.*.part")), signal.SIGTERM,
                                 process.stderr.read)
    assert process.returncode == 143 and stdout == "" and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def signal_once(process, ready, signum, why):
    """Send `signum` to `process` once `ready()` holds (within 60 s; else fail with `why()`); its (stdout,
    stderr). The process never outlives the test."""
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert time.monotonic() < deadline and process.poll() is None, why()
            time.sleep(0.02)
        process.send_signal(signum)
        return process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()


INPUT_PATH_COMMANDS = [
    ["files", "upload", "{path}", "--purpose", "batch"],
    ["fine-tunes", "prepare-data", "{path}"],
    ["fine-tunes", "create", "--training-file", "{path}"],
    ["sessions", "import", "s", "{path}"],
    ["edit", "--instruction", "x", "--input-file", "{path}"],
    ["embed", "-i", "{path}"],
    ["audio", "transcribe", "{path}"],
    ["audio", "translate", "{path}"],
    ["image", "edit", "{path}", "--prompt", "x"],
    ["image", "variation", "{path}"],
]


@pytest.mark.parametrize("args", INPUT_PATH_COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_a_missing_input_path_is_4_in_every_command(invoke, fake, tmp_path, args):
    missing = tmp_path / "missing.file"
    result = invoke(*[a.replace("{path}", str(missing)) for a in args])
    assert result.exit_code == 4, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(missing) in result.stderr
    assert fake.requests == []


@pytest.mark.parametrize("args", INPUT_PATH_COMMANDS,
                         ids=lambda args: " ".join(args[:2]))
def test_a_folder_given_as_an_input_file_is_4_and_says_so(invoke, fake, tmp_path, args):
    result = invoke(*[a.replace("{path}", str(tmp_path)) for a in args])
    assert result.exit_code == 4, result.stderr
    assert f"{tmp_path} is a directory" in result.stderr and "not found" not in result.stderr
    assert fake.requests == []


@pytest.mark.parametrize("args", [["sessions", "delete", "trip"], ["sessions", "reset", "trip"],
                                  ["files", "delete", "file-1"], ["models", "delete", "ft:m"],
                                  ["fine-tunes", "delete", "ft:m"]], ids=lambda args: " ".join(args[:2]))
def test_destructive_commands_in_a_script_need_yes_and_exit_2(oaicli, fake, home, args):
    from oaicli.conversation.store import Store
    with Store.open(home / "sessions.db") as store:
        store.import_messages("trip", [{"role": "user", "content": "hi"}])
    result = oaicli(*args)  # stdin is a pipe: nobody can confirm
    assert result.returncode == 2 and result.stdout == ""
    assert one_error_line(result).endswith("Not done: stdin is not a terminal, so nobody can confirm. "
                                           "Pass --yes to go ahead without asking.")
    assert fake.calls("DELETE") == []
    with Store.open(home / "sessions.db") as store:
        assert len(store.export_messages("trip")) == 1
