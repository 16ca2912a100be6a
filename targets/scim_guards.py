"""Guards on what goes to and comes from a SCIM app.

Values from HR data put into SCIM filters are quoted as RFC 7644 §3.4.2.2 says (a JSON string):
`\\` and `"` escaped, so a name can never end the string and add a clause of its own. Control
characters are refused rather than escaped: servers disagree on JSON escapes inside filters, and
no userName, email or group name has a line break in it on purpose. A listing whose
totalResults keeps promising more stops at `max_pages`."""

from __future__ import annotations

import unicodedata
from typing import Any

from provisioner.targets.scim_support import ScimError


class FilterValueRefused(ScimError):
    def __init__(self, attribute: str):
        super().__init__(400, "invalidValue", f"the value for {attribute} holds control characters; not in a filter")


class ListingRunaway(ScimError):
    """A listing past `max_pages` (not retried: the app would promise more again)."""

    def __init__(self, target: str, resource: str, pages: int, promised: int | None = None):
        said = f"would take {promised:,} pages, over" if promised else "passed"
        super().__init__(0, None, f"target {target}: listing {resource}s {said} {pages} pages (max_pages); refused")


def eq(attribute: str, value: Any) -> str:
    """`attribute eq "value"`, the value escaped; FilterValueRefused for control characters."""
    text = str(value)
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise FilterValueRefused(attribute)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} eq "{escaped}"'
