"""What the routes share (lensdb/service/context.py): error bounds are kept per server and
per key, never in a module-level cache that outlives the server or mixes stores."""

from __future__ import annotations

from lensdb.service.context import ServiceContext
from lensdb.service.jobs import JobQueue
from lensdb.service.policy import PathPolicy


def _context(tmp_path, name: str) -> ServiceContext:
    return ServiceContext(tmp_path / name, PathPolicy([tmp_path]), JobQueue(tmp_path / name))


def test_an_error_bound_is_computed_once_per_key_and_per_server(tmp_path):
    calls: list[str] = []

    def compute(value: float | None):
        def run() -> float | None:
            calls.append(f"{value}")
            return value
        return run

    one, two = _context(tmp_path, "a"), _context(tmp_path, "b")
    assert one.error_bound(("car", 1, "t0", 10), compute(0.5)) == 0.5
    assert one.error_bound(("car", 1, "t0", 10), compute(9.0)) == 0.5  # kept
    assert one.error_bound(("car", 1, "t0", 11), compute(0.7)) == 0.7  # a label was added
    assert two.error_bound(("car", 1, "t0", 10), compute(0.9)) == 0.9  # another server
    assert one.error_bound(("bus", 1, "t0", 10), compute(None)) is None
    assert one.error_bound(("bus", 1, "t0", 10), compute(1.0)) is None  # None is kept too
    assert calls == ["0.5", "0.7", "0.9", "None"]
