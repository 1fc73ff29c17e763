"""Prometheus metrics: gateway counters, and the fleet rendered at scrape time by a Collector."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from protocol import NOT_MEASURED_HUMIDITY, NOT_MEASURED_I16, UNKNOWN_RSSI, MessageType, Telemetry
from protocol.errors import REASONS

from .registry import DeviceState
from .sessions import SessionState

_TYPES = [t.name.lower() for t in MessageType]
try:
    _VERSION = importlib.metadata.version("shorewatch")
except importlib.metadata.PackageNotFoundError:  # running from a plain checkout
    _VERSION = "unknown"
_PUSH_OUTCOMES = ("sent", "retried", "applied", "partial", "rejected", "gave_up")


class GatewayMetrics:
    """Every counter the gateway keeps, in a registry of its own (one per gateway instance)."""

    def __init__(self, devices: Callable[[], list[DeviceState]],
                 refresh: Callable[[], None] | None = None) -> None:
        """``refresh`` runs before each scrape (the service re-evaluates device sessions)."""
        # The gateway's own counters and gauges; /metrics renders them, then streams the fleet.
        self.counters = CollectorRegistry()
        r = self.counters
        self.frames = Counter("shorewatch_frames_received_total",
                              "Authenticated frames accepted, by message type", ["type"],
                              registry=r)
        self.rejected = Counter("shorewatch_frames_rejected_total",
                                "Frames rejected, by reason", ["reason"], registry=r)
        self.detections = Counter("shorewatch_detections_total",
                                  "Detection messages accepted, by kind", ["kind"], registry=r)
        self.detection_duplicates = Counter(
            "shorewatch_detection_duplicates_total",
            "Retransmitted detections recognised and acknowledged without a second event",
            registry=r)
        self.schema_mismatch = Counter(
            "shorewatch_schema_mismatch_total",
            "HELLOs whose schema fingerprint differs from this gateway's", registry=r)
        self.downlink_deferred = Counter(
            "shorewatch_downlink_deferred_total",
            "Replies not sent because the downlink counter reservation was not yet persisted",
            registry=r)
        dest = ["destination"]
        self.mqtt_published = Counter("shorewatch_mqtt_published_total",
                                      "Messages published and acknowledged", dest, registry=r)
        self.mqtt_reconnects = Counter("shorewatch_mqtt_reconnects_total",
                                       "MQTT connection failures (each followed by a retry)",
                                       dest, registry=r)
        self.mqtt_connected = Gauge("shorewatch_mqtt_connected",
                                    "1 while connected to the destination's broker", dest,
                                    registry=r)
        self.mqtt_publish_seconds = Histogram(
            "shorewatch_mqtt_publish_seconds", "Time from publish to broker acknowledgement",
            dest, registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.commit_seconds = Histogram(
            "shorewatch_commit_seconds", "Duration of one group commit to SQLite", registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
        self.commit_errors = Counter("shorewatch_commit_errors_total",
                                     "Group commits that failed (their effects were dropped)",
                                     registry=r)
        self.outbox_rows = Gauge("shorewatch_outbox_rows",
                                 "Events in the outbox not yet published to the destination",
                                 dest, registry=r)
        self.outbox_oldest_age = Gauge(
            "shorewatch_outbox_oldest_age_seconds",
            "Age of the oldest event not yet published to the destination", dest, registry=r)
        self.outbox_dropped = Counter(
            "shorewatch_outbox_dropped_total",
            "Events dropped by the outbox bounds before the destination published them", dest,
            registry=r)
        self.build_info = Gauge("shorewatch_build_info", "Gateway build (value is always 1)",
                                ["version", "protocol", "python"], registry=r)
        self.serial_open = Gauge("shorewatch_serial_port_open",
                                 "1 while the serial port is open and read", ["port"],
                                 registry=r)
        self.replies_dropped = Counter(
            "shorewatch_replies_dropped_total",
            "Replies not sent because their link was down or congested (devices retransmit)",
            ["link"], registry=r)
        self.config_pushes = Counter(
            "shorewatch_config_push_total",
            "CONFIG_PUSH outcomes: sent (first attempt), retried, and the CONFIG_ACK status "
            "(applied, partial, rejected), or gave_up after the bounded attempts",
            ["outcome"], registry=r)
        self.session_transitions = Counter(
            "shorewatch_device_transitions_total",
            "Device session transitions, by the state entered", ["state"], registry=r)
        self.admin_requests = Counter(
            "shorewatch_admin_requests_total", "Admin API requests, by HTTP status", ["status"],
            registry=r)
        self.build_info.labels(_VERSION, "1", platform.python_version()).set(1)
        # Pre-create label values so dashboards see zeros rather than absent series.
        for outcome in _PUSH_OUTCOMES:
            self.config_pushes.labels(outcome)
        for state in SessionState:
            self.session_transitions.labels(state.value)
        for reason in REASONS:
            self.rejected.labels(reason)
        for name in _TYPES:
            self.frames.labels(name)
        self.fleet = FleetCollector(devices, refresh)
        # Everything in one registry, for queries (tools, tests): the counters and the fleet.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collected(self.counters))
        self.registry.register(self.fleet)


class _Collected(Collector):
    """Another registry's metrics, as one collector."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


