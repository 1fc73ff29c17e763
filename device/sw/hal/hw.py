"""Helpers for real drivers and boards (never imported by the virtual sensor node: every KB of
its 64 KB heap counts)."""


class HardwareMissing(Exception):
    """A real driver was built on a port that lacks the peripheral (e.g. the unix port)."""


def machine_attr(name, what):
    """machine.<name>, or HardwareMissing saying which driver needed it."""
    try:
        import machine

        return getattr(machine, name)
    except (ImportError, AttributeError):
        raise HardwareMissing("%s needs machine.%s, which this port lacks: use the virtual "
                              "board here" % (what, name))


# machine.reset_cause() constant -> HELLO boot_reason (docs/protocol.md, HELLO). Names, not
# values: each port numbers them differently, and some ports lack some of them.
_CAUSES = (("PWRON_RESET", 1), ("HARD_RESET", 2), ("WDT_RESET", 3), ("DEEPSLEEP_RESET", 4),
           ("SOFT_RESET", 5))


def boot_reason():
    """HELLO boot_reason of this boot on a real board; 0 (unknown) if the port cannot tell."""
    try:
        import machine

        # not on the unix port (AttributeError), hence the ignore only some stub sets need
        cause = machine.reset_cause()  # type: ignore[attr-defined, unused-ignore]
    except (ImportError, AttributeError):
        return 0
    for name, code in _CAUSES:
        if getattr(machine, name, None) == cause:
            return code
    return 0


class Absent:
    """Plays a role the board has no hardware for: every value reads "not measured", so the
    telemetry says so instead of inventing a number. A camera's `pir` and `confirm` roles are
    Absent too: the node's code sets their settings (holdoff, window) and nothing reads them."""

    def read_env(self):
        return -32768, 255

    def rssi(self):
        return -128

    def read_cc(self):
        return -32768
