"""Prometheus metrics: gateway counters, and the fleet rendered at scrape time by a Collector."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from protocol import NOT_MEASURED_HUMIDITY, NOT_MEASURED_I16, UNKNOWN_RSSI, MessageType
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
        self.registry = CollectorRegistry()
        r = self.registry
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
        r.register(FleetCollector(devices, refresh))


class FleetCollector(Collector):
    """Renders per-device gauges from the in-memory device states at scrape time."""

    def __init__(self, devices: Callable[[], list[DeviceState]],
                 refresh: Callable[[], None] | None = None) -> None:
        self._devices = devices
        self._refresh = refresh

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        f = {name: GaugeMetricFamily(f"shorewatch_device_{name}", doc, labels=["device"])
             for name, doc in _GAUGES.items()}
        info = GaugeMetricFamily("shorewatch_device_info",
                                 "Device identity (value is always 1)",
                                 labels=["device", "name", "hw_kind", "firmware"])
        state = GaugeMetricFamily("shorewatch_device_state",
                                  "Device session state, one-hot: 1 for the current state",
                                  labels=["device", "state"])
        if self._refresh is not None:
            self._refresh()
        for s in self._devices():
            dev = f"{s.device_id:08x}"
            info.add_metric([dev, s.name, s.hw_kind, s.fw_version], 1)
            for st in SessionState:
                state.add_metric([dev, st.value], 1 if s.session is st else 0)
            if s.last_seen is not None:
                f["last_seen_timestamp_seconds"].add_metric([dev], s.last_seen)
            f["config_version"].add_metric([dev], s.config_version)
            f["config_desired_version"].add_metric([dev], s.config.desired_version)
            f["config_push_attempts"].add_metric([dev], s.config.attempts)
            t = s.telemetry
            if t is None:
                continue
            f["battery_volts"].add_metric([dev], t.battery_mv / 1000)
            f["solar_volts"].add_metric([dev], t.solar_mv / 1000)
            if t.charge_ma != NOT_MEASURED_I16:
                f["charge_current_amperes"].add_metric([dev], t.charge_ma / 1000)
            if t.temperature_cc != NOT_MEASURED_I16:
                f["temperature_celsius"].add_metric([dev], t.temperature_cc / 100)
            if t.humidity_half_pct != NOT_MEASURED_HUMIDITY:
                f["humidity_ratio"].add_metric([dev], t.humidity_half_pct / 200)
            if t.rssi_dbm != UNKNOWN_RSSI:
                f["rssi_dbm"].add_metric([dev], t.rssi_dbm)
            f["uptime_seconds"].add_metric([dev], t.uptime_s)
            f["boot_count"].add_metric([dev], t.boot_count)
            f["free_heap_bytes"].add_metric([dev], t.free_heap_64 * 64)
            f["flags"].add_metric([dev], t.flags)
        yield info
        yield state
        yield from f.values()


_GAUGES = {
    "battery_volts": "Battery voltage",
    "solar_volts": "Solar panel voltage",
    "charge_current_amperes": "Battery current, negative when discharging",
    "temperature_celsius": "Enclosure temperature",
    "humidity_ratio": "Relative humidity (0..1)",
    "rssi_dbm": "Link RSSI reported by the device",
    "uptime_seconds": "Seconds since the device booted",
    "boot_count": "Boot counter reported by the device",
    "free_heap_bytes": "Free MicroPython heap",
    "flags": "Telemetry flag bits (see docs/protocol.md)",
    "last_seen_timestamp_seconds": "Unix time of the last authenticated frame",
    "config_version": "Configuration version reported by the device",
    "config_desired_version": "Configuration version the gateway wants the device to run "
                              "(0: none managed)",
    "config_push_attempts": "CONFIG_PUSH frames sent for the current desired version",
}
