"""Fleet administration in the registry database: groups, desired configuration per group and per
device, desired versions, and the append-only audit log (docs/gateway.md "Admin API").

A device's desired configuration is its group's configuration overlaid with its own overrides.
Whenever that result changes, the device's desired version goes up by one, and the gateway pushes
it (``devconfig.ConfigSync``). Every method blocks: call it through ``asyncio.to_thread``. Inputs
are validated by the caller (the admin API, the CLI); secrets are redacted before they reach the
audit log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from .devconfig import Config, ConfigValue, merge, next_version, redact
from .errors import DeviceNotFound
from .registry import AuditEntry, Registry, append_audit

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS groups (
    name        TEXT PRIMARY KEY,
    config      TEXT NOT NULL DEFAULT '{}',
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS device_config (
    device_id       INTEGER PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
    grp             TEXT REFERENCES groups(name),
    overrides       TEXT NOT NULL DEFAULT '{}',
    desired_version INTEGER NOT NULL DEFAULT 0,
    effective       TEXT NOT NULL DEFAULT '{}'
);
"""
# Audit pages: enough for a screen, small enough to answer quickly.
MAX_AUDIT_PAGE: Final = 500

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Desired:
    """A device's desired configuration as stored (``config`` may hold secrets: never log it)."""

    device_id: int
    group: str
    version: int
    config: Config = field(repr=False)


@dataclass(frozen=True, slots=True)
class DeviceConfigView:
    """What the API shows of a device's configuration (secrets redacted)."""

    group: str
    overrides: dict[str, ConfigValue]
    desired: dict[str, ConfigValue]
    desired_version: int


