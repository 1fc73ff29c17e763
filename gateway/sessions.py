"""Device sessions: unknown -> provisioned -> online -> stale -> offline (docs/gateway.md).

A device is *provisioned* once the registry holds its key, *online* after an authenticated HELLO
(or any later authenticated frame of the session that HELLO opened), *stale* when nothing
authenticated arrived for ``stale_after_s``, *offline* after ``offline_after_s``. Traffic brings a
stale or offline device straight back online. Time is passed in (``now``); nothing here reads a
clock, so the machine is deterministic in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import DeviceState

log = logging.getLogger("shorewatch.sessions")


class SessionState(Enum):
    """Where a device stands; ``code`` is the documented numeric value."""

    UNKNOWN = "unknown"  # not in the registry: its frames are rejected as unknown_device
    PROVISIONED = "provisioned"  # registered, never heard from
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"

    @property
    def code(self) -> int:
        return _CODES[self]


_CODES = {s: i for i, s in enumerate(SessionState)}


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Timeouts, in seconds since the last authenticated frame."""

    stale_after_s: float = 900.0
    offline_after_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.stale_after_s < self.offline_after_s:
            raise ValueError(f"need 0 < stale_after_s ({self.stale_after_s}) < "
                             f"offline_after_s ({self.offline_after_s})")

    @property
    def tick_s(self) -> float:
        """How often the service re-evaluates: a quarter of the stale timeout, at most 5 s."""
        return min(self.stale_after_s / 4, 5.0)


@dataclass(frozen=True, slots=True)
class Transition:
    device_id: int
    before: SessionState
    after: SessionState
    at: float


def classify(last_seen: float | None, now: float, policy: SessionPolicy) -> SessionState:
    """The state a registered device is in by age alone (used at start and on every tick)."""
    if last_seen is None:
        return SessionState.PROVISIONED
    age = now - last_seen
    if age >= policy.offline_after_s:
        return SessionState.OFFLINE
    if age >= policy.stale_after_s:
        return SessionState.STALE
    return SessionState.ONLINE


def seen(state: DeviceState, now: float, *, hello: bool) -> Transition | None:
    """An authenticated frame arrived. A never-seen device goes online only with a HELLO.

    A short-header frame cannot verify before the first HELLO (the counter cannot be
    reconstructed), so in practice every authenticated frame here belongs to an open session.
    """
    state.last_seen = now
    before = state.session
    if before is SessionState.ONLINE or (before is SessionState.PROVISIONED and not hello):
        return None
    state.session = SessionState.ONLINE
    return _note(state, before, now)


def advance(states: Iterable[DeviceState], now: float,
            policy: SessionPolicy) -> list[Transition]:
    """Apply the timeouts to every device (call on the event loop); returns the transitions."""
    out = []
    for s in states:
        if s.session is SessionState.PROVISIONED:
            continue
        after = classify(s.last_seen, now, policy)
        if after is not s.session:
            before, s.session = s.session, after
            out.append(_note(s, before, now))
    return out


def _note(state: DeviceState, before: SessionState, now: float) -> Transition:
    level = logging.INFO if state.session is not SessionState.OFFLINE else logging.WARNING
    log.log(level, "device %08x %s -> %s", state.device_id, before.value, state.session.value)
    return Transition(state.device_id, before, state.session, now)


def restore(states: Iterable[DeviceState], now: float, policy: SessionPolicy) -> None:
    """At start: each device's state from its persisted ``last_seen``, without logging."""
    for s in states:
        s.session = classify(s.last_seen, now, policy)
