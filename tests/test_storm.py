"""A fault storm over real HTTP, the real broker and a real SCIM server (tests/storm.py): when the
window closes and the retries have run, everything is exactly right, and every exit code told the
truth along the way. bench/storm.py runs the same with 1,000 workers."""

from __future__ import annotations

from tests.storm import storm


def test_a_fault_storm_converges_to_exactly_right(tmp_path):
    figures = storm(200, tmp_path, share=0.3, window=3.0)
    print(figures.as_json())  # the figures, with pytest -s
    assert figures.problems == []
    assert figures.requests_faulted > 0 and all(figures.faults_by_kind.values())
    assert figures.syncs[-1] == 0 and set(figures.syncs[:-1]) <= {1}
    assert figures.accounts == 200
