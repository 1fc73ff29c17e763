"""The gateway's frame pipeline: verify, then parse, then act. No I/O here.

``FrameHandler.handle`` takes one frame and its source, updates device state in memory, and
returns its ``Effects``: replies to send and outbox records to append. The service releases them
only after the state change is committed to disk. Time is passed in (``now``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol import (
    NOT_MEASURED_HUMIDITY,
    NOT_MEASURED_I16,
    SCHEMA_FINGERPRINT,
    UNKNOWN_RSSI,
    Ack,
    ConfigAck,
    ConfigPush,
    ConfigStatus,
    Detection,
    Direction,
    FrameError,
    Hello,
    Lifecycle,
    Log,
    LogLevel,
    Malformed,
    Message,
    MessageType,
    Nack,
    ProtocolError,
    Received,
    Telemetry,
    UnknownDevice,
    Welcome,
    WelcomeFlag,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.errors import REASONS
from protocol.frame import SHORT_FIELDS, header_byte, open_fresh
from protocol.limits import MAX_FRAME_SIZE, SHORT_HEADER
from protocol.schema import core_size

from . import sessions
from .devconfig import PushPolicy, key_name
from .metrics import GatewayMetrics
from .registry import DeviceState, OutboxRecord

log = logging.getLogger("shorewatch.gateway")

# Detections remembered per device to recognise retransmissions (and event start times).
RECENT_EVENTS = 64

Address = tuple[str, int]
# The fast intake's case: plain uplink TELEMETRY (its header byte) with at least its core body.
_PLAIN_TELEMETRY = bytes([header_byte(MessageType.TELEMETRY, Direction.UP)])
_TELEMETRY_MIN = SHORT_HEADER + core_size(MessageType.TELEMETRY)
_LOG_LEVELS = {LogLevel.DEBUG: logging.DEBUG, LogLevel.INFO: logging.INFO,
               LogLevel.WARNING: logging.WARNING, LogLevel.ERROR: logging.ERROR,
               LogLevel.CRITICAL: logging.CRITICAL}


@dataclass(slots=True)
class Effects:
    """What accepting one frame asks for, to release once its state is durable.

    Telemetry is not among them: it is staged on the device (``staged_telemetry``) and the
    group commit shows it once the frame's window is on disk, so a frame lost with an
    uncommitted window had no visible effect at all and cannot be "replayed".
    """

    replies: list[bytes] = field(default_factory=list)
    records: list[OutboxRecord] = field(default_factory=list)
    # The device the frame came from (None: rejected); its row goes with these effects.
    device: DeviceState | None = None

    def __bool__(self) -> bool:
        return bool(self.replies or self.records)


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    """A detection accepted from a device, ready to forward."""

    device_id: int
    seq: int
    message: Detection
    received_at: float
    # Event time of the ``new`` message when this gateway saw it (None after a restart).
    start_time: float | None = None


class RejectLog:
    """Logs each rejection reason once per ``interval`` with the number suppressed meanwhile."""

    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, exc: ProtocolError, source: Address, now: float) -> None:
        reason = exc.reason
        last = self._last.get(reason)
        if last is not None and now - last < self._interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        more = self._suppressed.pop(reason, 0)
        extra = f" ({more} more since last report)" if more else ""
        log.warning("rejected frame from %s:%d: %s: %s%s", source[0], source[1], reason, exc,
                    extra)


class FrameHandler:
    """Authenticates and dispatches uplink frames for the devices in ``devices``."""

    def __init__(self, devices: dict[int, DeviceState], metrics: GatewayMetrics,
                 gateway_id: str = "gw0", *,
                 config_version: Callable[[int], int] | None = None,
                 push_policy: PushPolicy | None = None,
                 publish_telemetry: bool = False, fast_intake: bool = True) -> None:
        # ``config_version`` overrides the desired version announced in WELCOME; by default it
        # is the device's own ``state.config.desired_version``.
        self._devices = devices
        self._metrics = metrics
        self._gateway_id = gateway_id
        self._config_version = config_version
        self._push = push_policy or PushPolicy()
        self._publish_telemetry = publish_telemetry
        # Telemetry events need the decoded message: then every frame takes the general path
        # (``fast_intake=False`` forces it too: the tests compare both paths).
        self._fast = fast_intake and not publish_telemetry
        self._rejects = RejectLog()
        # Labelled counters looked up once: ``labels()`` costs about a microsecond per frame.
        self._accepted = {t: metrics.frames.labels(t.name.lower()) for t in MessageType}
        self._rejected = {r: metrics.rejected.labels(r) for r in REASONS}

    def handle(self, frame: bytes, source: Address, now: float | None = None) -> Effects:
        """Process one frame; return what to release once committed. Never raises."""
        now = time.time() if now is None else now
        if self._fast and frame[:1] == _PLAIN_TELEMETRY:
            fast = self._fast_telemetry(frame, source, now)
            if fast is not None:
                return fast
        effects = Effects()
        try:
            received, state = self._open(frame)
        except FrameError as exc:
            self._reject(exc, source, now)
            return effects
        msg = received.message
        effects.device = state
        self._seen(state, source, now, msg.TYPE)
        reply = self._dispatch(state, received, msg, now, effects)
        if reply is not None and not self._reply(state, reply, effects):
            return effects
        # Sleepy devices listen right after they sent: a pending CONFIG_PUSH rides along.
        if self._push_due(state, isinstance(msg, Hello), now):
            self._send_push(state, now, effects)
        return effects

    def _fast_telemetry(self, frame: bytes, source: Address, now: float) -> Effects | None:
        """The bulk of a fleet's traffic, without building a header, a message or a record:
        plain TELEMETRY with a counter ahead of the window. The verified body is staged as
        bytes and decoded when read. None, having touched nothing, for any other case: the
        general path decides it (and counts it) exactly as before."""
        n = len(frame)
        if n > MAX_FRAME_SIZE or n < _TELEMETRY_MIN:
            return None
        _, device_id, low16 = SHORT_FIELDS.unpack_from(frame)
        state = self._devices.get(device_id)
        if state is None:
            return None
        cut = n - state.tag_len
        if cut < _TELEMETRY_MIN:
            return None  # malformed if authentic: open_frame commits the counter, then refuses
        try:
            if open_fresh(frame, state.keys, state.window, tag_len=state.tag_len,
                          direction=Direction.UP, device_id=device_id, low16=low16) < 0:
                return None
        except FrameError as exc:
            self._reject(exc, source, now)
            return Effects()
        state.dirty = True
        state.staged_telemetry = frame[SHORT_HEADER:cut]
        self._seen(state, source, now, MessageType.TELEMETRY)
        effects = Effects(device=state)
        if self._push_due(state, False, now):
            self._send_push(state, now, effects)
        return effects

    def _reject(self, exc: FrameError, source: Address, now: float) -> None:
        rejected = self._rejected.get(exc.reason)
        (rejected or self._metrics.rejected.labels(exc.reason)).inc()
        self._rejects.note(exc, source, now)

    def _seen(self, state: DeviceState, source: Address, now: float, mtype: MessageType) -> None:
        """An authenticated frame of ``mtype`` from ``state``'s device was accepted."""
        if state.last_addr != source:
            # One copy of the host string per address, not one per device (RSS at 10k devices).
            state.last_addr = (sys.intern(source[0]), source[1])
        moved = sessions.seen(state, now, hello=mtype is MessageType.HELLO)
        if moved is not None:
            self._metrics.session_transitions.labels(moved.after.value).inc()
        self._accepted[mtype].inc()

    def _reply(self, state: DeviceState, reply: Message, effects: Effects,
               encrypt: bool = False) -> bool:
        counter = state.take_down_counter()
        if counter is None:
            self._metrics.downlink_deferred.inc()
            return False
        effects.replies.append(encode_frame(
            reply, keys=state.keys, direction=Direction.DOWN, device_id=state.device_id,
            counter=counter, tag_len=state.tag_len, encrypt=encrypt))
        return True

    def _open(self, frame: bytes) -> tuple[Received, DeviceState]:
        header = peek_header(frame, Direction.UP)
        state = self._devices.get(header.device_id)
        if state is None:
            raise UnknownDevice(header.device_id)
        window = state.window
        try:
            received = open_frame(frame, header, state.keys, window, state.tag_len)
        except Malformed:
            # A malformed body still consumed its (authentic) counter: persist the window. A
            # forged or replayed frame changed nothing and costs no write.
            state.dirty = True
            raise
        state.dirty = True
        return received, state

    def _dispatch(self, state: DeviceState, rx: Received, msg: Message, now: float,
                  effects: Effects) -> Message | None:
        if isinstance(msg, Telemetry):
            state.staged_telemetry = msg
            if self._publish_telemetry:
                effects.records.append(OutboxRecord(
                    state.device_id, f"device/{state.device_id:08x}/event/telemetry",
                    _json(telemetry_payload(state.device_id, msg, now, self._gateway_id)), now))
            return None
        if isinstance(msg, Detection):
            self._detection(state, msg, now, effects)
            return Ack(rx.counter, int(msg.TYPE))
        if isinstance(msg, Hello):
            return self._hello(state, msg, now)
        if isinstance(msg, ConfigAck):
            self._config_ack(state, msg)
            return None
        if isinstance(msg, Log):
            log.log(_LOG_LEVELS[msg.level], "device %08x says: %r", state.device_id, msg.text)
            return None
        if isinstance(msg, Nack):
            log.info("device %08x refused counter %d: %s", state.device_id, msg.nacked_counter,
                     msg.code.name.lower())
        return None

    def _detection(self, state: DeviceState, msg: Detection, now: float,
                   effects: Effects) -> None:
        """Queue a detection event; a retransmission of one already queued is only re-ACKed."""
        key = idempotency_key(state.device_id, msg)
        if state.recent_events is None or state.event_starts is None:
            state.recent_events, state.event_starts = {}, {}
        if key in state.recent_events:
            self._metrics.detection_duplicates.inc()
            return
        state.recent_events[key] = None
        if len(state.recent_events) > RECENT_EVENTS:
            del state.recent_events[next(iter(state.recent_events))]
        ts = msg.ts_s + msg.ts_ms / 1000
        if msg.lifecycle is Lifecycle.NEW:
            state.event_starts[msg.event_id] = ts
            if len(state.event_starts) > RECENT_EVENTS:
                del state.event_starts[next(iter(state.event_starts))]
        start = state.event_starts.get(msg.event_id)
        if msg.lifecycle is Lifecycle.END:
            state.event_starts.pop(msg.event_id, None)
        state.detection_seq += 1
        self._metrics.detections.labels(msg.kind.name.lower()).inc()
        event = DetectionEvent(state.device_id, state.detection_seq, msg, now, start)
        effects.records.append(OutboxRecord(
            state.device_id, f"device/{state.device_id:08x}/event/detection",
            _json(detection_payload(event, self._gateway_id)), now))

    def _hello(self, state: DeviceState, msg: Hello, now: float) -> Welcome:
        if msg.schema != SCHEMA_FINGERPRINT:
            self._metrics.schema_mismatch.inc()
        # Interned: a fleet shares a few values, so 10,000 devices need not hold 30,000 copies.
        state.hw_kind = sys.intern(msg.hw_kind.name.lower())
        state.fw_version = sys.intern(f"{msg.fw_major}.{msg.fw_minor}.{msg.fw_patch}")
        state.boot_reason = sys.intern(msg.boot_reason.name.lower())
        state.config_version = msg.config_version
        log.info("device %08x hello: firmware %s, %s, boot %s", state.device_id,
                 state.fw_version, state.hw_kind, state.boot_reason)
        sync = state.config
        if self._config_version is not None:
            wanted = self._config_version(state.device_id)
            pending = wanted != msg.config_version
        else:
            # No managed configuration: confirm the device's own version, nothing pending.
            wanted = sync.desired_version or msg.config_version
            pending = sync.pending(msg.config_version) and not sync.gave_up
        flags = WelcomeFlag.CONFIG_PENDING if pending else WelcomeFlag(0)
        seconds = int(now)
        return Welcome(msg.nonce, seconds, min(int((now - seconds) * 1000), 999), wanted,
                       int(flags))

    def _config_ack(self, state: DeviceState, msg: ConfigAck) -> None:
        sync = state.config
        status = msg.status.name.lower()
        sync.status, sync.bad_key = status, msg.bad_key
        self._metrics.config_pushes.labels(status).inc()
        dev, version = state.device_id, msg.config_version
        if msg.status is ConfigStatus.REJECTED:
            if version == sync.desired_version:
                sync.gave_up = True  # the same push would be refused again
            log.warning("device %08x rejected config %d (first bad key: %s)", dev, version,
                        key_name(msg.bad_key))
            return
        state.config_version = version
        if msg.status is ConfigStatus.PARTIAL:
            log.warning("device %08x applied config %d partially (first key not applied: %s)",
                        dev, version, key_name(msg.bad_key))
        else:
            log.info("device %08x applied config %d", dev, version)

    def _push_due(self, state: DeviceState, hello: bool, now: float) -> bool:
        """Whether this uplink gets the pending CONFIG_PUSH (first time, or a due retry)."""
        sync = state.config
        if sync.gave_up or not sync.pending(state.config_version):
            return False
        if sync.attempts == 0 or sync.last_push_at is None:
            return True
        waited = now - sync.last_push_at >= self._push.wait(sync.attempts)
        if sync.attempts >= self._push.max_attempts:
            if waited:  # the last attempt had its time: stop until the next change
                sync.gave_up = True
                self._metrics.config_pushes.labels("gave_up").inc()
                log.warning("device %08x: config %d not acknowledged after %d pushes; giving up "
                            "until the configuration changes", state.device_id,
                            sync.desired_version, sync.attempts)
            return False
        return waited or hello

    def _send_push(self, state: DeviceState, now: float, effects: Effects) -> None:
        sync = state.config
        push = ConfigPush(sync.desired_version, sync.entries)
        # A push with the WiFi passphrase travels encrypted (docs/protocol.md section 4).
        if not self._reply(state, push, effects, encrypt=sync.secret):
            return
        sync.attempts += 1
        sync.last_push_at = now
        self._metrics.config_pushes.labels("sent" if sync.attempts == 1 else "retried").inc()
        log.info("device %08x: config %d pushed (attempt %d, keys %s%s)", state.device_id,
                 sync.desired_version, sync.attempts,
                 ",".join(key_name(e.key) for e in sync.entries) or "none",
                 ", encrypted" if sync.secret else "")


