"""UDP link to the gateway: one frame per datagram (spec section 6), same code on every port.

WiFi bring-up is a separate concern; this driver only needs a working `socket`.
"""
import select
import socket

from micropython import const

# MicroPython sockets have no recv_into on any port (1.29: unix, esp32, rp2; the stub packages
# the device code is type-checked against list none), so every datagram is a fresh object of the
# cap, and a 1.2 KB block is hard to find in a small fragmented heap (it is never compacted). So
# the cap is the largest downlink this firmware acts on: a CONFIG_PUSH with all 8 known keys at
# full length is 174 bytes, 256 leaves room for a few newer keys. Anything longer (FW_CHUNK:
# this firmware does not advertise OTA) is cut and then fails its tag. Raise it with OTA; boards
# with OTA have the heap for it.
_RECV_CAP = const(256)


class UdpLink:
    """Connected, non-blocking UDP socket: the kernel drops datagrams from anyone but the
    gateway, and the node's loop waits for it with select.poll."""

    def __init__(self, host, port):
        try:
            ai = socket.getaddrinfo(host, port)[0]
        except OSError as e:
            # OSError with a message: boot prints it and stops with exit code 2
            raise OSError("cannot resolve gateway %s:%d (%s)" % (host, port, e))
        self._family = ai[0]
        self._addr = ai[-1]
        self.errors = 0  # refused sends and receive errors

    def open(self, poller):
        """Create the socket and register it with poller for POLLIN."""
        s = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            s.connect(self._addr)
        except OSError as e:
            s.close()
            raise OSError("cannot use gateway address (%s)" % e)
        s.setblocking(False)
        self._sock = s
        poller.register(s, select.POLLIN)

    def close(self):
        """Close the socket (after open(): the node opens its link when it attaches the board)."""
        self._sock.close()

    def send(self, frame):
        """Send one frame; False if the network refused it (the protocol retries, not us)."""
        try:
            self._sock.send(frame)
            return True
        except OSError:
            # ECONNREFUSED (gateway down, ICMP), EAGAIN (full queue), ENETUNREACH
            self.errors += 1
            return False

    def recv(self):
        """One pending datagram (capped, maybe empty or garbage), or None."""
        try:
            # Not readinto / read: MicroPython's stream reads loop until the buffer is full and
            # glue datagrams together; recv is exactly one datagram.
            return self._sock.recv(_RECV_CAP)
        except OSError:
            # EAGAIN (nothing there after all) or ECONNREFUSED reported for an earlier send:
            # the error is consumed by this call, so the loop does not spin on it.
            self.errors += 1
            return None
