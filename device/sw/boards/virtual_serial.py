"""The virtual sensor node on a serial line: the `virtual` board's simulated sensors, frames
COBS-framed over a tty (sw/hal/serial_link.py) instead of UDP.

identity.json names the tty in `serial` (e.g. one side of a pseudo-terminal, or a USB-serial
adapter wired to a gateway's [[serial]] port); `gateway` is still required by the boot step and
unused here. A LoRa-UART node is provisioned with tag_len 4 (the lora profile).
"""
from . import virtual

NAME = "virtual_serial"
HW_KIND = virtual.HW_KIND
# the virtual board's, plus stream_link (HELLO bit 8)
CAPABILITIES = virtual.CAPABILITIES | (1 << 8)


def boot_reason():
    return virtual.boot_reason()


def make(flash, identity, config):
    """The virtual board's drivers with a SerialLink on identity.json's `serial` path."""
    from ..hal.serial_link import SerialLink

    path = identity.get("serial")
    if not isinstance(path, str) or not path:
        raise OSError("identity.json: serial must name the tty (board virtual_serial)")
    b = virtual.make(flash, identity, config)
    b.link = SerialLink(path)  # the UdpLink it replaces never opened a socket
    import sys

    sys.modules.pop("sw.boards.virtual", None)  # unloaded with this board (heap)
    return b
