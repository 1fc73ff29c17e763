"""ESP32-C3 solar sensor node: PIR, power-gated LD2410 radar, INA219, battery ADC, UDP.

Reference wiring (this file is the only place that knows it):

    GPIO3        PIR output; an RTC GPIO (0-5 on the C3): it wakes the chip from deep sleep
    GPIO0        battery divider midpoint, ADC1 channel 0 (2 x 1 MOhm: divider_x1000 2000)
    GPIO1        divider enable (low-side N-MOSFET): the divider draws nothing between reads
    GPIO6, GPIO7 I2C0 SDA, SCL: INA219 at 0x40, 100 mOhm shunt in the charge path
    GPIO21, 20   UART1 TX, RX to the LD2410 (256000 8N1); the REPL is on USB-serial-JTAG
    GPIO10       radar power switch (high = on): 0.4 W only during a confirmation window

Not run on hardware yet. make() brings the WiFi station up (config.json wifi_ssid / wifi_psk,
sw/hal/wifi.py) before the link resolves the gateway address; a wake from deep sleep boots
through main.py again, so every wake brings it up anew.
"""
from micropython import const

NAME = "esp32c3_node"
HW_KIND = 1  # sensor_node
# pir | radar | power_monitor | battery_adc | encryption (HELLO bits 0, 1, 3, 4, 5)
CAPABILITIES = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5)

_PIR = const(3)
_BAT_ADC = const(0)
_BAT_EN = const(1)
_DIVIDER_X1000 = const(2000)
_SDA = const(6)
_SCL = const(7)
_SHUNT_MOHM = const(100)
_MAX_MA = const(400)  # a 1 W panel at ~5 V delivers ~200 mA; margin for a bigger one
_RADAR_UART = const(1)
_RADAR_TX = const(21)
_RADAR_RX = const(20)
_RADAR_EN = const(10)
_DEEP_MS = const(10000)  # idle waits from this long on are slept in deep sleep


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
    # 11 dB attenuation: the ADC reads up to ~2.5 V, the divider gives at most 2.1 V
    b.battery = AdcBattery(adc(pin(_BAT_ADC), atten=adc.ATTN_11DB), _DIVIDER_X1000,
                           en_pin=pin(_BAT_EN, pin.OUT))
    b.power = Ina219(i2c(0, sda=pin(_SDA), scl=pin(_SCL), freq=400000), _SHUNT_MOHM, _MAX_MA)
    b.env = b.thermo = hw.Absent()
    # rxbuf: a 1 s warm-up plus a 2 s window is ~30 reports of 23 bytes; timeout 0: the
    # driver never blocks in readinto
    b.confirm = Ld2410(uart(_RADAR_UART, baudrate=256000, tx=_RADAR_TX, rx=_RADAR_RX,
                            timeout=0, rxbuf=1024),
                       en_pin=pin(_RADAR_EN, pin.OUT), window_ms=config["radar_window_ms"])
    b.pir = PinPir(_PIR)
    b.sleep = _sleep(b.pir)
    return b


def _sleep(pir):
    # Deep sleep between wake-ups, the node's state in RTC memory (sw/app/retain.py); the PIR
    # pin (an RTC GPIO) and the timer wake it. A wake costs a boot (~0.5 s at ~0.1 W, about
    # what ~10 s of light sleep costs), so shorter waits are light sleeps.
    import machine

    from ..hal.sleep import MachineSleep

    try:
        import esp32  # type: ignore[import-not-found, unused-ignore]  # not in every stub set
    except ImportError:
        esp32 = None  # type: ignore[assignment, unused-ignore]  # the module where there is one
    return MachineSleep(machine, pir, _DEEP_MS, esp32)
