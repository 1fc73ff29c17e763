"""Real INA219 power monitor on I2C: panel bus voltage and battery charge current.

Not used on the unix port. Registers from the TI INA219 datasheet (SBOS448): 0x01 shunt
voltage (10 uV/LSB, signed), 0x02 bus voltage (bits 15..3, 4 mV/LSB).
"""
from micropython import const

_REG_SHUNT = const(0x01)
_REG_BUS = const(0x02)
_NOT_MEASURED = const(-32768)


class Ina219:
    def __init__(self, i2c, shunt_mohm, addr=0x40):
        self._i2c = i2c
        self._addr = addr
        self._shunt = shunt_mohm
        self._buf = bytearray(2)  # reused for every register read

    def read_power(self):
        """(solar_mv, charge_ma); charge -32768 if the chip does not answer."""
        try:
            bus = self._reg(_REG_BUS) >> 3
            shunt = self._reg(_REG_SHUNT)
        except OSError:  # I2C NACK: report "not measured", telemetry sets sensor_fault
            return 0, _NOT_MEASURED
        if shunt & 0x8000:
            shunt -= 0x10000
        # shunt LSB 10 uV; I = U / R -> mA = (shunt * 10 uV) / (shunt_mohm mOhm)
        return bus * 4, shunt * 10 // self._shunt

    def _reg(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._buf)
        return (self._buf[0] << 8) | self._buf[1]
