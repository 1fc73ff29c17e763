"""The durable outbox on a real SQLite file: cursors per destination, trimming, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.outbox import Outbox
from gateway.registry import CounterRow, OutboxRecord, Registry


@pytest.fixture
def registry(tmp_path: Path):
    reg = Registry(tmp_path / "r.sqlite3")
    reg.add(1, bytes(32))
    yield reg
    reg.close()


def _append(reg: Registry, n: int, t0: float = 1000.0) -> None:
    reg.commit([], [OutboxRecord(1, "device/00000001/event/detection", f"{i}".encode(),
                                 t0 + i) for i in range(n)])


def test_commit_persists_counters_and_records_atomically(registry: Registry) -> None:
    registry.commit([CounterRow(1, 41, 0b101, 512, 7)], [OutboxRecord(1, "t", b"p", 1.0)])
    state = registry.load()[1]
    assert (state.window.highest, state.window.bitmap) == (41, 0b101)
    assert state.down_reserved == 512 and state.detection_seq == 7
    assert [r.payload for r in Outbox(registry).fetch(0, 10)] == [b"p"]


def test_registry_file_is_private(tmp_path: Path, registry: Registry) -> None:
    assert (tmp_path / "r.sqlite3").stat().st_mode & 0o077 == 0


def test_each_destination_has_its_own_cursor(registry: Registry) -> None:
    out = Outbox(registry)
    _append(registry, 5)
    a, b = out.cursor("a"), out.cursor("b")
    assert a == b == 0
    rows = out.fetch(a, 3)
    assert [r.payload for r in rows] == [b"0", b"1", b"2"]
    out.advance("a", rows[-1].id)
    assert out.cursor("a") == rows[-1].id
    assert out.backlog("a", out.cursor("a")).rows == 2
    assert out.backlog("b", out.cursor("b")).rows == 5


def test_trim_keeps_rows_until_every_destination_passed(registry: Registry) -> None:
    out = Outbox(registry)
    _append(registry, 4)
    out.cursor("a")
    out.cursor("b")
    out.advance("a", 4)
    assert out.trim(["a", "b"], 100, 1e9, 2000.0) == {}
    assert len(out.fetch(0, 10)) == 4
    out.advance("b", 2)
    out.trim(["a", "b"], 100, 1e9, 2000.0)
    assert [r.id for r in out.fetch(0, 10)] == [3, 4]


def test_bounds_drop_oldest_and_count_per_lagging_destination(registry: Registry) -> None:
    out = Outbox(registry)
    _append(registry, 10)
    out.cursor("fast")
    out.cursor("slow")
    out.advance("fast", 10)
    dropped = out.trim(["fast", "slow"], max_rows=4, max_age_s=1e9, now=2000.0)
    assert dropped == {"slow": 6}
    assert [r.id for r in out.fetch(out.cursor("slow"), 10)] == [7, 8, 9, 10]
    assert out.backlog("slow", out.cursor("slow")).dropped == 6


def test_age_bound(registry: Registry) -> None:
    out = Outbox(registry)
    _append(registry, 5, t0=1000.0)
    out.cursor("a")
    assert out.trim(["a"], max_rows=100, max_age_s=10.0, now=1012.5) == {"a": 3}
    assert [r.created_at for r in out.fetch(out.cursor("a"), 10)] == [1003.0, 1004.0]


def test_new_destination_starts_at_oldest_row(registry: Registry) -> None:
    out = Outbox(registry)
    _append(registry, 6)
    out.cursor("a")
    out.advance("a", 6)
    out.trim(["a"], 100, 1e9, 2000.0)
    _append(registry, 2)
    assert out.fetch(out.cursor("late"), 10)[0].id == 7
