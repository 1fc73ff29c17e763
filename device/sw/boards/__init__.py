"""Board definitions: which drivers a board has, built at boot by `make()`.

A board module (sw/boards/<name>.py) provides:

    NAME, HW_KIND (wire number), CAPABILITIES (HELLO bits)
    make(flash, identity, config) -> Board     every driver role of sw/hal/__init__.py
    boot_reason() -> int                       HELLO boot_reason (machine.reset_cause() on boards)

Only `virtual` exists so far. A real board (e.g. `esp32s3_node`) fills the same roles from real
drivers: PinPir(pin), AdcBattery(pin, divider), Ina219(I2C(...), shunt), WiFi + UdpLink.
The board modules are unloaded after boot (their code is boot-only).
"""


class Board:
    """The drivers of one board, as attributes named after their roles (no methods: a class
    with methods costs far more heap)."""


def load(name):
    """Import sw.boards.<name> (name checked at boot); ImportError if there is no such board."""
    return __import__("sw.boards." + name, None, None, ("make",))


def unload(name):
    """Forget the board modules once the drivers exist."""
    import sys

    import sw

    for m in ("sw.boards." + name, "sw.boards"):
        sys.modules.pop(m, None)
    if hasattr(sw, "boards"):
        delattr(sw, "boards")
