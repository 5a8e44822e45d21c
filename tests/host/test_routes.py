"""Route templates and NCRONTAB schedules (pure functions, no host)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local.host.routes import RouteTemplate
from local.host.timers import check_schedule, next_occurrence


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("health", "health", {}),
        ("health", "HEALTH", {}),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/abc", None),
        ("ics/{token}.ics", "ics/abc-DEF_1.ics", {"token": "abc-DEF_1"}),
        ("ics/{token}.ics", "ics/abc.ical", None),
        ("syncro/notifications/{secret}", "syncro/notifications/s%2Fx", {"secret": "s/x"}),
        ("syncro/notifications/{secret}", "syncro/notifications/a/b", None),
        ("admin/sync/{syncro_user_id:int}", "admin/sync/7", {"syncro_user_id": "7"}),
        # int is Int32 and long Int64 in ASP.NET routing: a real Syncro id needs long.
        ("items/{id:int}", "items/2147483647", {"id": "2147483647"}),
        ("items/{id:int}", "items/2147483648", None),
        ("items/{id:int}", "items/5560138523", None),
        ("items/{id:long}", "items/5560138523", {"id": "5560138523"}),
        ("items/{id:long}", "items/9223372036854775808", None),
        ("optional/{name?}", "optional", {}),
        ("optional/{name?}", "optional/x", {"name": "x"}),
        ("files/{*rest}", "files/a/b/c", {"rest": "a/b/c"}),
        ("x/{id:guid}", "x/6f9619ff-8b86-d011-b42d-00cf4fc964ff", {"id": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}),
        ("x/{id:guid}", "x/nope", None),
    ],
)
def test_route_templates(template: str, path: str, expected: dict | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_unknown_constraint_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        RouteTemplate("x/{id:weird}")


def test_ncrontab_has_seconds_first() -> None:
    after = datetime(2026, 11, 24, 10, 2, 30, tzinfo=UTC)
    assert next_occurrence("0 */5 * * * *", after) == datetime(2026, 11, 24, 10, 5, 0, tzinfo=UTC)
    assert next_occurrence("30 * * * * *", after) == datetime(2026, 11, 24, 10, 3, 30, tzinfo=UTC)
    assert next_occurrence("0 0 3 * * 1", after) == datetime(2026, 11, 30, 3, 0, 0, tzinfo=UTC)  # Monday 03:00


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 */5 * * * * *", "61 * * * * *", "nonsense"])
def test_invalid_schedules_are_refused(schedule: str) -> None:
    with pytest.raises(ValueError):
        check_schedule(schedule)
