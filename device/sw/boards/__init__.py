"""Board definitions: which drivers a board has, built at boot by `make()`.

A board module (sw/boards/<name>.py) provides:

    NAME, HW_KIND (wire number), CAPABILITIES (HELLO bits)
    make(flash, identity, config) -> Board     every driver role of sw/hal/__init__.py
    boot_reason() -> int                       HELLO boot_reason (machine.reset_cause() on boards)

Boards: `virtual` (unix port, simulated sensors), `esp32c3_node` and `picow_node` (PIR,
power-gated LD2410, INA219, battery ADC), `esp32s3_camera` (MLX90640, INA219, battery ADC).
The real boards name their pins in one place (their module) and import only the drivers they
use, inside make(): the virtual board never loads a real driver. The board modules are unloaded
after boot (their code is boot-only).
"""


class Board:
    """The drivers of one board, as attributes named after their roles (no methods: a class
    with methods costs far more heap)."""

    # The roles of sw/hal/__init__.py, for the type checker only: MicroPython compiles bare
    # annotations to no code. Any driver with the role's methods fits (duck typing).
    battery: object
    power: object
    env: object
    radio: object
    confirm: object
    thermo: object
    pir: object
    clock: object
    link: object
    sleep: object  # light/deep sleep, or the (virtual) clock's waiting


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
