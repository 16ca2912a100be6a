"""What every block of the config file shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A block that refuses keys it does not know: a typo is an error, never a silent default."""

    model_config = ConfigDict(extra="forbid")