def detection_payload(event: DetectionEvent, gateway_id: str) -> dict[str, Any]:
    """The MQTT JSON of a detection (docs/mqtt.md): Frigate-like lifecycle event."""
    d = event.message
    dev = f"{event.device_id:08x}"
    ts = d.ts_s + d.ts_ms / 1000
    ended = d.lifecycle is Lifecycle.END
    start = event.start_time if event.start_time is not None else (None if ended else ts)
    payload: dict[str, Any] = {
        "schema": "shorewatch.detection.v1",
        "device": dev,
        "gateway": gateway_id,
        "event_id": f"{dev}-{d.event_id:08x}",
        "lifecycle": d.lifecycle.name.lower(),
        "kind": d.kind.name.lower(),
        "score": d.confidence_pct / 100,
        "count": d.count,
        "box": [d.box_x, d.box_y, d.box_w, d.box_h],
        "peak_temp_c": d.peak_cc / 100,
        "time": ts,
        "start_time": start,
        "end_time": ts if ended else None,
        "received_at": round(event.received_at, 3),
        "seq": event.seq,
        "idempotency_key": idempotency_key(event.device_id, d),
    }
    if d.thumbnail is not None:
        import base64  # noqa: PLC0415 - only detections with thumbnails need it

        t = d.thumbnail
        payload["thumbnail"] = {"format": t.format.name.lower(), "width": t.w, "height": t.h,
                                "data": base64.b64encode(t.data).decode()}
    return payload


