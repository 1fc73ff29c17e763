"""The virtual thermal camera: unix port, a recording as the MLX90640, UDP to a gateway.

The board directory plays the flash, as for the virtual sensor node. The thermal sensor is the
MLX90640's virtual twin (sw/hal/mlx90640_virtual.py) playing back config.json's
`thermal.recording` (written by `shorewatch sim record`; a path relative to the board
directory, or absolute) at `thermal.speed` x real time; battery, panel, climate and radio are
a small stand-in (sw/hal/virtual_supply.py: the node's cell and sun model does not fit the
camera's heap beside the pipeline). No PIR and no radar: the node's code only sets their
settings (holdoff, window), which the simulated bus takes and ignores (sw/hal/hw.py's Absent
would cost 2 KB of heap for the same).
"""
from ..hal import clock, mlx90640_virtual, udp, virtual_supply

NAME = "virtual_camera"
HW_KIND = 2  # thermal_camera
# thermal | power_monitor | battery_adc | encryption | thumbnails (HELLO bits 2, 3, 4, 5, 7)
CAPABILITIES = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 7)


def boot_reason():
    return 1  # power_on: a unix process always starts cold


def make(flash, identity, config):
    """Build the drivers; OSError (bad provisioning) without a readable recording."""
    from .. import store
    from . import Board

    t = config.get("thermal")
    if t is None:
        raise OSError("config.json: thermal.recording is required on the virtual camera board "
                      "(a recording written by `shorewatch sim record`)")
    path = t["recording"]
    if not path.startswith("/"):
        path = store.path(flash, path)
    gw = identity["gateway"]
    b = Board()
    b.clock = b.sleep = clock.SoftClock()
    b.link = udp.UdpLink(gw["host"], gw["port"])
    b.battery = b.power = b.env = b.radio = b.pir = b.confirm = virtual_supply.Supply(
        b.clock, config["pir"]["seed"] ^ 0x5EED, config["battery"]["initial_mv"], 15)
    b.thermo = mlx90640_virtual.VirtualMlx90640(path, t["speed"], t["loop"], t["loop_from"],
                                                t["frames"])
    try:
        b.thermo.begin()  # a recording that cannot be played is bad provisioning: say so now
    except OSError as e:
        raise OSError("config.json: thermal.recording: %s" % e)
    return b
