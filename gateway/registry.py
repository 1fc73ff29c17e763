"""Device registry and outbox in one SQLite database (WAL): keys, counters, replay windows and
undelivered events survive restarts and power cuts.

The registry is loaded into memory at start; the event loop works on the in-memory records and
``Registry.commit`` writes dirty counter state and new outbox rows in one transaction from a
worker thread (group commit). Keys never leave this module in logs or reprs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from protocol import DeviceKeys, MessageType, ReplayWindow, Telemetry, decode_body
from protocol.limits import COUNTER_BLOCK, TAG_LENGTHS

from .devconfig import ConfigSync
from .errors import DeviceExists, DeviceNotFound, RegistryError
from .sessions import SessionState

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS devices (
    device_id   INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    master_key  BLOB NOT NULL,
    tag_len     INTEGER NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    device_id     INTEGER PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
    up_highest    INTEGER,
    up_bitmap     BLOB NOT NULL,
    down_reserved INTEGER NOT NULL,
    detection_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    destination TEXT PRIMARY KEY,
    last_id     INTEGER NOT NULL,
    dropped     INTEGER NOT NULL DEFAULT 0
);
-- What the device last told us: written with the counters by the group commit.
CREATE TABLE IF NOT EXISTS device_status (
    device_id        INTEGER PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
    last_seen        REAL,
    reported_version INTEGER NOT NULL DEFAULT 0,
    config_status    TEXT NOT NULL DEFAULT '',
    config_bad_key   INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO device_status (device_id) SELECT device_id FROM devices;
-- Every administrative change, append-only (the triggers refuse edits); secrets never enter it.
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    before  TEXT,
    after   TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# Device ids 0 and 0xFFFFFFFF are reserved by the protocol.
_MIN_ID: Final = 1
_MAX_ID: Final = 0xFFFFFFFE


@dataclass(slots=True)
class DeviceState:
    """What the gateway knows about one device, in memory, between flushes."""

    device_id: int
    name: str
    keys: DeviceKeys = field(repr=False)
    tag_len: int
    window: ReplayWindow
    down_next: int
    down_reserved: int
    dirty: bool = False
    hw_kind: str = "unknown"
    fw_version: str = ""
    boot_reason: str = ""
    config_version: int = 0  # reported by the device (HELLO, CONFIG_ACK)
    last_seen: float | None = None
    last_addr: tuple[str, int] | None = None
    # The last TELEMETRY, as its verified body or decoded (the fast intake keeps the body and
    # decodes it when read: a scrape every 15 s, not every frame). ``staged_telemetry`` waits
    # for its frame's window to reach the disk; ``shown_telemetry`` is what status and /metrics
    # show (``telemetry``).
    staged_telemetry: Telemetry | bytes | None = None
    shown_telemetry: Telemetry | bytes | None = None
    detection_seq: int = 0
    # Insertion-ordered, bounded by core.RECENT_EVENTS: idempotency keys and event start times.
    # Created at the device's first detection: most devices never need them (memory per device).
    recent_events: dict[str, None] | None = None
    event_starts: dict[int, float] | None = None
    session: SessionState = SessionState.PROVISIONED
    group: str = ""
    config: ConfigSync = field(default_factory=ConfigSync)

    def take_down_counter(self) -> int | None:
        """Next downlink counter, or None when the persisted reservation is used up."""
        if self.down_next >= self.down_reserved:
            return None
        value = self.down_next
        self.down_next += 1
        self.dirty = True
        return value

    @property
    def telemetry(self) -> Telemetry | None:
        t = self.shown_telemetry
        if isinstance(t, bytes):
            return decode_body(MessageType.TELEMETRY, t)  # type: ignore[return-value]
        return t

    @property
    def needs_reservation(self) -> bool:
        return self.down_reserved - self.down_next < COUNTER_BLOCK // 4


class Registry:
    """SQLite-backed registry. Methods block: call them through ``asyncio.to_thread``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when it returns, so a reply released after it is safe
            # across a power cut (WAL keeps the cost to one fsync per group commit).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise RegistryError(
                f"cannot open registry {path}: {exc} (is the directory writable?)"
            ) from exc
        # Keys are secrets: the database is readable by its owner only.
        path.chmod(0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, device_id: int, master_key: bytes, *, name: str = "", tag_len: int = 8,
            down_reserved: int = 0, audit: AuditEntry | None = None) -> None:
        """Register a device; ``down_reserved`` > 0 persists a first downlink block with it."""
        if not _MIN_ID <= device_id <= _MAX_ID:
            raise RegistryError(f"device id {device_id} outside {_MIN_ID}..{_MAX_ID:#x}")
        if tag_len not in TAG_LENGTHS:
            raise RegistryError(f"tag length {tag_len} is not one of {TAG_LENGTHS}")
        DeviceKeys.from_master(master_key)  # validates the key length
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO devices VALUES (?, ?, ?, ?, ?)",
                    (device_id, name or f"{device_id:08x}", master_key, tag_len, time.time()),
                )
                self._db.execute(
                    "INSERT INTO counters (device_id, up_highest, up_bitmap, down_reserved) "
                    "VALUES (?, NULL, ?, ?)", (device_id, bytes(8), down_reserved)
                )
                self._db.execute("INSERT INTO device_status (device_id) VALUES (?)",
                                 (device_id,))
                if audit is not None:
                    append_audit(self._db, audit)
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                raise DeviceExists(device_id) from exc
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def remove(self, device_id: int, *, audit: AuditEntry | None = None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute("DELETE FROM devices WHERE device_id = ?", (device_id,))
                if cur.rowcount == 0:
                    raise DeviceNotFound(device_id)
                if audit is not None:
                    append_audit(self._db, audit)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load(self) -> dict[int, DeviceState]:
        """Every device with its counters; downlink counters resume above the last reservation."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.device_id, d.name, d.master_key, d.tag_len, c.up_highest, "
                "c.up_bitmap, c.down_reserved, c.detection_seq, s.last_seen, "
                "COALESCE(s.reported_version, 0), COALESCE(s.config_status, ''), "
                "COALESCE(s.config_bad_key, 0) "
                "FROM devices d JOIN counters c USING (device_id) "
                "LEFT JOIN device_status s USING (device_id)"
            ).fetchall()
        states = {}
        for (dev, name, key, tag_len, highest, bitmap, reserved, seq, last_seen, reported,
             status, bad_key) in rows:
            states[dev] = DeviceState(
                device_id=dev, name=name, keys=DeviceKeys.from_master(key), tag_len=tag_len,
                window=ReplayWindow(highest, int.from_bytes(bitmap, "little")),
                down_next=reserved, down_reserved=reserved, detection_seq=seq,
                last_seen=last_seen, config_version=reported,
                config=ConfigSync(status=status, bad_key=bad_key),
            )
        return states

    def commit(self, rows: list[CounterRow], records: list[OutboxRecord]) -> int:
        """Persist counter rows and append outbox records in one transaction (worker thread).

        Returns the outbox id of the last record appended (0 when none).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "UPDATE counters SET up_highest = ?, up_bitmap = ?, down_reserved = ?, "
                    "detection_seq = ? WHERE device_id = ?",
                    [(r.up_highest, r.up_bitmap.to_bytes(8, "little"), r.down_reserved,
                      r.detection_seq, r.device_id) for r in rows])
                self._db.executemany(
                    "UPDATE device_status SET last_seen = ?, reported_version = ?, "
                    "config_status = ?, config_bad_key = ? WHERE device_id = ?",
                    [(r.last_seen, r.config_version, r.config_status, r.config_bad_key,
                      r.device_id) for r in rows if r.last_seen is not None])
                last = 0
                for rec in records:
                    cur = self._db.execute(
                        "INSERT INTO outbox (device_id, topic, payload, created_at) "
                        "VALUES (?, ?, ?, ?)", (rec.device_id, rec.topic, rec.payload,
                                                rec.created_at))
                    last = cur.lastrowid or last
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return last

    @property
    def connection(self) -> sqlite3.Connection:
        """For the outbox, which shares the database and its lock."""
        return self._db

    @property
    def lock(self) -> threading.Lock:
        return self._lock


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """An event to deliver: ``topic`` is relative to each destination's prefix and site."""

    device_id: int
    topic: str
    payload: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class CounterRow:
    device_id: int
    up_highest: int | None
    up_bitmap: int
    down_reserved: int
    detection_seq: int
    # device_status; a row without last_seen (never heard from) leaves the status untouched
    last_seen: float | None = None
    config_version: int = 0
    config_status: str = ""
    config_bad_key: int = 0


