"""Typed v1 messages: frozen, slotted dataclasses that cross every layer (docs/protocol.md s. 5)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar


class Direction(IntEnum):
    UP = 0  # device -> gateway
    DOWN = 1  # gateway -> device


class MessageType(IntEnum):
    HELLO = 1
    WELCOME = 2
    TELEMETRY = 3
    DETECTION = 4
    CONFIG_PUSH = 5
    CONFIG_ACK = 6
    FW_OFFER = 7
    FW_REQUEST = 8
    FW_CHUNK = 9
    FW_RESULT = 10
    ACK = 11
    NACK = 12
    LOG = 13


UPLINK_TYPES = frozenset(
    {MessageType.HELLO, MessageType.TELEMETRY, MessageType.DETECTION, MessageType.CONFIG_ACK,
     MessageType.FW_REQUEST, MessageType.FW_RESULT, MessageType.ACK, MessageType.NACK,
     MessageType.LOG}
)
DOWNLINK_TYPES = frozenset(
    {MessageType.WELCOME, MessageType.CONFIG_PUSH, MessageType.FW_OFFER, MessageType.FW_CHUNK,
     MessageType.ACK, MessageType.NACK}
)
LONG_HEADER_TYPES = frozenset({MessageType.HELLO, MessageType.WELCOME})


# Open enumerations: unknown values from newer peers decode as UNKNOWN.
class HardwareKind(IntEnum):
    UNKNOWN = 0
    SENSOR_NODE = 1
    THERMAL_CAMERA = 2


class BootReason(IntEnum):
    UNKNOWN = 0
    POWER_ON = 1
    HARD_RESET = 2
    WATCHDOG = 3
    DEEP_SLEEP = 4
    SOFT_RESET = 5
    BROWNOUT = 6
    OTA_TRIAL = 7


class DetectionKind(IntEnum):
    UNKNOWN = 0
    PERSON = 1
    GROUP = 2
    BOAT = 3
    VEHICLE = 4
    ANIMAL = 5


class NackCode(IntEnum):
    UNSPECIFIED = 0
    MALFORMED = 1
    UNSUPPORTED = 2
    NOT_PROVISIONED = 3
    RESYNC_REQUIRED = 4
    BUSY = 5
    CONFIG_INVALID = 6
    TOO_LARGE = 7


# Closed enumerations: unknown values are malformed.
class Lifecycle(IntEnum):
    NEW = 0
    UPDATE = 1
    END = 2


class ThumbFormat(IntEnum):
    DEFLATE = 1
    RAW = 2


class ConfigStatus(IntEnum):
    APPLIED = 0
    REJECTED = 1
    PARTIAL = 2


class FwStatus(IntEnum):
    INSTALLED = 0
    STAGED = 1
    HASH_MISMATCH = 2
    BAD_SIGNATURE = 3
    NO_SPACE = 4
    ROLLBACK_REFUSED = 5
    ABORTED = 6
    TRIAL_FAILED = 7


class LogLevel(IntEnum):
    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    CRITICAL = 4


class Capability(IntFlag):
    PIR = 1 << 0
    RADAR = 1 << 1
    THERMAL = 1 << 2
    POWER_MONITOR = 1 << 3
    BATTERY_ADC = 1 << 4
    ENCRYPTION = 1 << 5
    OTA = 1 << 6
    THUMBNAILS = 1 << 7
    STREAM_LINK = 1 << 8


class TelemetryFlag(IntFlag):
    CHARGING = 1 << 0
    BATTERY_LOW = 1 << 1
    POWER_SAVE = 1 << 2
    SENSOR_FAULT = 1 << 3
    CLOCK_UNSYNCED = 1 << 4
    STORE_OVERFLOW = 1 << 5
    LINK_DEGRADED = 1 << 6


class WelcomeFlag(IntFlag):
    CONFIG_PENDING = 1 << 0
    FIRMWARE_PENDING = 1 << 1


# "Not measured" markers in TELEMETRY.
NOT_MEASURED_I16 = -32768
NOT_MEASURED_HUMIDITY = 255
UNKNOWN_RSSI = -128


@dataclass(frozen=True, slots=True)
class Hello:
    TYPE: ClassVar[MessageType] = MessageType.HELLO
    fw_major: int
    fw_minor: int
    fw_patch: int
    hw_kind: HardwareKind
    boot_reason: BootReason
    capabilities: int
    schema: int
    nonce: bytes
    config_version: int = 0


@dataclass(frozen=True, slots=True)
class Welcome:
    TYPE: ClassVar[MessageType] = MessageType.WELCOME
    nonce: bytes
    unix_s: int
    unix_ms: int
    config_version: int
    flags: int


@dataclass(frozen=True, slots=True)
class Telemetry:
    TYPE: ClassVar[MessageType] = MessageType.TELEMETRY
    battery_mv: int
    solar_mv: int
    charge_ma: int
    temperature_cc: int
    humidity_half_pct: int
    rssi_dbm: int
    uptime_s: int
    boot_count: int
    free_heap_64: int
    flags: int


@dataclass(frozen=True, slots=True)
class Thumbnail:
    format: ThumbFormat
    w: int
    h: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Detection:
    TYPE: ClassVar[MessageType] = MessageType.DETECTION
    event_id: int
    lifecycle: Lifecycle
    kind: DetectionKind
    confidence_pct: int
    box_x: int
    box_y: int
    box_w: int
    box_h: int
    peak_cc: int
    count: int
    ts_s: int
    ts_ms: int
    thumbnail: Thumbnail | None = None


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    key: int
    value: bytes


@dataclass(frozen=True, slots=True)
class ConfigPush:
    TYPE: ClassVar[MessageType] = MessageType.CONFIG_PUSH
    config_version: int
    entries: tuple[ConfigEntry, ...]


@dataclass(frozen=True, slots=True)
class ConfigAck:
    TYPE: ClassVar[MessageType] = MessageType.CONFIG_ACK
    config_version: int
    status: ConfigStatus
    bad_key: int


@dataclass(frozen=True, slots=True)
class FwOffer:
    TYPE: ClassVar[MessageType] = MessageType.FW_OFFER
    offer_id: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    size: int
    chunk_size: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class FwRequest:
    TYPE: ClassVar[MessageType] = MessageType.FW_REQUEST
    offer_id: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class FwChunk:
    TYPE: ClassVar[MessageType] = MessageType.FW_CHUNK
    offer_id: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FwResult:
    TYPE: ClassVar[MessageType] = MessageType.FW_RESULT
    offer_id: int
    status: FwStatus
    fw_major: int
    fw_minor: int
    fw_patch: int


@dataclass(frozen=True, slots=True)
class Ack:
    TYPE: ClassVar[MessageType] = MessageType.ACK
    acked_counter: int
    acked_type: int


@dataclass(frozen=True, slots=True)
class Nack:
    TYPE: ClassVar[MessageType] = MessageType.NACK
    nacked_counter: int
    code: NackCode


@dataclass(frozen=True, slots=True)
class Log:
    TYPE: ClassVar[MessageType] = MessageType.LOG
    level: LogLevel
    text: str


Message = (
    Hello | Welcome | Telemetry | Detection | ConfigPush | ConfigAck | FwOffer | FwRequest
    | FwChunk | FwResult | Ack | Nack | Log
)
