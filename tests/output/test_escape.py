"""The one escaping helper: control characters shown, not acted on; ordinary text untouched."""

from oaicli.output.escape import printable


def test_controls_and_bidi_overrides_are_escaped_and_text_is_kept():
    assert printable("a\x1b[2Jb\x00c\x07\r\x9b\u202e") == "a\\x1b[2Jb\\x00c\\x07\\x0d\\x9b\\u202e"
    assert printable("línea 1\n\tпривет 我 🙂") == "línea 1\n\tпривет 我 🙂"
