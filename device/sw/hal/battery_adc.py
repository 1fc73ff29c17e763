"""Real battery voltage: ADC pin behind a resistor divider (not used on the unix port)."""
from .hw import machine_attr


class AdcBattery:
    def __init__(self, pin_no, divider_x1000):
        """divider_x1000: battery mV per ADC mV, times 1000 (e.g. 2000 for two equal resistors)."""
        adc_cls = machine_attr("ADC", "AdcBattery")
        self._adc = adc_cls(pin_no)
        self._div = divider_x1000

    def read_mv(self):
        # read_uv() is calibrated on ESP32 and RP2; average 8 samples against ADC noise
        total = 0
        for _ in range(8):
            total += self._adc.read_uv()
        return total // 8 * self._div // 1000000
