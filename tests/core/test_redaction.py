"""Redaction: every form an error text may give a secret, masks that never print a control character,
and answers that arrive in pieces."""

import json
from urllib.parse import quote

import pytest

from oaicli.core.errors import PieceRedactor, mask, mask_key_like, redact, register_secret

SECRET = 'sk-red"act\\ed key-0123456789'


@pytest.fixture(autouse=True)
def registered():
    register_secret(SECRET)


@pytest.mark.parametrize("shown", [SECRET, repr(SECRET), repr(SECRET.encode()), json.dumps(SECRET),
                                   json.dumps({"k": SECRET}), quote(SECRET, safe=""), f"Bearer {SECRET}\n"])
def test_every_form_of_a_secret_is_masked(shown):
    text = redact(f"Illegal header value {shown}.")
    assert "0123456789" not in text and "sk-...6789" in text


def test_a_mask_escapes_control_characters_and_shows_seven_characters():
    assert mask("sk-abcdefghijk\nlogin: me") == "sk-...: me"
    assert mask("sk-abcdefghijkl\r\n") == "sk-...kl\\r\\n"
    assert mask("short") == "*****"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_a_secret_split_across_pieces_is_masked_and_nothing_else_is_lost(size):
    text = f"yes: {SECRET} is the key, as"  # ends with "s", a start of "sk-": held back until drained
    redactor = PieceRedactor()
    out = "".join(redactor.feed(text[i:i + size]) for i in range(0, len(text), size)) + redactor.drain()
    assert out == redact(text) and SECRET not in out and out.endswith("key, as")


def test_text_that_cannot_start_a_secret_passes_at_once():
    redactor = PieceRedactor()
    assert redactor.feed("hello there") == "hello there"
    assert redactor.feed(" and s") == " and " and redactor.drain() == "s"


@pytest.mark.parametrize("key", ["sk-test-abcdefghij-0123456789", "sk-proj-FAKEtestFAKEtestFAKE_te-st-0123",
                                 "sk-svcacct-0123456789abcdefghij", "sk-admin-0123456789abcdefghij"])
def test_anything_shaped_like_a_key_can_be_masked(key):
    assert mask_key_like(f"No such option '--{key}'. (also {key})") == \
        f"No such option '--sk-...{key[-4:]}'. (also sk-...{key[-4:]})"


@pytest.mark.parametrize("text", ["sk-too-short-0123", "task-abcdefghij-0123456789abc", "risk-abcdefghij-0123456789",
                                  "--model gpt-4o-mini-2024-07-18"])
def test_words_that_only_resemble_a_key_are_left_alone(text):
    assert mask_key_like(text) == text
