"""ESP32-S3 thermal night camera: MLX90640 (55 degrees), INA219, battery ADC, UDP.

Reference wiring:

    GPIO8, GPIO9   I2C0 SDA, SCL at 800 kHz: MLX90640 at 0x33 alone on this bus (a frame is
                   1664 bytes: ~23 ms at 800 kHz, ~45 ms at 400 kHz)
    GPIO4, GPIO5   I2C1 SDA, SCL at 400 kHz: INA219 at 0x40 (fast mode is its limit without
                   the high-speed handshake), 100 mOhm shunt
    GPIO1          battery divider midpoint, ADC1 channel 0 (2 x 1 MOhm: divider_x1000 2000)
    GPIO2          divider enable (low-side N-MOSFET)

Runs the camera application (sw/app/camera_app.py, an identity with hw_kind
thermal_camera). The application calls thermo.begin() (reads the EEPROM) and
thermo.set_refresh() itself, so it can log and retry a sensor that is slow to come up. No PIR
and no radar: those roles are Absent. Not run on hardware yet; make() brings the WiFi station up (sw/hal/wifi.py).
"""
from micropython import const

NAME = "esp32s3_camera"
HW_KIND = 2  # thermal_camera
# thermal | power_monitor | battery_adc | encryption | thumbnails (HELLO bits 2, 3, 4, 5, 7)
CAPABILITIES = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 7)

_CAM_SDA = const(8)
_CAM_SCL = const(9)
_CAM_HZ = const(800000)
_PWR_SDA = const(4)
_PWR_SCL = const(5)
_BAT_ADC = const(1)
_BAT_EN = const(2)
_DIVIDER_X1000 = const(2000)
_SHUNT_MOHM = const(100)
_MAX_MA = const(800)  # the camera's panel is larger than a sensor node's
_EMISSIVITY_X100 = const(95)  # sand 0.90-0.95, water and skin 0.96-0.98: one value for all


def boot_reason():
    from ..hal import hw

    return hw.boot_reason()


def make(flash, identity, config):
    """Build the drivers (no I/O yet); HardwareMissing on a port without these peripherals."""
    from ..hal import clock, hw, udp, wifi
    from ..hal.battery_adc import AdcBattery
    from ..hal.ina219 import Ina219
    from ..hal.mlx90640 import Mlx90640
    from . import Board

    pin = hw.machine_attr("Pin", NAME)
    adc = hw.machine_attr("ADC", NAME)
    i2c = hw.machine_attr("I2C", NAME)
    gw = identity["gateway"]
    b = Board()
    b.clock = clock.SoftClock()
    b.radio = wifi.station(config, NAME)  # before the link: it resolves the gateway address
    b.link = udp.UdpLink(gw["host"], gw["port"])
    b.battery = AdcBattery(adc(pin(_BAT_ADC), atten=adc.ATTN_11DB), _DIVIDER_X1000,
                           en_pin=pin(_BAT_EN, pin.OUT))
    b.power = Ina219(i2c(1, sda=pin(_PWR_SDA), scl=pin(_PWR_SCL), freq=400000), _SHUNT_MOHM,
                     _MAX_MA)
    b.thermo = Mlx90640(i2c(0, sda=pin(_CAM_SDA), scl=pin(_CAM_SCL), freq=_CAM_HZ),
                        emissivity=_EMISSIVITY_X100 / 100)
    b.env = b.pir = b.confirm = hw.Absent()
    return b
