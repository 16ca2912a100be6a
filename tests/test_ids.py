"""WorkerId: the one place a worker id is built and taken apart (the wire keeps the string)."""

import pytest

from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.protocols import normalize_records

pytestmark = pytest.mark.fast


def test_a_worker_id_round_trips_and_splits_at_the_first_colon_only():
    parsed = WorkerId.parse("workday:urn:emp:42")
    assert (parsed.source, parsed.remote_id) == ("workday", "urn:emp:42")
    assert str(parsed) == "workday:urn:emp:42"
    source, remote_id = WorkerId.of("hr", 7)
    assert (source, remote_id) == ("hr", "7") and str(WorkerId.of("hr", 7)) == "hr:7" == WorkerId.text("hr", 7)


def test_text_without_a_colon_is_a_source_with_no_remote_id():
    assert WorkerId.parse("hr") == WorkerId("hr", "")


def test_normalized_workers_and_their_managers_carry_worker_ids():
    read = normalize_records("hr", [{"id": " 12 ", "manager": 7}], lambda r: {"manager_id": r["manager"]})
    assert [(w.id, w.remote_id, w.manager_id) for w in read.workers] == [("hr:12", "12", "hr:7")]
