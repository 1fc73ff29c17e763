"""Real PIR on a GPIO (AM312 / HC-SR501 output): rising edge = presence, high while present.

Not used on the unix port (no machine.Pin) and not yet run on hardware: the ESP32 / Pico W
board definitions will pick it. Same contract as hal.virtual.Pir.
"""
from time import ticks_diff, ticks_ms

from micropython import const

from .hw import machine_attr

# The node loop cannot be woken by the IRQ yet (no light sleep so far): it looks this often.
# Later the PIR pin becomes the light/deep-sleep wake source.
_POLL_MS = const(200)


class PinPir:
    def __init__(self, pin_no):
        pin_cls = machine_attr("Pin", "PinPir")
        self._pin = pin_cls(pin_no, pin_cls.IN)
        self._edge = None
        self._ended = ticks_ms()
        self.holdoff_ms = 0
        self._pin.irq(self._irq, trigger=pin_cls.IRQ_RISING)

    def _irq(self, _pin):
        # interrupt context: record the time, nothing else (no allocation)
        if self._edge is None:
            self._edge = ticks_ms()

    def edge(self):
        t = self._edge
        self._edge = None
        if t is not None and ticks_diff(t, self._ended) < self.holdoff_ms:
            return None  # inside the quiet time after the last presence
        return t

    def present(self):
        if self._pin.value():
            return True
        self._ended = ticks_ms()
        return False

    def wake_ms(self):
        return _POLL_MS
