"""The poll's diff: what counts as a change, whatever order or digest format it meets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import SourceRead
from provisioner.engine.runtime.poller import diff

pytestmark = pytest.mark.fast


def person(**kw) -> Worker:
    return Worker(id="hr:1", source="hr", remote_id="1", first_name="Ada", **kw)


def test_a_snapshot_stored_under_another_digest_format_is_refreshed_without_an_event():
    stored = person(title="Engineer")
    # A digest as an earlier version computed it: different text, the same content.
    result = diff("hr", SourceRead(workers=[person(title="Engineer")]), {"hr:1": ("0" * 64, stored)})
    assert result.events == []
    assert [w.id for w in result.upserts] == ["hr:1"]
    changed = diff("hr", SourceRead(workers=[person(title="CTO")]), {"hr:1": ("0" * 64, stored)})
    assert [e.data.changed for e in changed.events] == [["title"]]


def test_a_custom_value_of_another_type_is_a_change_even_where_python_calls_it_equal():
    stored = person(custom={"badge": 1})
    now = person(custom={"badge": True})  # 1 == True in Python, not in the source's data
    result = diff("hr", SourceRead(workers=[now]), {"hr:1": (stored.content_hash(), stored)})
    assert [e.subject for e in result.events] == ["hr:1"]


def test_custom_attributes_in_another_order_are_no_change():
    first = person(custom={"badge": "7", "floor": 3})
    again = person(custom={"floor": 3, "badge": "7"})
    assert first.content_hash() == again.content_hash()
    assert diff("hr", SourceRead(workers=[again]), {"hr:1": (first.content_hash(), first)}).upserts == []


def test_a_copy_with_changes_gets_a_digest_of_its_own():
    original = person(title="Engineer")
    digest = original.content_hash()  # computed once and kept on the instance
    promoted = original.model_copy(update={"title": "CTO"})
    assert promoted.content_hash() != digest
    assert original.model_copy().content_hash() == digest
    assert promoted == person(title="CTO")  # equality is about fields, not whether a digest is cached


def test_blank_values_are_none_and_values_are_trimmed_so_padding_is_no_change():
    padded = Worker(id="hr:1", source="hr", remote_id=" 1 ", first_name=" Ada ", title="   ", department="")
    assert (padded.remote_id, padded.first_name, padded.title, padded.department) == ("1", "Ada", None, None)
    assert padded.content_hash() == person().content_hash()
    # A CSV's empty cell for a date, and a padded enum, are parsed as if the source had sent them clean.
    dated = Worker(id="hr:1", source="hr", remote_id="1", start_date="", status=" active ", termination_date="  ")
    assert (dated.start_date, dated.status, dated.termination_date) == (None, "active", None)
    # A blank country or time zone is unknown, not invalid.
    assert Worker(id="hr:1", source="hr", remote_id="1", country="", timezone="  ").country is None
    with pytest.raises(ValidationError, match="remote_id must not be blank"):
        Worker(id="hr:", source="hr", remote_id="  ")
    # The same from JSON (an event or a snapshot read back), which takes pydantic-core's own path.
    read = Worker.model_validate_json(
        '{"id": "hr:1", "source": "hr", "remote_id": "1", "start_date": " ", "title": ""}'
    )
    assert (read.start_date, read.title) == (None, None)


def test_every_field_parsed_from_a_string_has_its_blanks_cleared():
    from provisioner.engine.contracts.models import _PARSED

    parsed = {name for name, field in Worker.model_fields.items() if field.annotation not in (str, str | None)}
    assert set(_PARSED) == parsed


def test_the_events_of_one_poll_share_one_set_of_field_names_and_cannot_be_changed():
    read = SourceRead(workers=[person(), Worker(id="hr:2", source="hr", remote_id="2", first_name="Bo")])
    first, second = diff("hr", read, {}).events
    # ~700 bytes per model otherwise: 90 MB across the events of a 100,000-person first sync
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.data.__pydantic_fields_set__ is second.data.__pydantic_fields_set__
    with pytest.raises(ValidationError, match="frozen"):
        first.subject = "hr:3"
