"""Raspberry Pi Pico W solar sensor node: the ESP32-C3 node's drivers on RP2040 pins.

Reference wiring:

    GP15         PIR output
    GP26         battery divider midpoint, ADC0 (2 x 1 MOhm: divider_x1000 2000). Not the
                 on-board VSYS/3 channel: on the Pico W, GP29 is shared with the WiFi chip
    GP17         divider enable (low-side N-MOSFET)
    GP4, GP5     I2C0 SDA, SCL: INA219 at 0x40, 100 mOhm shunt in the charge path
    GP0, GP1     UART0 TX, RX to the LD2410 (256000 8N1)
    GP16         radar power switch (high = on)

The RP2040 ADC has only read_u16(): the battery driver scales it by the 3.3 V reference.
Not run on hardware yet; make() brings the WiFi station up (sw/hal/wifi.py) before the link.
"""
from micropython import const

NAME = "picow_node"
HW_KIND = 1  # sensor_node
# pir | radar | power_monitor | battery_adc | encryption (HELLO bits 0, 1, 3, 4, 5)
CAPABILITIES = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5)

_PIR = const(15)
_BAT_ADC = const(26)
_BAT_EN = const(17)
_DIVIDER_X1000 = const(2000)
_VREF_MV = const(3300)
_SDA = const(4)
_SCL = const(5)
_SHUNT_MOHM = const(100)
_MAX_MA = const(400)
_RADAR_UART = const(0)
_RADAR_TX = const(0)
_RADAR_RX = const(1)
_RADAR_EN = const(16)


def boot_reason():
    from ..hal import hw

    return hw.boot_reason()


def make(flash, identity, config):
    """Build the drivers; HardwareMissing on a port without these peripherals."""
    from ..hal import clock, hw, udp, wifi
    from ..hal.battery_adc import AdcBattery
    from ..hal.ina219 import Ina219
    from ..hal.ld2410 import Ld2410
    from ..hal.pir_pin import PinPir
    from . import Board

    pin = hw.machine_attr("Pin", NAME)
    adc = hw.machine_attr("ADC", NAME)
    i2c = hw.machine_attr("I2C", NAME)
    uart = hw.machine_attr("UART", NAME)
    gw = identity["gateway"]
    b = Board()
    b.clock = clock.SoftClock()
    b.radio = wifi.station(config, NAME)  # before the link: it resolves the gateway address
    b.link = udp.UdpLink(gw["host"], gw["port"])
    b.battery = AdcBattery(adc(pin(_BAT_ADC)), _DIVIDER_X1000, en_pin=pin(_BAT_EN, pin.OUT),
                           vref_mv=_VREF_MV)
    b.power = Ina219(i2c(0, sda=pin(_SDA), scl=pin(_SCL), freq=400000), _SHUNT_MOHM, _MAX_MA)
    b.env = b.thermo = hw.Absent()
    b.confirm = Ld2410(uart(_RADAR_UART, baudrate=256000, tx=pin(_RADAR_TX),
                            rx=pin(_RADAR_RX), timeout=0, rxbuf=1024),
                       en_pin=pin(_RADAR_EN, pin.OUT), window_ms=config["radar_window_ms"])
    b.pir = PinPir(_PIR)
    b.sleep = _sleep(b.pir)
    return b


def _sleep(pir):
    # Light sleep only: machine.deepsleep() on the RP2040 is a light sleep followed by a reset
    # and the chip has no RTC memory to keep the node's state, so RAM is kept instead; the PIR
    # pin's interrupt wakes it.
    import machine

    from ..hal.sleep import MachineSleep

    return MachineSleep(machine, pir, 0)