class Fleet:
    """Groups, configuration and audit over the registry's connection and lock."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._db = registry.connection
        self._lock = registry.lock
        with self._lock:
            self._db.executescript(_SCHEMA)

    # --- reads ------------------------------------------------------------------------------

    def load(self) -> dict[int, Desired]:
        """The desired configuration of every device that has one (or a group)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, grp, desired_version, effective FROM device_config").fetchall()
        return {dev: Desired(dev, grp or "", version, json.loads(eff))
                for dev, grp, version, eff in rows}

    def view(self, device_id: int) -> DeviceConfigView:
        with self._lock:
            row = self._db.execute(
                "SELECT grp, overrides, desired_version, effective FROM device_config "
                "WHERE device_id = ?", (device_id,)).fetchone()
        if row is None:
            return DeviceConfigView("", {}, {}, 0)
        grp, overrides, version, effective = row
        return DeviceConfigView(grp or "", redact(json.loads(overrides)),
                                redact(json.loads(effective)), version)

    def groups(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT g.name, g.config, g.updated_at, COUNT(d.device_id) FROM groups g "
                "LEFT JOIN device_config d ON d.grp = g.name GROUP BY g.name ORDER BY g.name"
            ).fetchall()
        return [{"name": name, "config": redact(json.loads(cfg)), "updated_at": at,
                 "devices": count} for name, cfg, at, count in rows]

    def audit(self, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Audit entries with ``id > after_id``, oldest first, at most ``limit``."""
        limit = max(1, min(limit, MAX_AUDIT_PAGE))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, actor, action, target, before, after FROM audit WHERE id > ? "
                "ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        return [{"id": i, "at": at, "actor": actor, "action": action, "target": target,
                 "before": None if b is None else json.loads(b),
                 "after": None if a is None else json.loads(a)}
                for i, at, actor, action, target, b, a in rows]

    # --- changes (each one transaction with its audit entry) -------------------------------

    def register(self, device_id: int, master_key: bytes, *, name: str, tag_len: int,
                 down_reserved: int, group: str, actor: str, now: float) -> list[Desired]:
        """Add a device (and put it in ``group``); returns its desired configuration if any."""
        after = {"name": name or f"{device_id:08x}", "tag_len": tag_len}
        self._registry.add(device_id, master_key, name=name, tag_len=tag_len,
                           down_reserved=down_reserved,
                           audit=AuditEntry(actor, "device.register", f"{device_id:08x}", None,
                                            after, now))
        return self.set_group(device_id, group, actor=actor, now=now) if group else []

    def remove(self, device_id: int, *, actor: str, now: float) -> None:
        with self._lock:
            row = self._db.execute(
                "SELECT d.name, d.tag_len, c.grp FROM devices d LEFT JOIN device_config c "
                "USING (device_id) WHERE device_id = ?", (device_id,)).fetchone()
        if row is None:
            raise DeviceNotFound(device_id)
        before = {"name": row[0], "tag_len": row[1], "group": row[2] or ""}
        self._registry.remove(device_id, audit=AuditEntry(
            actor, "device.remove", f"{device_id:08x}", before, None, now))

    def set_device_config(self, device_id: int, changes: Mapping[str, ConfigValue | None], *,
                          actor: str, now: float) -> list[Desired]:
        def change(db: sqlite3.Connection) -> list[Desired]:
            self._ensure_row(db, device_id)
            old = json.loads(db.execute("SELECT overrides FROM device_config WHERE device_id = ?",
                                        (device_id,)).fetchone()[0])
            new = merge(old, changes)
            db.execute("UPDATE device_config SET overrides = ? WHERE device_id = ?",
                       (_canonical(new), device_id))
            updated = [d for d in [self._recompute(db, device_id)] if d is not None]
            append_audit(db, AuditEntry(actor, "device.config", f"{device_id:08x}",
                                        {"config": redact(old)},
                                        {"config": redact(new, old), **_versions(updated)}, now))
            return updated
        return self._transaction(change)

    def set_group_config(self, group: str, changes: Mapping[str, ConfigValue | None], *,
                         actor: str, now: float) -> list[Desired]:
        def change(db: sqlite3.Connection) -> list[Desired]:
            row = db.execute("SELECT config FROM groups WHERE name = ?", (group,)).fetchone()
            old = {} if row is None else json.loads(row[0])
            new = merge(old, changes)
            db.execute("INSERT INTO groups (name, config, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET config = excluded.config, "
                       "updated_at = excluded.updated_at", (group, _canonical(new), now))
            members = [r[0] for r in db.execute(
                "SELECT device_id FROM device_config WHERE grp = ? ORDER BY device_id",
                (group,))]
            updated = [d for d in (self._recompute(db, m) for m in members) if d is not None]
            append_audit(db, AuditEntry(actor, "group.config", group, {"config": redact(old)},
                                        {"config": redact(new, old), **_versions(updated)}, now))
            return updated
        return self._transaction(change)

    def set_group(self, device_id: int, group: str, *, actor: str, now: float) -> list[Desired]:
        """Move a device into ``group`` ("" takes it out of any group)."""
        def change(db: sqlite3.Connection) -> list[Desired]:
            self._ensure_row(db, device_id)
            old = db.execute("SELECT grp FROM device_config WHERE device_id = ?",
                             (device_id,)).fetchone()[0] or ""
            if group:
                db.execute("INSERT OR IGNORE INTO groups (name, updated_at) VALUES (?, ?)",
                           (group, now))
            db.execute("UPDATE device_config SET grp = ? WHERE device_id = ?",
                       (group or None, device_id))
            recomputed = self._recompute(db, device_id)
            updated = [recomputed] if recomputed is not None else []
            if not updated:
                # Membership changed without changing the configuration: still report it.
                updated = [self._current(db, device_id)]
            append_audit(db, AuditEntry(actor, "device.group", f"{device_id:08x}",
                                        {"group": old},
                                        {"group": group, **_versions(updated)}, now))
            return updated
        return self._transaction(change)

    # --- helpers ----------------------------------------------------------------------------

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return result

    @staticmethod
    def _ensure_row(db: sqlite3.Connection, device_id: int) -> None:
        if db.execute("SELECT 1 FROM devices WHERE device_id = ?", (device_id,)).fetchone() is None:
            raise DeviceNotFound(device_id)
        db.execute("INSERT OR IGNORE INTO device_config (device_id) VALUES (?)", (device_id,))

    @staticmethod
    def _recompute(db: sqlite3.Connection, device_id: int) -> Desired | None:
        """Rebuild the device's desired configuration; bump its version if it changed."""
        grp, overrides, version, effective = db.execute(
            "SELECT grp, overrides, desired_version, effective FROM device_config "
            "WHERE device_id = ?", (device_id,)).fetchone()
        base: Config = {}
        if grp:
            row = db.execute("SELECT config FROM groups WHERE name = ?", (grp,)).fetchone()
            base = json.loads(row[0]) if row else {}
        new = merge(base, json.loads(overrides))
        if _canonical(new) == effective:
            return None
        version = next_version(version)
        db.execute("UPDATE device_config SET desired_version = ?, effective = ? "
                   "WHERE device_id = ?", (version, _canonical(new), device_id))
        return Desired(device_id, grp or "", version, new)

    @staticmethod
    def _current(db: sqlite3.Connection, device_id: int) -> Desired:
        grp, version, effective = db.execute(
            "SELECT grp, desired_version, effective FROM device_config WHERE device_id = ?",
            (device_id,)).fetchone()
        return Desired(device_id, grp or "", version, json.loads(effective))


def identity_document(device_id: int, master_key: bytes, *, tag_len: int,
                      gateway: tuple[str, int], hw_kind: str = "sensor_node") -> dict[str, Any]:
    """The device identity file's content (contains the key: written once, never logged)."""
    return {"device_id": device_id, "master_key": master_key.hex(), "tag_len": tag_len,
            "hw_kind": hw_kind, "gateway": {"host": gateway[0], "port": gateway[1]}}


def _canonical(config: Mapping[str, ConfigValue]) -> str:
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


def _versions(updated: list[Desired]) -> dict[str, Any]:
    if not updated:
        return {}
    return {"desired_versions": {f"{d.device_id:08x}": d.version for d in updated}}
