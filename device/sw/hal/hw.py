"""Helpers for real drivers: a clear error when the port has no such hardware."""


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
