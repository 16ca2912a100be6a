"""Text from HR systems and apps made safe to print: Rich markup in it is shown, not obeyed (a
`[/]` in a title must not crash `explain`, a `[link=...]` must not render a link), and terminal
control sequences are shown as escapes instead of reaching the terminal (an ESC sequence in a
name could retitle the window or hide lines; a newline in an id could forge a log line)."""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape

# C0 and C1 controls and DEL; tab is kept only where a caller asks (never in a field).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def controls_escaped(text: str) -> str:
    """`text` with every control character written as a visible escape (`\\n`, `\\x1b`)."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: Any) -> str:
    """A value from the data, ready to go into a Rich markup string."""
    return escape(controls_escaped(str(value)))


class SafeMessages:
    """Mixed into a logging.Formatter: the message of a record (the part that carries ids and
    reasons from the data) is one line whatever it holds; a traceback after it is left as is."""

    def formatMessage(self, record: Any) -> str:
        return controls_escaped(super().formatMessage(record))  # type: ignore[misc]
