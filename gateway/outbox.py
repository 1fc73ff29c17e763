"""The durable outbox: events wait in SQLite until every destination has published them.

Each destination keeps its own cursor (the last outbox id it published), so a destination that
is down never blocks or loses data for another. Rows are deleted once every cursor passed them,
or when the outbox exceeds its bounds (rows, age); rows dropped before a destination published
them are counted against that destination.
"""

from __future__ import annotations

from dataclasses import dataclass

from .registry import Registry


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    device_id: int
    topic: str
    payload: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class Backlog:
    """What one destination still has to publish."""

    rows: int
    oldest_created_at: float | None
    dropped: int


class Outbox:
    """Outbox queries; every method blocks, call through ``asyncio.to_thread``."""

    def __init__(self, registry: Registry) -> None:
        self._db = registry.connection
        self._lock = registry.lock

    def cursor(self, destination: str) -> int:
        """The destination's cursor; a new destination starts before the oldest row kept."""
        with self._lock:
            row = self._db.execute("SELECT last_id FROM cursors WHERE destination = ?",
                                   (destination,)).fetchone()
            if row is not None:
                return int(row[0])
            start = self._db.execute("SELECT COALESCE(MIN(id), 0) - 1 FROM outbox").fetchone()
            last = max(0, int(start[0]))
            self._db.execute("INSERT INTO cursors (destination, last_id) VALUES (?, ?)",
                             (destination, last))
            return last

    def fetch(self, after: int, limit: int) -> list[OutboxRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device_id, topic, payload, created_at FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?", (after, limit)).fetchall()
        return [OutboxRow(*r) for r in rows]

    def advance(self, destination: str, last_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE cursors SET last_id = MAX(last_id, ?) WHERE destination = ?",
                             (last_id, destination))

    def backlog(self, destination: str, cursor: int) -> Backlog:
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE id > ?", (cursor,)).fetchone()
            row = self._db.execute("SELECT dropped FROM cursors WHERE destination = ?",
                                   (destination,)).fetchone()
        return Backlog(int(count), oldest, int(row[0]) if row else 0)

    def trim(self, destinations: list[str], max_rows: int, max_age_s: float,
             now: float) -> dict[str, int]:
        """Delete delivered rows and enforce the bounds; returns rows dropped per destination."""
        dropped: dict[str, int] = {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursors = dict(self._db.execute(
                    "SELECT destination, last_id FROM cursors").fetchall())
                active = {d: cursors.get(d, 0) for d in destinations}
                done = min(active.values()) if active else 0
                self._db.execute("DELETE FROM outbox WHERE id <= ?", (done,))
                cut = self._bound(max_rows, max_age_s, now)
                if cut > done:
                    for dest, cursor in active.items():
                        if cursor < cut:
                            lost = self._db.execute(
                                "SELECT COUNT(*) FROM outbox WHERE id > ? AND id <= ?",
                                (cursor, cut)).fetchone()[0]
                            dropped[dest] = int(lost)
                            self._db.execute(
                                "UPDATE cursors SET last_id = ?, dropped = dropped + ? "
                                "WHERE destination = ?", (cut, lost, dest))
                    self._db.execute("DELETE FROM outbox WHERE id <= ?", (cut,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return {d: n for d, n in dropped.items() if n}

    def _bound(self, max_rows: int, max_age_s: float, now: float) -> int:
        """Highest id that must go to respect the bounds (0 if none)."""
        by_rows = self._db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM (SELECT id FROM outbox ORDER BY id DESC "
            "LIMIT -1 OFFSET ?)", (max_rows,)).fetchone()[0]
        by_age = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox WHERE created_at < ?",
                                  (now - max_age_s,)).fetchone()[0]
        return max(int(by_rows), int(by_age))
