"""Real battery voltage: an ADC pin behind a resistor divider (not used on the unix port).

The board builds the ADC object (machine.ADC, with the attenuation its port needs) and hands
it in, so tests can replay recorded samples (tests/device/recordings/battery_*.txt).
"""
from time import sleep_ms

from micropython import const

_MAX_SAMPLES = const(32)  # a burst longer than this only costs awake time


class AdcBattery:
    """read_mv() -> battery mV: a burst of samples, the extremes dropped, the rest averaged."""

    def __init__(self, adc, divider_x1000, samples=8, en_pin=None, settle_ms=2, vref_mv=3300):
        """divider_x1000: battery mV per ADC-pin mV, times 1000 (2000 for two equal
        resistors). en_pin: optional output that switches the divider on (high) only while
        sampling: a 2 x 100 kOhm divider left on drains 21 uA, as much as the node's whole
        deep sleep. vref_mv: full scale of read_u16() on ports without read_uv() (RP2)."""
        self._adc = adc
        self._div = divider_x1000
        self._n = max(1, min(samples, _MAX_SAMPLES))
        self._en = en_pin
        self._settle = settle_ms
        # read_uv() is factory-calibrated on the ESP32 family; RP2 only has read_u16()
        self._uv = hasattr(adc, "read_uv")
        self._vref = vref_mv
        if en_pin is not None:
            en_pin.value(0)

    def read_mv(self):
        en = self._en
        if en is not None:
            en.value(1)
            sleep_ms(self._settle)  # the divider's node charges its filter capacitor
        try:
            total = lo = hi = self._sample_uv()
            for _ in range(self._n - 1):
                s = self._sample_uv()
                total += s
                if s < lo:
                    lo = s
                elif s > hi:
                    hi = s
        finally:
            if en is not None:
                en.value(0)
        n = self._n
        if n >= 4:
            # a WiFi transmit burst or a charger step shows up as one outlier sample
            total -= lo + hi
            n -= 2
        # in 0.1 mV steps: every product stays a small int (< 2**30) on 32-bit ports, where
        # a bigger one would allocate a long integer
        return total // n // 100 * self._div // 10000

    def _sample_uv(self):
        if self._uv:
            return self._adc.read_uv()
        return self._adc.read_u16() * self._vref // 65535 * 1000
