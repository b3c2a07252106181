"""Text a student controls (folder names, file names, messages), made safe for a TA's terminal and spreadsheet."""

from __future__ import annotations

import re

# C0 and C1 control characters (escape sequences start with ESC or CSI), DEL, and bidirectional overrides
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def for_terminal(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as ``?`` (newlines kept if asked), so it cannot move the
    cursor, recolour or rewrite a TA's terminal."""
    text = _CONTROL.sub("?", str(text))
    return text if keep_newlines else text.replace("\n", "?")


def for_csv(text: str) -> str:
    """``text`` as a spreadsheet cell that stays text: a leading ``=``, ``+``, ``-``, ``@`` (a formula) gets a ``'``."""
    text = _CONTROL.sub("?", str(text)).replace("\n", " ")
    return "'" + text if text.startswith(_FORMULA_START) else text