# One fleet family: name, help, label names, and (label values, value) per sample.
FleetFamily = tuple[str, str, tuple[str, ...], Iterator[tuple[tuple[str, ...], float]]]
# Devices per chunk of the streamed exposition.
_CHUNK_DEVICES = 1000


class FleetCollector(Collector):
    """Per-device gauges from the in-memory device states at scrape time.

    Two renderings of the same families (``families``): ``collect`` for a prometheus-client
    registry (queries, tests) and ``exposition``, the text format streamed by /metrics without
    building a sample object per value: a scrape of 10,000 devices is ~200,000 samples, and
    holding them (or their ~12 MB of text) at once left the gateway's RSS ~2.5 KiB per device
    higher after every scrape.
    """

    def __init__(self, devices: Callable[[], list[DeviceState]],
                 refresh: Callable[[], None] | None = None) -> None:
        self._devices = devices
        self._refresh = refresh

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def families(self) -> Iterator[FleetFamily]:
        """Each family is produced in a pass of its own over the devices, lazily."""
        if self._refresh is not None:
            self._refresh()
        states = self._devices()
        yield ("shorewatch_device_info", "Device identity (value is always 1)",
               ("device", "firmware", "hw_kind", "name"),  # sorted, as prometheus-client does
               (((_dev(s), s.fw_version, s.hw_kind, s.name), 1) for s in states))
        yield ("shorewatch_device_state",
               "Device session state, one-hot: 1 for the current state", ("device", "state"),
               (((_dev(s), st.value), 1 if s.session is st else 0)
                for s in states for st in SessionState))
        for name, (doc, value) in _STATE_GAUGES.items():
            yield (f"shorewatch_device_{name}", doc, ("device",),
                   (((_dev(s),), v) for s in states if (v := value(s)) is not None))
        # Telemetry decoded once per device per scrape (~150 B each while the scrape runs).
        reports = [(s, t) for s in states if (t := s.telemetry) is not None]
        for name, (doc, read) in _TELEMETRY_GAUGES.items():
            yield (f"shorewatch_device_{name}", doc, ("device",),
                   (((_dev(s),), v) for s, t in reports if (v := read(t)) is not None))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, doc, labels, samples in self.families():
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            for values, v in samples:
                family.add_metric(list(values), v)
            yield family

    def exposition(self) -> Iterator[bytes]:
        """The families in the Prometheus text format (0.0.4), in chunks of at most
        ``_CHUNK_DEVICES`` samples; a family's chunks are consecutive."""
        for name, doc, labels, samples in self.families():
            help_text = doc.replace("\\", "\\\\").replace("\n", "\\n")
            lines = [f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"]
            for values, v in samples:
                pairs = ",".join(f'{k}="{_escape(x)}"' for k, x in zip(labels, values,
                                                                        strict=True))
                value = floatToGoString(v)  # type: ignore[no-untyped-call]
                lines.append(f"{name}{{{pairs}}} {value}\n")
                if len(lines) >= _CHUNK_DEVICES:
                    yield "".join(lines).encode()
                    lines = []
            if lines:
                yield "".join(lines).encode()


def _dev(s: DeviceState) -> str:
    return f"{s.device_id:08x}"


def _escape(value: str) -> str:
    """A label value in the text format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_STATE_GAUGES: dict[str, tuple[str, Callable[[DeviceState], float | None]]] = {
    "last_seen_timestamp_seconds": ("Unix time of the last authenticated frame",
                                    lambda s: s.last_seen),
    "config_version": ("Configuration version reported by the device",
                       lambda s: s.config_version),
    "config_desired_version": ("Configuration version the gateway wants the device to run "
                               "(0: none managed)", lambda s: s.config.desired_version),
    "config_push_attempts": ("CONFIG_PUSH frames sent for the current desired version",
                             lambda s: s.config.attempts),
}
# Each reads a decoded TELEMETRY; None: not measured (no sample).
_TELEMETRY_GAUGES: dict[str, tuple[str, Callable[[Telemetry], float | None]]] = {
    "battery_volts": ("Battery voltage", lambda t: t.battery_mv / 1000),
    "solar_volts": ("Solar panel voltage", lambda t: t.solar_mv / 1000),
    "charge_current_amperes": (
        "Battery current, negative when discharging",
        lambda t: None if t.charge_ma == NOT_MEASURED_I16 else t.charge_ma / 1000),
    "temperature_celsius": (
        "Enclosure temperature",
        lambda t: None if t.temperature_cc == NOT_MEASURED_I16 else t.temperature_cc / 100),
    "humidity_ratio": (
        "Relative humidity (0..1)",
        lambda t: None if t.humidity_half_pct == NOT_MEASURED_HUMIDITY
        else t.humidity_half_pct / 200),
    "rssi_dbm": ("Link RSSI reported by the device",
                 lambda t: None if t.rssi_dbm == UNKNOWN_RSSI else t.rssi_dbm),
    "uptime_seconds": ("Seconds since the device booted", lambda t: t.uptime_s),
    "boot_count": ("Boot counter reported by the device", lambda t: t.boot_count),
    "free_heap_bytes": ("Free MicroPython heap", lambda t: t.free_heap_64 * 64),
    "flags": ("Telemetry flag bits (see docs/protocol.md)", lambda t: t.flags),
}
