"""Hardware abstraction: drivers by role, selected by the board definition (sw/boards).

The application only calls the methods below and never asks which board it runs on. Each role
has a virtual implementation (sw/hal/virtual.py, unix port) and a real one (its own module,
touching `machine` only when constructed). Method names are unique across roles so that one
object may play several roles (the virtual board's simulated sensor bus does). Values are in
the wire units of TELEMETRY and DETECTION; -32768 / 255 mean "not measured".

    battery.read_mv() -> int                        battery voltage (ADC behind a divider)
    power.read_power() -> (solar_mv, charge_ma)     INA219-class; charge_ma < 0 discharging
    env.read_env() -> (temperature_cc, humidity_half_pct)
    radio.rssi() -> int                             link RSSI in dBm, -128 unknown
    confirm.confidence() -> int                     second opinion on a PIR trigger, 0..100
    thermo.read_cc() -> int                         peak scene temperature, centi-degrees C
    pir.holdoff_ms                                  quiet time after a presence (config)
    pir.edge() -> ticks_ms | None                   latched rising edge (presence started)
    pir.present() -> bool                           output level
    pir.wake_ms() -> int                            ms until the PIR should be looked at again
    clock.now() -> ticks                            the board's ms ticks: every deadline
    clock.synced, clock.set(unix_s, unix_ms) -> s moved, clock.at(ticks) -> (unix_s, ms)
    sleep.wait(poller, ms, idle) -> bool            wait for the link (idle: nothing awaited,
                                                    so the board may sleep); True: data
    sleep.deep_ms                                   shortest idle wait slept in deep sleep
                                                    (0: never)
    sleep.deep(ms, data), sleep.retained() -> (data, slept_ms) | None
                                                    deep sleep with data in RTC memory
    link.open(poller), link.send(frame) -> bool, link.recv() -> bytes | None, link.close()
                                                    udp.py, serial_link.py (COBS over a UART)

Nothing here blocks, except confirm.confidence() on a real radar (the radar window itself,
warm-up + window_ms) and sleep.wait(): the node's deadline loop (sw/app/node.py) hands its
waits to the sleep role. Virtual boards: clock and sleep are one object (hal/clock.py
SoftClock in real time, hal/warp.py in simulated time); real node boards sleep with
hal/sleep.py (light sleep, or deep sleep with the node's state in RTC memory).

Real drivers take their bus or pin objects from the board (I2C, UART, ADC, Pin), so tests
replay recorded traffic through fakes (tests/device/fakebus.py): ina219.py, battery_adc.py,
ld2410.py (+ ld2410_virtual.py, the radar as a UART speaking its protocol), mlx90640.py
(camera: thermo.read_cc() is the warmest pixel; begin() / poll() / cc for the full frame),
pir_pin.py, sleep.py (machine and esp32 passed in). hw.py: HardwareMissing, boot_reason(),
Absent (a role without hardware). cell.py: the cell model behind the virtual battery.
"""
