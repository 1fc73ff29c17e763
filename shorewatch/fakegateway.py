"""Just enough gateway at the codec seam to drive a virtual board, for tests and benches.

``FakeGateway`` verifies every uplink with the CPython codec, answers HELLO with WELCOME and
DETECTION with ACK, on a UDP socket bound to 127.0.0.1 and port 0. Tests add behaviour through
hooks (forged downlinks, dropped ACKs, pushes). It holds no registry, no MQTT and no SQLite: the
real gateway process is ``shorewatch.harness.GatewayProcess``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from protocol import (
    DeviceKeys,
    ProtocolError,
    Received,
    ReplayWindow,
    encode_frame,
    open_frame,
    peek_header,
    seal,
)
from protocol.messages import Ack, Detection, Direction, Hello, MessageType, Welcome

from .peers import PeerError

MASTER = bytes(range(32))  # the master key of the boards these tools provision
DEVICE_ID = 0x00C0FFEE
TAG_LEN = 8
UNIX_S = 1_790_000_000  # the gateway's clock in WELCOME (2026-09-21 13:33:20 UTC)
DRAIN_S = 0.2  # datagrams still read after the board exited

Hook = Callable[["FakeGateway", Received], None]


class FakeGateway:
    """Verify every uplink, WELCOME a HELLO, ACK a DETECTION. The uplink replay window lives as
    long as the object, across device reboots, so a reused counter shows up as a rejection."""

    def __init__(self, master: bytes = MASTER, device_id: int = DEVICE_ID, *,
                 unix_s: int = UNIX_S, tag_len: int = TAG_LEN) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.keys = DeviceKeys.from_master(master)
        self.device_id = device_id
        self.unix_s = unix_s
        self.tag_len = tag_len
        self.up = ReplayWindow()
        self.down_counter = 1000  # the gateway's own downlink counter, never reset here
        self.frames: list[Received] = []
        self.times: list[float] = []  # arrival (monotonic) of each frame
        self.errors: list[ProtocolError] = []
        self.addr: tuple[str, int] | None = None
        self.drop_acks = 0  # ACKs of detections to "lose" (the first ones)
        self.ignore_hellos = 0  # HELLOs to leave unanswered (the first ones)
        self.hooks: list[Hook] = []
        self.last_welcome: bytes = b""
        self.last_ack: bytes = b""

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def close(self) -> None:
        self.sock.close()

    def of(self, kind: type[Any]) -> list[Received]:
        return [r for r in self.frames if isinstance(r.message, kind)]

    def seal(self, mtype: MessageType, body: bytes, *, keys: DeviceKeys | None = None,
             device_id: int | None = None, direction: Direction = Direction.DOWN) -> bytes:
        """A downlink frame from an encoded body with the next counter (for forgeries)."""
        self.down_counter += 1
        return seal(mtype, body, keys=keys or self.keys, direction=direction,
                    device_id=self.device_id if device_id is None else device_id,
                    counter=self.down_counter, tag_len=self.tag_len)

    def send(self, message: Any, *, encrypt: bool = False) -> bytes:
        self.down_counter += 1
        frame = encode_frame(message, keys=self.keys, direction=Direction.DOWN,
                             device_id=self.device_id, counter=self.down_counter,
                             tag_len=self.tag_len, encrypt=encrypt)
        self.send_raw(frame)
        return frame

    def send_raw(self, data: bytes) -> None:
        if self.addr is None:
            raise PeerError("the device has not spoken yet")
        self.sock.sendto(data, self.addr)

    def serve(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Answer the device until it exits (then drain what is left), at most timeout s;
        PeerError (after killing it) if the board is still running then."""
        deadline = time.monotonic() + timeout
        exited_at: float | None = None
        while True:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > DRAIN_S:
                return
            if now > deadline:
                proc.kill()
                proc.wait(5)
                raise PeerError(f"the board did not stop within {timeout:.0f} s")
            self.receive()

    def receive(self) -> bool:
        """Handle one datagram if one arrives within the socket timeout."""
        try:
            data, addr = self.sock.recvfrom(4096)
        except TimeoutError:
            return False
        self.addr = addr
        self.handle(data)
        return True

    def handle(self, data: bytes) -> None:
        try:
            header = peek_header(data, Direction.UP)
            if header.device_id != self.device_id:
                raise PeerError(f"a frame from device {header.device_id:#x}")
            received = open_frame(data, header, self.keys, self.up, self.tag_len)
        except ProtocolError as exc:
            self.errors.append(exc)
            return
        self.frames.append(received)
        self.times.append(time.monotonic())
        msg = received.message
        if isinstance(msg, Hello):
            if self.ignore_hellos:
                self.ignore_hellos -= 1
            else:
                self.last_welcome = self.send(Welcome(nonce=msg.nonce, unix_s=self.unix_s,
                                                      unix_ms=250, config_version=0, flags=0))
        elif isinstance(msg, Detection):
            if self.drop_acks:
                self.drop_acks -= 1
            else:
                self.last_ack = self.send(Ack(acked_counter=received.counter,
                                              acked_type=MessageType.DETECTION))
        for hook in list(self.hooks):
            hook(self, received)