def idempotency_key(device_id: int, d: Detection) -> str:
    """Same for every retransmission of one observation: device, event, lifecycle, time."""
    ts = d.ts_s + d.ts_ms / 1000
    return f"{device_id:08x}-{d.event_id:08x}-{d.lifecycle.name.lower()}-{ts:.3f}"


def telemetry_payload(device_id: int, t: Telemetry, now: float,
                      gateway_id: str) -> dict[str, Any]:
    """The MQTT JSON of a telemetry report (docs/mqtt.md), in base units; absent = not measured."""
    payload: dict[str, Any] = {
        "schema": "shorewatch.telemetry.v1", "device": f"{device_id:08x}", "gateway": gateway_id,
        "received_at": round(now, 3), "battery_v": t.battery_mv / 1000,
        "solar_v": t.solar_mv / 1000, "uptime_s": t.uptime_s, "boot_count": t.boot_count,
        "free_heap_bytes": t.free_heap_64 * 64, "flags": t.flags,
    }
    if t.charge_ma != NOT_MEASURED_I16:
        payload["charge_a"] = t.charge_ma / 1000
    if t.temperature_cc != NOT_MEASURED_I16:
        payload["temperature_c"] = t.temperature_cc / 100
    if t.humidity_half_pct != NOT_MEASURED_HUMIDITY:
        payload["humidity_ratio"] = t.humidity_half_pct / 200
    if t.rssi_dbm != UNKNOWN_RSSI:
        payload["rssi_dbm"] = t.rssi_dbm
    return payload


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
