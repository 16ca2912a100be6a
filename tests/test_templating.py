"""The fast path for simple templates and conditions must agree with Jinja2 everywhere it applies."""

from __future__ import annotations

from datetime import date

import pytest

from provisioner.engine.contracts.models import Worker
from provisioner.engine.kit.templating import Condition, Template, TemplateError

pytestmark = pytest.mark.fast

WORKERS = [
    Worker(
        id="hr:1",
        source="hr",
        remote_id="1",
        first_name="José",
        last_name="Ñúñez",
        department="R&D",
        employment_type="full_time",
        status="active",
        start_date=date(2026, 1, 5),
    ),
    Worker(id="hr:2", source="hr", remote_id="2", first_name="Ann", preferred_name="Annie", status="on_leave"),
]

TEMPLATES = [
    "{{ worker.work_email or worker.id }}",
    "dept-{{ worker.department | slug }}",
    "{{ worker.title }}",
    "{{ worker.display_name or ((worker.preferred_name or worker.first_name or '') ~ ' ' ~ worker.last_name) }}",
    "{{ worker.first_name | ascii | lower }}.{{ worker.last_name | ascii | lower }}",
    "{{ worker.start_date }}",
    "{{ worker.status }}",
    "{{ worker.first_name | default('x') }}",
]
CONDITIONS = [
    "worker.department == 'R&D'",
    "worker.employment_type in ['full_time', 'part_time']",
    "worker.status != 'active' or not worker.title",
    "worker.first_name | length > 3",
    "worker.department and worker.department | lower == 'r&d'",
    "worker.status not in ('terminated',)",
]


@pytest.mark.parametrize("source", TEMPLATES)
def test_templates_render_like_jinja(source: str):
    template = Template(source)
    for worker in WORKERS:
        expected = template._template.render(worker=worker).strip() or None
        assert template.render(worker=worker) == expected


@pytest.mark.parametrize("source", CONDITIONS)
def test_conditions_evaluate_like_jinja(source: str):
    condition = Condition(source)
    for worker in WORKERS:
        assert condition.evaluate(worker=worker) == bool(condition._expression(worker=worker))


def test_simple_shapes_take_the_fast_path_and_unknown_names_still_fail():
    assert Template("{{ worker.title }}")._fast is not None
    assert Condition("worker.department == 'R&D' and worker.status in ['active']")._fast is not None
    assert Template("{{ worker.first_name | default('x') }}")._fast is None  # filters with arguments: Jinja
    with pytest.raises(TemplateError, match="nope"):
        Template("{{ worker.nope }}").render(worker=WORKERS[0])
    with pytest.raises(TemplateError):
        Condition("worker.nope == 1").evaluate(worker=WORKERS[0])
    assert Template("{{ worker.title }}").render(worker=WORKERS[0]) is None  # None renders as nothing
