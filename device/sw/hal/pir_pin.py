"""Real PIR on a GPIO (AM312 / HC-SR501 output): rising edge = presence, high while present.

Not used on the unix port (no machine.Pin) and not yet run on hardware: the ESP32 / Pico W
board definitions pick it. Same contract as the virtual PIR (hal/virtual.py). The pin is also
the wake source of the board's sleep (hal/sleep.py: `pin`, `irq`), so the node's loop does not
have to look at it: an awaited wait is polled in short slices there, a sleep ends at its edge.
"""
from time import ticks_diff, ticks_ms

from micropython import const

from .hw import machine_attr

_IDLE_MS = const(60000)  # nothing to look at: the pin wakes the sleep


class PinPir:
    def __init__(self, pin_no):
        pin_cls = machine_attr("Pin", "PinPir")
        self.pin = pin_cls(pin_no, pin_cls.IN)
        self._edge = None
        self._ended = ticks_ms()
        self.holdoff_ms = 0
        # A level already high at boot is a presence in progress (a wake from deep sleep by
        # this pin, or someone there at power-on): its rising edge happened before we looked.
        if self.pin.value():
            self._edge = self._ended
        self.pin.irq(self.irq, trigger=pin_cls.IRQ_RISING)

    def irq(self, pin):
        """Interrupt handler: record the time of a rising edge, nothing else (no allocation).
        A sleep may register it for both edges (hal/sleep.py): a falling one is ignored."""
        if self._edge is None and pin.value():
            self._edge = ticks_ms()

    def edge(self):
        t = self._edge
        self._edge = None
        if t is not None and ticks_diff(t, self._ended) < self.holdoff_ms:
            return None  # inside the quiet time after the last presence
        return t

    def present(self):
        if self.pin.value():
            return True
        self._ended = ticks_ms()
        return False

    def wake_ms(self):
        return _IDLE_MS
