"""Real INA219 power monitor on I2C: panel bus voltage and battery charge current.

Registers from the TI INA219 datasheet (SBOS448): 0x00 configuration, 0x01 shunt voltage
(signed, 10 uV/LSB), 0x02 bus voltage (bits 15..3 at 4 mV/LSB, bit 1 CNVR conversion ready,
bit 0 OVF math overflow), 0x04 current (signed, current_LSB), 0x05 calibration.

The chip runs in triggered mode and is powered down between readings: in continuous mode it
draws ~1 mA, fifty times the whole node's deep-sleep current (docs/energy.md). Not used on the
unix port; tests replay recorded register traffic (tests/device/recordings/ina219_*.txt).
"""
from time import sleep_ms

from micropython import const

_REG_CONFIG = const(0x00)
_REG_SHUNT = const(0x01)
_REG_BUS = const(0x02)
_REG_CURRENT = const(0x04)
_REG_CAL = const(0x05)
_NOT_MEASURED = const(-32768)

_CNVR = const(0x0002)
_OVF = const(0x0001)
# Configuration: BRNG 0 (16 V range: a "6 V" panel stays below 8 V open circuit), PGA set per
# shunt, bus ADC 12 bit single sample (0.53 ms: the voltage is smooth), shunt ADC 12 bit
# averaged over 8 samples (4.3 ms: a charger's switching ripple averages out).
_BADC = const(0b0011 << 7)
_SADC = const(0b1011 << 3)
_MODE_TRIGGERED = const(0b011)  # shunt and bus, one conversion each
_MODE_OFF = const(0b000)  # power-down, ~6 uA
_POLL_TRIES = const(12)  # x 1 ms: both conversions take ~4.8 ms; the rest is margin
# 0.04096 / (current_LSB * R_shunt), datasheet eq. 1, with the LSB in uA and R in mOhm
_CAL_SCALE = const(40960000)
# shunt full-scale ranges in mV for PGA /1, /2, /4, /8
_PGA_MV = (40, 80, 160, 320)


class Ina219:
    """Configure with the shunt and the largest current to expect; read_power() does one
    triggered measurement."""

    def __init__(self, i2c, shunt_mohm, max_ma=400, addr=0x40):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(2)  # reused for every register transfer
        # smallest shunt range that holds max_ma: finer steps for the same 12 bits
        mv = max_ma * shunt_mohm // 1000
        pga = 0
        while pga < 3 and _PGA_MV[pga] < mv:
            pga += 1
        self._config = (pga << 11) | _BADC | _SADC
        # Current LSB: the smallest whole uA for which max_ma fits the signed 15-bit register
        # (datasheet 8.5.1: LSB >= max current / 2**15); the larger the calibration value, the
        # smaller its truncation error (< 2 / cal). Bit 0 of the register does not exist.
        self.lsb_ua = max(1, -(-max_ma * 1000 // 32767))
        self.cal = min(_CAL_SCALE // (self.lsb_ua * shunt_mohm), 0xFFFE) & 0xFFFE
        self.bus_mv = 0
        self.shunt_uv = 0
        self.current_ua = 0

    def read_power(self):
        """(solar_mv, charge_ma); charge -32768 if the chip does not answer or overflowed."""
        try:
            ok = self.measure()
        except OSError:  # I2C NACK: report "not measured", telemetry sets sensor_fault
            return 0, _NOT_MEASURED
        if not ok:
            return self.bus_mv, _NOT_MEASURED
        return self.bus_mv, self.current_ua // 1000

    def measure(self):
        """One triggered conversion into bus_mv, shunt_uv, current_ua; False if it did not
        complete or the current overflowed. OSError if the chip does not answer."""
        # The calibration is written every time: a brown-out of the chip resets it to 0 and
        # the current register would then read 0 without any error.
        self._write(_REG_CAL, self.cal)
        self._write(_REG_CONFIG, self._config | _MODE_TRIGGERED)
        try:
            for _ in range(_POLL_TRIES):
                bus = self._read(_REG_BUS)
                if bus & _CNVR:
                    break
                sleep_ms(1)
            else:
                self.bus_mv = 0  # no fresh value: say nothing rather than repeat an old one
                return False
            self.bus_mv = (bus >> 3) * 4
            self.shunt_uv = _signed(self._read(_REG_SHUNT)) * 10
            self.current_ua = _signed(self._read(_REG_CURRENT)) * self.lsb_ua
            return not bus & _OVF
        finally:
            self._write(_REG_CONFIG, self._config | _MODE_OFF)

    def _read(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._buf)
        return (self._buf[0] << 8) | self._buf[1]

    def _write(self, reg, value):
        self._buf[0] = value >> 8
        self._buf[1] = value & 0xFF
        self._i2c.writeto_mem(self._addr, reg, self._buf)


def _signed(v):
    return v - 0x10000 if v & 0x8000 else v
