"""UDP link to the gateway: one frame per datagram (spec section 6), same code on every port.

WiFi bring-up is a separate concern; this driver only needs a working `socket`.
"""
import select
import socket

from micropython import const

# Ports with recv_into read into one preallocated buffer of MAX_FRAME_SIZE (1232) + 1 bytes: a
# datagram that fills it was longer than any frame and the codec rejects it as oversize.
_BUF_SIZE = const(1233)
# Ports without recv_into (the unix port) allocate a fresh object of the cap for every datagram,
# and a 1.2 KB block is hard to find in a small fragmented heap (it is never compacted). So there
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
        self._sock = None
        self._buf = None
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
        if hasattr(s, "recv_into"):
            # ports with recv_into read into one preallocated buffer: no allocation per frame
            self._buf = bytearray(_BUF_SIZE)
        poller.register(s, select.POLLIN)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

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
            if self._buf is not None:
                return memoryview(self._buf)[:self._sock.recv_into(self._buf)]
            # Not readinto / read: MicroPython's stream reads loop until the buffer is full and
            # glue datagrams together; recv is exactly one datagram.
            return self._sock.recv(_RECV_CAP)
        except OSError:
            # EAGAIN (nothing there after all) or ECONNREFUSED reported for an earlier send:
            # the error is consumed by this call, so the loop does not spin on it.
            self.errors += 1
            return None
