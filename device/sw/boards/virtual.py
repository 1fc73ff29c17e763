"""The virtual board: unix port, simulated sensors, UDP to a gateway on the host.

The board directory plays the flash: identity.json, config.json, counter and boot_count files.
"""
from ..hal import clock, udp, virtual

NAME = "virtual"
HW_KIND = 1  # sensor_node
# pir | power_monitor | battery_adc | encryption (HELLO bits 0, 3, 4, 5). The presence
# confirmation is simulated: there is no radar to advertise.
CAPABILITIES = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5)


def boot_reason():
    return 1  # power_on: a unix process always starts cold


def make(flash, identity, config):
    """Build the drivers; the seeds come from config pir.seed, so a run is reproducible."""
    from . import Board

    seed = config["pir"]["seed"]
    bat = config["battery"]
    gw = identity["gateway"]
    b = Board()
    b.clock = clock.SoftClock()
    b.link = udp.UdpLink(gw["host"], gw["port"])
    # one simulated sensor bus plays every polled role
    b.battery = b.power = b.env = b.radio = b.confirm = b.thermo = virtual.Sensors(
        b.clock, seed ^ 0x5EED, bat["initial_mv"], bat["discharge_mv_per_h"])
    b.pir = virtual.Pir(seed, config["pir"]["mean_interval_s"], config["pir"]["duration_s"])
    return b
