"""The learned profile of each target (what the app does and does not do), one row per target,
so every process and every command starts from what any of them learned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from provisioner.engine.contracts.profile import TargetProfile
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, as_utc


class TargetProfileRow(SQLModel, table=True):
    __tablename__ = "target_profile"

    target: str = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Profiles:
    def __init__(self, db: Database):
        self.db = db

    def get(self, target: str) -> TargetProfile | None:
        with self.db.session() as s:
            row = s.get(TargetProfileRow, target)
            return TargetProfile.model_validate({**row.body, "updated_at": as_utc(row.updated_at)}) if row else None

    def save(self, target: str, profile: TargetProfile) -> None:
        """The whole profile: what a writer reports is everything it knows, the stored lessons included."""
        with self.db.session() as s:
            s.merge(
                TargetProfileRow(
                    target=target, body=profile.model_dump(mode="json", exclude={"updated_at"}), updated_at=utcnow()
                )
            )

    def forget(self, target: str) -> bool:
        with self.db.session() as s:
            row = s.get(TargetProfileRow, target)
            if row is None:
                return False
            s.delete(row)
            return True