@dataclass(slots=True)
class Snapshot:
    """What one group commit persists (``rows``) and then shows (staged telemetry)."""

    rows: list[CounterRow]
    states: list[DeviceState]  # those the rows were taken from
    telemetry: list[tuple[DeviceState, Telemetry | bytes]]

    def show(self) -> None:
        """After the commit: the telemetry of committed frames becomes visible."""
        for state, t in self.telemetry:
            state.shown_telemetry = t

    def restore(self) -> None:
        """After a failed commit: everything taken is dirty again, telemetry staged again
        (unless a newer report arrived meanwhile)."""
        for state in self.states:
            state.dirty = True
        for state, t in self.telemetry:
            if state.staged_telemetry is None:
                state.staged_telemetry = t


def snapshot(states: list[DeviceState]) -> Snapshot:
    """Rows to persist for dirty ``states`` (call on the event loop); clears their dirty flag
    and takes their staged telemetry.

    A downlink reservation running low is extended in the row only; ``apply_reservations`` makes
    it usable once the row is on disk, so no unpersisted counter is ever sent.
    """
    rows = []
    taken = []
    shown = []
    for s in states:
        if not s.dirty and not s.needs_reservation:
            continue
        s.dirty = False
        taken.append(s)
        reserved = s.down_next + COUNTER_BLOCK if s.needs_reservation else s.down_reserved
        rows.append(CounterRow(s.device_id, s.window.highest, s.window.bitmap, reserved,
                               s.detection_seq, s.last_seen, s.config_version, s.config.status,
                               s.config.bad_key))
        if s.staged_telemetry is not None:
            shown.append((s, s.staged_telemetry))
            s.staged_telemetry = None
    return Snapshot(rows, taken, shown)


def apply_reservations(states: dict[int, DeviceState], rows: list[CounterRow]) -> None:
    """After ``Registry.commit(rows, ...)`` returned: the persisted reservations may be used."""
    for r in rows:
        s = states.get(r.device_id)
        if s is not None and r.down_reserved > s.down_reserved:
            s.down_reserved = r.down_reserved


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One administrative change. ``before``/``after`` must already be free of secrets."""

    actor: str  # "token:<name>", "uid:<n>" (unix peer) or "cli:uid:<n>" (offline command)
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: float


def append_audit(db: sqlite3.Connection, entry: AuditEntry) -> None:
    """Append ``entry`` inside the caller's transaction (so a change and its audit row are one)."""
    db.execute(
        "INSERT INTO audit (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
        (entry.at, entry.actor, entry.action, entry.target,
         None if entry.before is None else json.dumps(entry.before, sort_keys=True),
         None if entry.after is None else json.dumps(entry.after, sort_keys=True)))
