"""The person several records make (usecases/person.py, pure) and the identity: block's checks."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from provisioner.engine.config import Config
from provisioner.engine.contracts.models import Worker, WorkerStatus
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.runtime.usecases.person import Ranking, ended_note, match_keys, merge

pytestmark = pytest.mark.fast

TODAY = date(2026, 12, 6)
HRIS_OVER_ATS = Ranking(ats=frozenset({"ats"}))


def record(source: str, remote_id: str, **fields: Any) -> Worker:
    return Worker(id=f"{source}:{remote_id}", source=source, remote_id=remote_id, **fields)


def test_match_values_are_trimmed_and_case_folded_in_the_configured_order():
    worker = record("hr", "1", work_email=" Ada@Example.COM", custom={"national_id_hash": "AB12"})
    assert match_keys(worker, ["personal_email", "custom.national_id_hash", "work_email"]) == [
        ("custom.national_id_hash", "custom.national_id_hash=ab12"),
        ("work_email", "work_email=ada@example.com"),
    ]


def test_the_hris_outranks_the_ats_for_lifecycle_and_values_it_has():
    candidate = record("ats", "1", status="pending", title="Candidate", personal_email="ada@mail.example")
    employee = record("hr", "9", status="terminated", title="Engineer", termination_date=TODAY)
    person = merge("ats:1", [candidate, employee], HRIS_OVER_ATS, TODAY, 7, was_active=True)
    assert person.worker.id == "ats:1" and person.primary == "hr:9"
    assert person.worker.status is WorkerStatus.terminated  # a stale "hired" candidate keeps nobody active
    assert person.worker.title == "Engineer" and person.worker.personal_email == "ada@mail.example"


def test_a_field_may_have_its_own_source_order():
    ranking = Ranking(order=("hr", "ats"), fields={"personal_email": ("ats", "hr")})
    a, b = record("ats", "1", personal_email="a@ats"), record("hr", "2", personal_email="a@hr", title="T")
    person = merge("hr:2", [a, b], ranking, TODAY, 7, was_active=False)
    assert person.worker.personal_email == "a@ats" and person.worker.title == "T"


def test_within_one_source_the_liveliest_record_leads():
    ended = record("hr", "17", status="terminated", employment_type="contractor", start_date=date(2025, 1, 1))
    active = record("hr", "912", status="active", employment_type="full_time", start_date=TODAY)
    person = merge("hr:17", [ended, active], Ranking(), TODAY, 7, was_active=True)
    assert person.primary == "hr:912" and person.worker.status is WorkerStatus.active
    assert person.worker.employment_type.value == "full_time" and person.bridged is None


@pytest.mark.parametrize(
    ("starts_in", "was_active", "status"),
    [
        (1, True, WorkerStatus.active),  # the conversion the next day: bridged
        (7, True, WorkerStatus.active),  # the window's last day
        (8, True, WorkerStatus.pending),  # beyond it: the person waits like any pre-hire
        (1, False, WorkerStatus.pending),  # nobody was active: nothing to bridge
    ],
)
def test_a_pending_record_bridges_an_ended_one_within_the_window(starts_in, was_active, status):
    ended = record("hr", "17", status="terminated", termination_date=TODAY, start_date=date(2025, 1, 1))
    pending = record("hr", "912", status="pending", start_date=TODAY + timedelta(days=starts_in))
    person = merge("hr:17", [ended, pending], Ranking(), TODAY, 7, was_active=was_active)
    assert person.worker.status is status
    if status is WorkerStatus.active:
        assert person.worker.termination_date is None and person.worker.start_date == date(2025, 1, 1)
        assert person.bridged == f"hr:17 ended; the same person starts as hr:912 on {pending.start_date}"
        assert ended_note(["hr:17"], person, [ended, pending]) == person.bridged


def test_the_note_names_who_keeps_the_person_active_and_none_when_the_person_left():
    gone = record("ats", "1", status="terminated")
    employee = record("hr", "9", status="active")
    person = merge("ats:1", [gone, employee], HRIS_OVER_ATS, TODAY, 7, was_active=True)
    assert ended_note(["ats:1"], person, [gone, employee]) == "ats:1 ended; the same person is active as hr:9"
    left = merge("ats:1", [record("hr", "9", status="terminated")], HRIS_OVER_ATS, TODAY, 7, was_active=True)
    assert ended_note(["hr:9"], left, []) is None


def test_rules_know_ats_sources_by_their_vendor_and_refuse_unknown_fields():
    config = Config.model_validate(
        {
            "sources": [
                {"name": "gh", "type": "greenhouse", "base_url": "http://x", "api_key": "k"},
                {"name": "hr", "type": "bamboohr", "base_url": "http://y", "api_key": "k"},
            ],
            "identity": {"match": ["work_email"]},
        }
    )
    rules = IdentityRules.of(config)
    assert rules is not None and rules.ranking.ats == frozenset({"gh"})
    assert rules.ranking.rank("hr") < rules.ranking.rank("gh")
    assert IdentityRules.of(Config()) is None
    with pytest.raises(ValidationError, match="'department' cannot identify a person"):
        Config.model_validate({"identity": {"match": ["department"]}})
