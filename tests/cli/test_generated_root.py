"""The root lists the generated groups beside the hand-written commands, and hand-written verbs join them."""

import re

from oaicli.cli import root


def listed(help_text: str) -> set[str]:
    """The command names of a --help's Commands section."""
    return set(re.findall(r"(?m)^  (\S+)", help_text.split("Commands:")[1]))


def test_help_lists_generated_groups_from_the_index_and_hides_what_hand_written_commands_cover(invoke):
    names = listed(invoke("--help").stdout)
    assert {"vector-stores", "batches", "conversations", "admin", "chat-completions", "chat", "models"} <= names
    assert "completions" not in names and "uploads" not in names  # wholly hand-written (complete, files upload)
    assert "assistants" not in names  # deprecated by the API: hidden, still runs
    assert invoke("assistants", "--help").exit_code == 0


def test_extra_commands_join_a_generated_group_and_win_over_a_generated_verb(invoke, monkeypatch):
    monkeypatch.setitem(root.EXTRA_COMMANDS, "batches", "tests.cli.extra_verbs")
    assert {"submit", "get", "cancel", "create", "list"} <= listed(invoke("batches", "--help").stdout)
    assert invoke("batches", "submit").stdout == "hand-written submit\n"
    assert invoke("batches", "get").stdout == "hand-written get\n"


def test_the_batch_and_response_verbs_join_their_generated_groups(invoke):
    assert listed(invoke("batches", "--help").stdout) == {"cancel", "create", "get", "list", "submit", "follow",
                                                          "results"}
    assert {"create", "get", "cancel", "follow", "input-items"} <= listed(invoke("responses", "--help").stdout)


def test_a_hand_written_group_gains_the_generated_verbs_it_lacks(invoke):
    # The generated twins of transcribe, translate and speak stay hidden.
    assert listed(invoke("audio", "--help").stdout) == {"speak", "transcribe", "translate", "voice-consents", "voices"}


def test_stored_chat_completions_live_under_their_alias(invoke):
    assert listed(invoke("chat-completions", "--help").stdout) == {"list", "get", "update", "delete", "messages"}
    assert "Usage: cli chat [OPTIONS] [PROMPT]" in invoke("chat", "--help").stdout
