"""Terminal-safe text: control characters from users and servers are shown as escapes, never acted on."""

import re

# C0 and C1 controls (ESC starts the terminal's own commands; NUL, BEL, CR rewrite or hide what is
# shown) and the bidirectional overrides that reorder a line. Newline and tab keep their meaning.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every unsafe character written as its escape (ESC as `\\x1b`), safe to show on a terminal."""
    return _UNSAFE.sub(_escaped, text)
