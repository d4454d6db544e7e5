"""`oaicli sessions`: list, show, export, import, reset, rename, delete."""

import json

import pytest

from oaicli.conversation.store import Store, Turn
from tests.conftest import run_process
from tests.terminal import run_tty

CONVERSATION = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "昨天下雨了,我出门没带伞,会怎么样"},
                {"role": "assistant", "content": "您可能会感到湿透和寒冷"},
                {"role": "user", "content": "如果带了呢"},
                {"role": "assistant", "content": "那就不会淋湿"}]


@pytest.fixture
def stored(home):
    """A store with a named session `trip` (the conversation above) and an envelope context."""
    with Store.open() as store:
        store.import_messages("trip", CONVERSATION, model="gpt-4o")
        envelope = store.ensure_session("envelope:456:123", kind="envelope", model="gpt-3.5-turbo")
        store.add_exchange(envelope.id, Turn("user", "我出门没带钱包 怎么买饭", question_id="q1", user_id="123"),
                           Turn("assistant", "用手机支付", question_id="q1"))
    return home


def session_names(home):
    with Store.open(home / "sessions.db") as store:
        return {s["name"]: s["turns"] for s in store.list_sessions()}


def test_list_shows_named_sessions_and_envelope_contexts(stored, invoke):
    result = invoke("sessions", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {(r["name"], r["kind"], r["model"], r["turns"]) for r in rows} == {
        ("trip", "named", "gpt-4o", 4), ("envelope:456:123", "envelope", "gpt-3.5-turbo", 2)}


def test_list_as_a_table(stored, invoke):
    result = invoke("sessions", "list", "--format", "table")
    header, _, *lines = result.stdout.splitlines()
    assert header.split() == ["name", "kind", "model", "turns", "updated_at"]
    assert any(line.split()[:4] == ["trip", "named", "gpt-4o", "4"] for line in lines)


def test_list_with_no_store_is_empty_and_creates_nothing(home, invoke):
    result = invoke("sessions", "list", "--format", "json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    assert not (home / "sessions.db").exists()


def test_show_json_has_the_settings_and_turns(stored, invoke):
    result = invoke("sessions", "show", "trip", "--format", "json")
    shown = json.loads(result.stdout)
    assert (shown["name"], shown["model"], shown["system"], shown["kind"]) == ("trip", "gpt-4o", "Be brief.", "named")
    assert [(t["role"], t["content"]) for t in shown["turns"]] == [(m["role"], m["content"]) for m in CONVERSATION[1:]]


def test_show_text_prints_the_conversation(stored, invoke):
    result = invoke("sessions", "show", "envelope:456:123", "--format", "text")
    assert result.stdout == "[user 123] 我出门没带钱包 怎么买饭\n\n[assistant] 用手机支付\n\n"


@pytest.fixture
def hostile(home):
    """Envelope contexts whose ids, sent by an envelope client, carry terminal escapes and a NUL."""
    with Store.open() as store:
        store.ensure_session("envelope:g\x1b]0;owned\x07:u\x00", kind="envelope", model="m")
        context = store.ensure_session("envelope:1:2", kind="envelope", model="m")
        store.add_exchange(context.id, Turn("user", "hi\x1b[2J", question_id="q1", user_id="u\x1b[31mred\x00"),
                           Turn("assistant", "hello", question_id="q1"))
    return home


def test_list_escapes_control_characters_in_a_table(hostile, invoke):
    result = invoke("sessions", "list", "--format", "table")
    assert not set("\x1b\x00\x07") & set(result.stdout)
    assert "envelope:g\\x1b]0;owned\\x07:u\\x00" in result.stdout
    names = {row["name"] for row in json.loads(invoke("sessions", "list", "--format", "json").stdout)}
    assert "envelope:g\x1b]0;owned\x07:u\x00" in names  # data formats keep the real name


def test_show_escapes_control_characters_on_a_terminal(hostile, invoke):
    text = run_tty("sessions", "show", "envelope:1:2", "--format", "text").output
    assert not set("\x1b\x00") & set(text)
    assert "[user u\\x1b[31mred\\x00] hi\\x1b[2J" in text
    table = run_tty("sessions", "show", "envelope:1:2", env={"NO_COLOR": "1"}).output  # no bold headers
    assert not set("\x1b\x00") & set(table) and "u\\x1b[31mred\\x00" in table
    piped = invoke("sessions", "show", "envelope:1:2", "--format", "text").stdout
    assert "[user u\x1b[31mred\x00] hi\x1b[2J" in piped  # text in a pipe is data: kept as sent


def test_show_last_n(stored, invoke):
    result = invoke("sessions", "show", "trip", "--last", "1", "--format", "json")
    assert [t["content"] for t in json.loads(result.stdout)["turns"]] == ["那就不会淋湿"]


def test_show_table(stored, invoke):
    result = invoke("sessions", "show", "trip", "--format", "table")
    assert "gpt-4o" in result.stdout and "如果带了呢" in result.stdout
    assert result.stdout.splitlines()[0].split() == ["name", "trip"]


def test_export_prints_the_messages_array(stored, invoke):
    result = invoke("sessions", "export", "trip")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == CONVERSATION


def test_export_request_is_a_whole_body(stored, invoke):
    body = json.loads(invoke("sessions", "export", "trip", "--request").stdout)
    assert body == {"model": "gpt-4o", "messages": CONVERSATION}


def test_import_from_a_file_then_export_round_trips(home, invoke, tmp_path):
    source = tmp_path / "history.json"
    source.write_text(json.dumps(CONVERSATION, ensure_ascii=False), encoding="utf-8")
    result = invoke("sessions", "import", "copy", source, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "copy", "imported_turns": 4}
    assert json.loads(invoke("sessions", "export", "copy").stdout) == CONVERSATION


def test_import_from_stdin_accepts_a_request_body(home, invoke):
    body = json.dumps({"model": "gpt-4", "messages": CONVERSATION})
    result = invoke("sessions", "import", "piped", "-", input=body)
    assert result.exit_code == 0, result.stderr
    with Store.open() as store:
        assert store.get_session("piped").model == "gpt-4"
    assert json.loads(invoke("sessions", "export", "piped").stdout) == CONVERSATION


def test_import_of_bad_json_is_one_line_and_stores_nothing(home, invoke):
    result = invoke("sessions", "import", "bad", "-", input="[{\"role\": ")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: stdin is not valid JSON") and result.stderr.count("\n") == 1
    assert session_names(home) == {}


def test_import_of_a_bad_message_names_it(home, invoke):
    result = invoke("sessions", "import", "bad", "-", input='[{"role": "user", "content": "hi"}, {"role": "x"}]')
    assert result.exit_code == 4
    assert "Message 1 has role 'x'" in result.stderr
    assert "bad" not in session_names(home)


def test_import_over_an_existing_session_needs_a_choice(stored, invoke):
    more = json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    refused = invoke("sessions", "import", "trip", "-", input=more)
    assert refused.exit_code == 4 and "--replace" in refused.stderr
    assert invoke("sessions", "import", "trip", "-", "--append", input=more).exit_code == 0
    assert session_names(stored)["trip"] == 6
    assert invoke("sessions", "import", "trip", "-", "--replace", input=more).exit_code == 0
    assert json.loads(invoke("sessions", "export", "trip").stdout) == json.loads(more)


def test_import_of_a_very_long_history_through_a_process(home, tmp_path):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"} for i in range(100_000)]
    source = tmp_path / "big.json"
    source.write_text(json.dumps(messages))
    result = run_process("sessions", "import", "big", source, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported_turns"] == 100_000
    assert session_names(home)["big"] == 100_000


def test_reset_keeps_the_session_without_turns(stored, invoke):
    result = invoke("sessions", "reset", "trip", "--yes", "--format", "json")
    assert json.loads(result.stdout) == {"name": "trip", "removed_turns": 4}
    assert json.loads(invoke("sessions", "export", "trip").stdout) == CONVERSATION[:1]  # system prompt kept


def test_rename(stored, invoke):
    assert invoke("sessions", "rename", "trip", "lisbon").exit_code == 0
    assert set(session_names(stored)) == {"lisbon", "envelope:456:123"}
    clash = invoke("sessions", "rename", "lisbon", "envelope:456:123")
    assert clash.exit_code == 4 and "already exists" in clash.stderr


def test_delete_removes_the_session_and_its_turns(stored, invoke):
    result = invoke("sessions", "delete", "trip", "--yes", "--format", "json")
    assert json.loads(result.stdout) == {"name": "trip", "deleted": True, "removed_turns": 4}
    assert set(session_names(stored)) == {"envelope:456:123"}
    on_disk = b"".join(p.read_bytes() for p in stored.iterdir() if p.name.startswith("sessions.db"))
    assert "那就不会淋湿".encode() not in on_disk


@pytest.mark.parametrize("args", [("show", "ghost"), ("export", "ghost"), ("reset", "ghost", "--yes"),
                                  ("rename", "ghost", "x"), ("delete", "ghost", "--yes")])
def test_a_missing_session_is_a_clear_error(stored, invoke, args):
    result = invoke("sessions", *args)
    assert result.exit_code == 4
    assert result.stderr == "Error: No session named 'ghost'. See `oaicli sessions list`.\n"
    assert result.stdout == ""


def test_delete_asks_on_a_terminal_and_keeps_the_session_on_no(stored):
    result = run_tty("sessions", "delete", "trip", answers=[("[y/N]", "n\n")])
    assert "Delete session 'trip' and all its turns?" in result.output
    assert result.returncode == 1
    assert "trip" in session_names(stored)
    result = run_tty("sessions", "delete", "trip", "--format", "json", answers=[("[y/N]", "y\n")])
    assert result.returncode == 0
    assert "trip" not in session_names(stored)


@pytest.mark.parametrize("sub", ["list", "show", "export", "import", "reset", "rename", "delete"])
def test_every_command_has_help_with_an_example(invoke, sub):
    result = invoke("sessions", sub, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout


def test_help_does_not_import_the_store():
    code = ("import sys; from oaicli.cli.root import cli; "
            "print(any(m in sys.modules for m in ('sqlite3', 'tiktoken', 'oaicli.conversation.store')))")
    result = run_process_python(code)
    assert result.stdout.strip() == "False"


def run_process_python(code):
    import subprocess
    import sys

    from tests.conftest import REPO
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)


# Other stores (--store / OAICLI_STORE) and copies between them


def test_copy_moves_a_whole_store_and_the_copy_is_read_with_store(stored, invoke, tmp_path):
    source, target = f"sqlite:///{stored / 'sessions.db'}", f"sqlite:///{tmp_path / 'copy.db'}"
    result = invoke("sessions", "copy", "--from", source, "--to", target, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"sessions": 2, "turns": 6}
    shown = invoke("sessions", "export", "trip", "--store", target)
    assert json.loads(shown.stdout) == CONVERSATION
    listed = invoke("sessions", "list", "--format", "json", env={"OAICLI_STORE": target})
    assert {row["name"] for row in json.loads(listed.stdout)} == {"trip", "envelope:456:123"}
    with Store.open(tmp_path / "copy.db") as copy, Store.open(stored / "sessions.db") as original:
        for name in ("trip", "envelope:456:123"):  # ids, question ids, user ids and counts kept
            assert list(copy.turns(copy.get_session(name).id)) == list(original.turns(original.get_session(name).id))
    again = invoke("sessions", "copy", "--from", source, "--to", target)
    assert again.exit_code == 4 and "already holds sessions" in again.stderr


def test_copy_from_a_store_that_does_not_exist_creates_nothing(home, invoke, tmp_path):
    result = invoke("sessions", "copy", "--from", f"sqlite:///{tmp_path / 'none.db'}",
                    "--to", f"sqlite:///{tmp_path / 'to.db'}")
    assert result.exit_code == 4 and "There is no store at" in result.stderr
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "to.db").exists()


def test_an_unknown_store_url_is_one_line_and_exit_4(home, invoke):
    result = invoke("sessions", "list", "--store", "mysql://me@db/x")
    assert result.exit_code == 4 and "Unknown store URL" in result.stderr and len(result.stderr.splitlines()) == 1


def test_chat_session_uses_the_store_it_is_given(home, fake, invoke, tmp_path):
    store = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert invoke("chat", "--session", "s", "Hi", "--session-store", store).exit_code == 0
    assert not (home / "sessions.db").exists()
    with Store.open(tmp_path / "elsewhere.db") as opened:
        assert [m["content"] for m in opened.export_messages("s")] == ["Hi", "echo: Hi"]
