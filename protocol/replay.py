"""Per-direction counter reconstruction and the 64-counter sliding replay window."""

from __future__ import annotations

from .errors import Replayed, ResyncRequired, TooOld
from .limits import COUNTER_MAX, REPLAY_WINDOW_BITS

_MASK = (1 << REPLAY_WINDOW_BITS) - 1


class ReplayWindow:
    """Highest accepted counter ``H`` and a bitmap where bit ``i`` means ``H - i`` was seen."""

    __slots__ = ("bitmap", "highest")

    def __init__(self, highest: int | None = None, bitmap: int | None = None) -> None:
        """``highest`` alone means that counter was accepted (bit 0 set)."""
        self.highest = highest
        if highest is None:
            self.bitmap = 0
        else:
            self.bitmap = 1 if bitmap is None else bitmap & _MASK

    def reconstruct(self, low16: int, device_id: int) -> int:
        """Full counter nearest to ``H`` whose low 16 bits are ``low16`` (section 3)."""
        h = self.highest
        if h is None:
            raise ResyncRequired(device_id)
        delta = (low16 - h) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        full = h + delta
        if full < 0:
            raise TooOld(full, h)
        if full > COUNTER_MAX:
            raise ResyncRequired(device_id)
        return full

    def check(self, counter: int) -> None:
        """Raise ``Replayed`` or ``TooOld`` unless ``counter`` is new to this window."""
        h = self.highest
        if h is None or counter > h:
            return
        age = h - counter
        if age >= REPLAY_WINDOW_BITS:
            raise TooOld(counter, h)
        if (self.bitmap >> age) & 1:
            raise Replayed(counter)

    def commit(self, counter: int) -> None:
        """Mark ``counter`` as accepted; call only after its frame authenticated."""
        h = self.highest
        if h is None:
            self.highest, self.bitmap = counter, 1
        elif counter > h:
            shift = counter - h
            self.bitmap = ((self.bitmap << shift) | 1) & _MASK if shift < REPLAY_WINDOW_BITS else 1
            self.highest = counter
        else:
            self.bitmap |= 1 << (h - counter)

    def __repr__(self) -> str:
        return f"ReplayWindow(highest={self.highest}, bitmap={self.bitmap:#x})"
