"""The virtual board: unix port, simulated sensors and supply, UDP to a gateway on the host.

The board directory plays the flash: identity.json, config.json, counter and boot_count files.
config "sim" describes the simulated world: "warp" (an accelerated clock: the node sleeps
through simulated time at once, hal/warp.py), "start_s" (unix time of the world at boot; 0:
the node's own clock), "panel" (fraction of the panel's output) and "outages" ([from_s,
to_s] of simulated time since boot with the access point down). The sun and the air come from
environment.bin in the board directory (shorewatch/sim/solar.py writes it); without it the
world is dark.
"""
from .. import store
from ..hal import clock, virtual

NAME = "virtual"
HW_KIND = 1  # sensor_node
# pir | power_monitor | battery_adc | encryption (HELLO bits 0, 3, 4, 5). The presence
# confirmation is simulated: there is no radar to advertise.
CAPABILITIES = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5)


def boot_reason():
    return 1  # power_on: a unix process always starts cold


def make(flash, identity, config):
    """Build the drivers; the seeds come from config pir.seed, so a run is reproducible."""
    from ..app.power import soc_pct
    from . import Board

    seed = config["pir"]["seed"]
    sim = config["sim"]
    gw = identity["gateway"]
    b = Board()
    if sim["warp"]:
        from ..hal import warp

        w = warp.Warp()
        b.clock = w
    else:
        w = None
        b.clock = clock.SoftClock()
    b.sleep = b.clock
    outages = tuple(t for pair in sim["outages"] for t in pair)
    b.link = virtual.SimLink(gw["host"], gw["port"], b.clock, outages)
    # one simulated sensor bus plays every sensor role, and the supply they measure
    s = _sensors(b.clock, seed, soc_pct(config["battery"]["initial_mv"]) / 100, sim["start_s"],
                 store.path(flash, "environment.bin"), sim["panel"],
                 config["pir"]["mean_interval_s"], config["pir"]["duration_s"])
    b.battery = b.power = b.env = b.radio = b.confirm = b.thermo = b.pir = b.link.supply = s
    if w is not None:
        w.link = b.link  # its frames and awake time are the radio's energy
        w.supply = s
    return b


def _sensors(clock, seed, soc, start_s, env, panel, mean_interval_s, duration_s):
    """The virtual.Sensors of this board, set up (see its docstring for the state)."""
    import struct

    from ..hal import cell

    s = virtual.Sensors()
    s._clock = clock
    s._x = (seed ^ 0x5EED) & 0xFFFFFFFF or 1  # zero is a fixed point of xorshift
    s._start = start_s
    s._t0 = clock.now()
    s._skip = getattr(clock, "skip", None)  # the warp clock lets the radar window pass
    s.window_ms = 2000  # radar window after its warm-up (the node sets it per mode)
    s._rec = bytearray(virtual.ENV_REC)  # one record, read in place: nothing allocated
    s._env = None
    s._env_t = s._env_n = 0
    try:
        f = open(env, "rb")
        hdr = f.read(virtual.ENV_HDR)
    except OSError:
        f = hdr = None  # no recording: a dark world
    if hdr and len(hdr) == virtual.ENV_HDR and hdr[:4] == b"SWE1":
        s._env = f
        s._env_t, s._env_n = struct.unpack_from("<II", hdr, 4)
    elif f is not None:
        f.close()
    s.t = start_s - start_s % 60  # the model's minute
    s.poa = 0  # W/m2 on the panel in this minute
    s.temp_cc = 1000
    s.p_in_mw = 0  # into the cell in the last minute
    s._used_mj = 0
    s.spent_mj = 0  # the node's operations (the idle draw not included)
    s.brownouts = 0
    s._low = False
    s._idle_mj = int(cell.IDLE_W * 60000)  # asleep with the PIR watching, a minute
    s._sample()
    s.cell = cell.Cell(soc, s.temp_cc / 100, panel)
    s._px = (seed & 0xFFFFFFFF) or 1  # the PIR's own generator
    s._mean_ms = int(mean_interval_s * 1000)
    s._dur_ms = int(duration_s * 1000)
    s.holdoff_ms = 0
    s.edges = 0
    s._end = s._t0  # end of the previous presence: boot
    s._plan()
    return s
