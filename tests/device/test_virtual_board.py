"""The sensor-node firmware on a virtual board: the real MicroPython unix port, under a 64 KB heap,
against a fake gateway cut at the layer seam (the CPython codec on a loopback UDP socket).

The firmware runs as boards run it: device/sw compiled to .mpy, main.py as source. The fake
gateway answers HELLO with WELCOME and DETECTION with ACK; tests add behaviour through hooks.
Every run is bounded by run_for_s in the board's config and by a hard timeout here.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from protocol import (
    SCHEMA_FINGERPRINT,
    DeviceKeys,
    Received,
    encode_frame,
)
from protocol.messages import (
    Ack,
    BootReason,
    Capability,
    ConfigAck,
    ConfigEntry,
    ConfigPush,
    ConfigStatus,
    Detection,
    Direction,
    HardwareKind,
    Hello,
    MessageType,
    Nack,
    NackCode,
    Telemetry,
    TelemetryFlag,
)
from shorewatch.fakegateway import DEVICE_ID, MASTER, TAG_LEN, UNIX_S, FakeGateway, Hook
from shorewatch.peers import build_firmware, micropython_binary, mpy_cross_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEVICE = ROOT / "device"
HEAP = "64k"
CAPABILITIES = Capability.PIR | Capability.POWER_MONITOR | Capability.BATTERY_ADC \
    | Capability.ENCRYPTION
ARCHES = ("xtensawin", "armv6m")  # ESP32-S3/C3 class and RP2040 class boards
SLACK_S = 20.0  # hard timeout on top of run_for_s: a hung board fails, never hangs the suite




@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """device/ as a board holds it: sw/ compiled to .mpy, main.py as source.

    Compiling from source needs more than 64 KB of heap (the compiler itself), and a board
    never does it either.
    """
    return build_firmware(tmp_path_factory.mktemp("device-build") / "fw")


# --- the fake gateway (shorewatch/fakegateway.py) ------------------------------------------

@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway()
    yield gw
    gw.close()


# --- boards and runs -------------------------------------------------------------------------

def identity(port: int, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"device_id": DEVICE_ID, "master_key": MASTER.hex(),
                           "tag_len": TAG_LEN, "hw_kind": "sensor_node",
                           "gateway": {"host": "127.0.0.1", "port": port}}
    doc.update(over)
    return doc


def config(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "report_interval_s": 0.5,
        "run_for_s": 3,
        "update_interval_s": 0.25,
        "pir": {"seed": 3, "mean_interval_s": 0.6, "duration_s": 0.5},
        "battery": {"initial_mv": 3900},
        "link": {"ack_timeout_s": 0.4, "max_retries": 3},
        "log_level": "info",
    }
    doc.update(over)
    return doc


def make_board(path: Path, port: int, cfg: dict[str, Any] | None = None,
               ident: dict[str, Any] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "identity.json").write_text(json.dumps(ident or identity(port)))
    (path / "config.json").write_text(json.dumps(cfg or config()))
    return path


@dataclass
class Run:
    rc: int
    out: str
    err: str
    events: list[dict[str, Any]] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)

    def logs(self, text: str) -> list[str]:
        return [line for line in self.out.splitlines() if text in line]


def run_board(main: Path, board: Path, gateway: FakeGateway | None, *, heap: str = HEAP,
              timeout: float | None = None) -> Run:
    """Run the board to its end (run_for_s) with the gateway answering; parse its stdout."""
    cfg = json.loads((board / "config.json").read_text()) \
        if (board / "config.json").exists() else {}
    limit = timeout or (cfg.get("run_for_s") or 0) + SLACK_S
    args = [micropython_binary()] + (["-X", f"heapsize={heap}"] if heap else [])
    out_path, err_path = board.parent / f"{board.name}.out", board.parent / f"{board.name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # stdout to a file, not a pipe: a chatty board can never block on a full pipe
        proc = subprocess.Popen([*args, str(main), str(board)], stdout=out, stderr=err)
        if gateway is None:
            try:
                proc.wait(limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                pytest.fail(f"the board did not stop within {limit:.0f} s")
        else:
            gateway.serve(proc, limit)
    run = Run(proc.returncode, out_path.read_text(), err_path.read_text())
    for line in run.out.splitlines():
        if line.startswith("EVENT "):
            run.events.append(json.loads(line[len("EVENT "):]))
        elif line.startswith("TELEMETRY "):
            run.telemetry.append(json.loads(line[len("TELEMETRY "):]))
    return run


def assert_clean(run: Run) -> None:
    """Stopped by run_for_s with exit code 0, nothing on stderr, no memory trouble."""
    assert run.rc == 0, run.out[-3000:] + run.err
    assert run.err == ""
    assert "Traceback" not in run.out
    stop = run.logs("I app: stopped:")
    assert len(stop) == 1, run.out[-3000:]
    assert stop[0].endswith(" 0 out of memory")


def event_of(d: Detection) -> dict[str, Any]:
    """A decoded DETECTION in the board's EVENT line format."""
    return {"event_id": d.event_id, "lifecycle": d.lifecycle.name.lower(),
            "kind": d.kind.name.lower(), "confidence_pct": d.confidence_pct, "count": d.count,
            "peak_cc": d.peak_cc, "ts_s": d.ts_s, "ts_ms": d.ts_ms,
            "box": [d.box_x, d.box_y, d.box_w, d.box_h]}


def telemetry_of(t: Telemetry) -> dict[str, Any]:
    return {name: getattr(t, name) for name in (
        "battery_mv", "solar_mv", "charge_ma", "temperature_cc", "humidity_half_pct",
        "rssi_dbm", "uptime_s", "boot_count", "free_heap_64", "flags")}


def after_first(kind: type[Any], action: Callable[[FakeGateway, Received], None]) -> Hook:
    """A hook running action once, on the first uplink of the given kind."""
    done: list[bool] = []

    def hook(gw: FakeGateway, r: Received) -> None:
        if not done and isinstance(r.message, kind):
            done.append(True)
            action(gw, r)

    return hook


# --- tests -----------------------------------------------------------------------------------

def test_boot_handshake_telemetry_and_detections(build: Path, gateway: FakeGateway,
                                                  tmp_path: Path) -> None:
    board = make_board(tmp_path / "board", gateway.port, config(run_for_s=4))
    run = run_board(build / "main.py", board, gateway)
    assert_clean(run)
    assert gateway.errors == []

    # HELLO first, long header, everything the spec asks of a sensor node
    first = gateway.frames[0]
    assert isinstance(first.message, Hello)
    assert first.header.long
    hello = first.message
    assert (hello.fw_major, hello.fw_minor, hello.fw_patch) == (0, 1, 0)
    assert hello.hw_kind is HardwareKind.SENSOR_NODE
    assert hello.boot_reason is BootReason.POWER_ON
    assert hello.capabilities == CAPABILITIES
    assert hello.schema == SCHEMA_FINGERPRINT
    assert hello.config_version == 0
    assert len(hello.nonce) == 8
    assert len(gateway.of(Hello)) == 1  # answered at once: no retry
    assert run.logs("I app: welcome: downlink counter 1001")

    # every uplink counter is new (the window would have refused a reuse) and rising
    counters = [r.counter for r in gateway.frames]
    assert counters == sorted(set(counters))

    # TELEMETRY: what the board printed is exactly what the gateway decoded, in order
    telemetry = [telemetry_of(r.message) for r in gateway.of(Telemetry)]
    assert len(telemetry) >= 6  # 4 s at 0.5 s, the first right after the WELCOME
    assert run.telemetry == telemetry
    for t in telemetry:
        assert t["boot_count"] == 1
        assert 3800 <= t["battery_mv"] <= 3910
        assert 0 < t["free_heap_64"] < 1024  # under a 64 KB heap
        assert not t["flags"] & TelemetryFlag.CLOCK_UNSYNCED  # set from the WELCOME
        assert t["rssi_dbm"] < 0
    assert telemetry[-1]["uptime_s"] >= 3

    # DETECTION: EVENT lines match the decoded frames exactly, one line per detection
    detections = [event_of(r.message) for r in gateway.of(Detection)]
    assert len(detections) >= 4
    assert run.events == detections  # every detection was ACKed: no resends
    by_event: dict[int, list[str]] = {}
    for e in detections:
        assert e["event_id"] >> 16 == 1  # boot_count << 16 | seq
        assert e["kind"] == "person"
        assert e["count"] == 1
        assert 55 <= e["confidence_pct"] <= 99
        assert e["box"] == [0, 0, 0, 0]
        assert UNIX_S <= e["ts_s"] <= UNIX_S + 5  # the clock was set by the WELCOME
        by_event.setdefault(e["event_id"], []).append(e["lifecycle"])
    assert [eid & 0xFFFF for eid in by_event] == list(range(1, len(by_event) + 1))
    for lifecycles in list(by_event.values())[:-1]:  # the last may be cut by run_for_s
        assert lifecycles[0] == "new"
        assert lifecycles[-1] == "end"
        assert set(lifecycles[1:-1]) <= {"update"}
    assert "update" in {e["lifecycle"] for e in detections}
    # all ACKed, but the last ACK may arrive after run_for_s stopped the loop
    assert len(run.logs(" acked")) >= len(detections) - 1


def test_second_boot_starts_above_every_counter_of_the_first(build: Path, gateway: FakeGateway,
                                                            tmp_path: Path) -> None:
    board = make_board(tmp_path / "board", gateway.port, config(run_for_s=1.5))
    first = run_board(build / "main.py", board, gateway)
    assert_clean(first)
    used = [r.counter for r in gateway.frames]
    assert (board / "counter").exists()
    assert (board / "boot_count").read_text() == "1"
    n_first = len(gateway.frames)

    second = run_board(build / "main.py", board, gateway)
    assert_clean(second)
    assert gateway.errors == []  # the gateway's window (kept across the reboot) took it all
    frames = gateway.frames[n_first:]
    hello = frames[0]
    assert isinstance(hello.message, Hello)
    assert hello.counter > max(used)
    assert hello.counter % 256 == 0  # the start of the next reserved block
    assert hello.message.nonce != gateway.frames[0].message.nonce
    assert second.telemetry
    assert all(t["boot_count"] == 2 for t in second.telemetry)
    assert all(e["event_id"] >> 16 == 2 for e in second.events)
    assert (board / "boot_count").read_text() == "2"


def test_unacked_detection_is_retransmitted_with_a_new_counter(build: Path,
                                                               gateway: FakeGateway,
                                                               tmp_path: Path) -> None:
    gateway.drop_acks = 1  # the ACK of the first DETECTION frame is "lost"
    cfg = config(run_for_s=2.5, update_interval_s=0,
                 pir={"seed": 5, "mean_interval_s": 0.3, "duration_s": 5})
    run = run_board(build / "main.py", make_board(tmp_path / "board", gateway.port, cfg),
                    gateway)
    assert_clean(run)
    sends = gateway.of(Detection)
    assert len(sends) == 2  # the first send and one resend, then the ACK stopped it
    assert sends[0].message == sends[1].message  # same content ...
    assert sends[1].counter > sends[0].counter  # ... new counter
    assert run.events == [event_of(sends[0].message)]  # printed once
    assert len(run.logs("no ACK, resend")) == 1
    assert run.logs(f"I app: event {sends[0].message.event_id} new acked")


def test_detections_that_are_never_acked_are_parked_until_the_next_telemetry(
        build: Path, gateway: FakeGateway, tmp_path: Path) -> None:
    gateway.drop_acks = 1000
    cfg = config(run_for_s=2.8, report_interval_s=1.5, update_interval_s=0,
                 pir={"seed": 5, "mean_interval_s": 0.3, "duration_s": 5},
                 link={"ack_timeout_s": 0.1, "max_retries": 2})
    run = run_board(build / "main.py", make_board(tmp_path / "board", gateway.port, cfg),
                    gateway)
    assert_clean(run)
    sends = gateway.of(Detection)
    # 1 + max_retries sends, parked; the next TELEMETRY takes it along for one more try, a
    # single send while the link is suspect (power.py: after a failed delivery only the next
    # TELEMETRY tries again)
    assert len(sends) == 4
    assert len({r.counter for r in sends}) == 4
    assert len({r.message.event_id for r in sends}) == 1
    assert len(run.logs("no ACK after 3 sends, parked")) == 1
    assert len(run.logs("no ACK after 1 sends, parked")) == 1
    order = [type(r.message) for r in gateway.frames if isinstance(r.message, Telemetry | Detection)]
    assert order.index(Detection) < order.index(Telemetry, 1)  # the first round, at once
    assert order[order.index(Detection) + 3 - 1] is Detection
    assert order[-2:] == [Telemetry, Detection]  # the second: with the next TELEMETRY
    # the TELEMETRY after the first round says the link is degraded
    assert run.telemetry[1]["flags"] & TelemetryFlag.LINK_DEGRADED
    assert not run.telemetry[0]["flags"] & TelemetryFlag.LINK_DEGRADED


def test_store_drops_the_oldest_detection_when_full(build: Path, gateway: FakeGateway,
                                                    tmp_path: Path) -> None:
    gateway.drop_acks = 1000
    cfg = config(run_for_s=5, update_interval_s=0,
                 pir={"seed": 8, "mean_interval_s": 0.05, "duration_s": 0.02},
                 link={"ack_timeout_s": 10, "max_retries": 1})
    run = run_board(build / "main.py", make_board(tmp_path / "board", gateway.port, cfg),
                    gateway)
    assert_clean(run)
    dropped = [int(line.split()[5]) for line in run.logs("store full: event")]
    assert dropped
    assert dropped == sorted(dropped)  # the oldest go first
    assert run.logs("64 detections pending")  # power.STORE_MAX, packed 16 bytes each
    # at most 8 in flight: the others wait in the store for an ACK to make room
    assert 8 <= len(run.events) <= 8 + len(dropped)
    flags = [t["flags"] for t in run.telemetry]
    assert not flags[0] & TelemetryFlag.STORE_OVERFLOW
    assert flags[-1] & TelemetryFlag.STORE_OVERFLOW  # and it stays set


def test_hello_is_retried_with_backoff_until_welcomed(build: Path, gateway: FakeGateway,
                                                     tmp_path: Path) -> None:
    gateway.ignore_hellos = 2
    run = run_board(build / "main.py", make_board(tmp_path / "board", gateway.port), gateway)
    assert_clean(run)
    hellos = gateway.of(Hello)
    assert len(hellos) == 3
    assert len({h.message.nonce for h in hellos}) == 3  # a fresh nonce per HELLO
    at = [gateway.times[gateway.frames.index(h)] for h in hellos]
    first, second = at[1] - at[0], at[2] - at[1]
    assert 0.3 < first < 0.7  # 500 ms +- 25 %
    assert 0.7 < second < 1.4  # doubled
    assert run.logs("I app: welcome:")
    assert run.telemetry  # synced from the third HELLO on


def test_board_without_gateway_keeps_trying_and_stops_cleanly(build: Path,
                                                              tmp_path: Path) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now: every send earns an ICMP port unreachable
    run = run_board(build / "main.py", make_board(tmp_path / "board", port), None)
    assert_clean(run)
    assert run.telemetry == []  # nothing is reported before a WELCOME
    assert run.events == []
    assert run.logs("detections pending")


def test_config_push_is_applied_persisted_and_acknowledged(build: Path, gateway: FakeGateway,
                                                           tmp_path: Path) -> None:
    pushes = [
        # encrypted, as a push carrying secrets would be: the board decrypts with cryptolib
        (ConfigPush(7, (ConfigEntry(1, (1).to_bytes(2, "little")),)), True),
        (ConfigPush(8, (ConfigEntry(1, b"\x00\x00"), ConfigEntry(200, b"x"))), False),
        (ConfigPush(9, (ConfigEntry(2, b"\x28"), ConfigEntry(6, b"\x0a"))), False),
    ]
    sent_at: list[float] = []

    def push_next(gw: FakeGateway, r: Received) -> None:
        # first push after the first TELEMETRY, each next one after the previous CONFIG_ACK
        if isinstance(r.message, Telemetry | ConfigAck) and len(sent_at) == len(gw.of(ConfigAck)) \
                and pushes:
            msg, encrypt = pushes.pop(0)
            gw.send(msg, encrypt=encrypt)
            sent_at.append(time.monotonic())

    gateway.hooks.append(push_next)
    board = make_board(tmp_path / "board", gateway.port,
                       config(report_interval_s=30, run_for_s=4.5))
    run = run_board(build / "main.py", board, gateway)
    assert_clean(run)
    acks = [r.message for r in gateway.of(ConfigAck)]
    assert acks == [
        ConfigAck(7, ConfigStatus.APPLIED, 0),
        ConfigAck(8, ConfigStatus.REJECTED, 1),  # 0 s is not a report interval
        ConfigAck(9, ConfigStatus.PARTIAL, 6),  # no thermal camera on a sensor node
    ]
    # at 30 s there would be one TELEMETRY in the run; after the first push one a second
    at = [gateway.times[gateway.frames.index(r)] for r in gateway.of(Telemetry)]
    assert len(at) >= 4
    gaps = [b - a for a, b in itertools.pairwise(at[1:])]
    assert gaps
    assert all(0.6 < g < 1.5 for g in gaps), gaps
    # pushed settings go to pushed.json, over the provisioned config.json (which stays)
    saved = json.loads((board / "pushed.json").read_text())
    assert saved == {"report_interval_s": 1, "detection_sensitivity": 40, "config_version": 9}
    provisioned = json.loads((board / "config.json").read_text())
    assert provisioned["report_interval_s"] == 30
    assert provisioned["pir"]["seed"] == 3
    assert not (board / "pushed.json.tmp").exists()
    # and they hold after a reboot: the HELLO names config 9, TELEMETRY comes every second
    (board / "config.json").write_text(json.dumps({**provisioned, "run_for_s": 2.5}))
    n = len(gateway.frames)
    again = run_board(build / "main.py", board, gateway)
    assert_clean(again)
    hello = gateway.frames[n].message
    assert isinstance(hello, Hello)
    assert hello.config_version == 9
    assert 2 <= len(again.telemetry) <= 4


def test_nack_resync_required_makes_the_board_hello_again(build: Path, gateway: FakeGateway,
                                                           tmp_path: Path) -> None:
    gateway.hooks.append(after_first(Telemetry, lambda gw, r: gw.send(
        Nack(nacked_counter=r.counter, code=NackCode.RESYNC_REQUIRED))))
    run = run_board(build / "main.py", make_board(tmp_path / "board", gateway.port), gateway)
    assert_clean(run)
    hellos = gateway.of(Hello)
    assert len(hellos) == 2
    assert hellos[0].message.nonce != hellos[1].message.nonce
    assert len(run.logs("I app: welcome:")) == 2
    assert gateway.frames.index(hellos[1]) < len(gateway.frames) - 1  # and it carried on
    assert isinstance(gateway.frames[-1].message, Telemetry | Detection)


def test_garbage_and_forged_downlinks_are_ignored(build: Path, gateway: FakeGateway,
                                                  tmp_path: Path) -> None:
    rng = random.Random(7)
    other = DeviceKeys.from_master(bytes(32))

    def attack(gw: FakeGateway, r: Received) -> None:
        ack = Ack(acked_counter=r.counter, acked_type=3)
        genuine = gw.send(ack)  # authentic: "nothing pending", then replayed below
        push = ConfigPush(99, (ConfigEntry(1, b"\x01\x00"),))
        resync = Nack(nacked_counter=r.counter, code=NackCode.RESYNC_REQUIRED)
        good = gw.seal(MessageType.ACK, bytes(5))
        garbage = [
            b"",  # truncated
            bytes(40),  # bad_version (zero-filled)
            rng.randbytes(60),
            bytes([0x40 | 0x20 | 0x0F]) + rng.randbytes(30),  # unknown_type
            good[:-1] + bytes([good[-1] ^ 1]),  # bad_tag: one bit of the tag
            good[:12],  # cut
            good + rng.randbytes(2000),  # longer than any frame
            gw.seal(MessageType.ACK, bytes(5), direction=Direction.UP),  # wrong_direction
            gw.seal(MessageType.ACK, bytes(5), device_id=DEVICE_ID + 1),  # another device
            gw.seal(MessageType.CONFIG_PUSH, b"\x63\x00\x01\x01\x02\x01\x00", keys=other),
            gw.seal(MessageType.NACK, bytes(5), keys=other),  # wrong key
            gw.seal(MessageType.ACK, b"\x01"),  # authentic but malformed body
            genuine,  # replayed
        ]
        forged = [encode_frame(m, keys=other, direction=Direction.DOWN, device_id=DEVICE_ID,
                               counter=gw.down_counter + 1, tag_len=TAG_LEN)
                  for m in (ack, push, resync)]
        for data in garbage + forged:
            gw.send_raw(data)
        gw.send_raw(gw.last_welcome)  # authentic, but its nonce answers no current HELLO

    gateway.hooks.append(after_first(Telemetry, attack))
    cfg = config(run_for_s=2.5, log_level="debug")
    run = run_board(build / "main.py", make_board(tmp_path / "board", gateway.port, cfg),
                    gateway)
    assert_clean(run)
    assert gateway.errors == []
    rejected = run.logs("D rx: rejected ")
    assert len(rejected) == 16
    reasons = {line.split()[3].rstrip(":") for line in rejected}
    assert reasons >= {"truncated", "bad_version", "unknown_type", "bad_tag",
                       "wrong_direction", "unknown_device", "malformed"}
    assert len(run.logs("WELCOME with a foreign nonce ignored")) == 1
    assert run.logs("16 downlinks rejected")
    # nothing forged was acted upon: no CONFIG_ACK, no second HELLO, the config untouched
    assert gateway.of(ConfigAck) == []
    assert len(gateway.of(Hello)) == 1
    assert json.loads((tmp_path / "board" / "config.json").read_text())["report_interval_s"] \
        == 0.5
    # and the board carried on reporting afterwards
    assert len(run.telemetry) >= 4


@pytest.mark.parametrize(("name", "ident", "needle"), [
    ("missing", None, "identity.json: cannot read"),
    ("not-json", "{device_id: 1", "identity.json: not valid JSON"),
    ("short-key", {"master_key": "00" * 16}, "master_key must be 64 hex characters"),
    ("not-hex", {"master_key": "zz" * 32}, "master_key is not hexadecimal"),
    ("tag-len", {"tag_len": 6}, "tag_len must be 8 (std) or 4 (lora)"),
    ("hw-kind", {"hw_kind": "toaster"}, "hw_kind must be \"sensor_node\" or \"thermal_camera\""),
    ("camera-on-node-board", {"hw_kind": "thermal_camera"},
     "board 'virtual' is not a thermal_camera board"),
    ("no-gateway", {"gateway": None}, "gateway must be an object"),
    ("device-0", {"device_id": 0}, "device_id must be an integer"),
    ("bad-port", {"gateway": {"host": "127.0.0.1", "port": 70000}}, "gateway.port must be"),
    ("board-path", {"board": "../x"}, "board must be a board module name"),
    ("no-board", {"board": "esp32_nowhere"}, "board 'esp32_nowhere'"),
])
def test_invalid_identity_exits_2_with_one_clear_line(build: Path, tmp_path: Path, name: str,
                                                      ident: Any, needle: str) -> None:
    board = tmp_path / name
    board.mkdir()
    (board / "config.json").write_text(json.dumps(config()))
    if isinstance(ident, str):
        (board / "identity.json").write_text(ident)
    elif isinstance(ident, dict):
        doc = identity(9)
        doc.update(ident)
        (board / "identity.json").write_text(json.dumps(doc))
    run = run_board(build / "main.py", board, None, timeout=20)
    assert run.rc == 2
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("shorewatch: ")
    assert needle in lines[0]
    assert "Traceback" not in run.out + run.err
    assert not (board / "counter").exists()  # nothing was sent


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("missing", None, "config.json: cannot read"),
    ("not-object", "[1, 2]", "config.json: not a JSON object"),
    ("no-interval", json.dumps({"run_for_s": 1}), "report_interval_s must be a number"),
    ("bad-pir", json.dumps(config(pir={"seed": "x"})), "pir.seed must be an integer"),
    ("bad-level", json.dumps(config(log_level="loud")), "log_level must be one of"),
])
def test_invalid_config_exits_2_with_one_clear_line(build: Path, tmp_path: Path, name: str,
                                                    text: str | None, needle: str) -> None:
    board = tmp_path / name
    board.mkdir()
    (board / "identity.json").write_text(json.dumps(identity(9)))
    if text is not None:
        (board / "config.json").write_text(text)
    run = run_board(build / "main.py", board, None, timeout=20)
    assert run.rc == 2
    assert run.err.count("\n") == 1
    assert run.err.startswith("shorewatch: ")
    assert needle in run.err


def test_corrupt_counter_file_stops_the_boot(build: Path, tmp_path: Path) -> None:
    board = make_board(tmp_path / "board", 9)
    (board / "counter").write_bytes(b"SWC1" + bytes(16))  # R and ~R disagree
    run = run_board(build / "main.py", board, None, timeout=20)
    assert run.rc == 2
    assert run.err.startswith("shorewatch: counter file")
    assert "re-key" in run.err


def test_ctrl_c_stops_the_board_cleanly(build: Path, gateway: FakeGateway,
                                        tmp_path: Path) -> None:
    board = make_board(tmp_path / "board", gateway.port, config(run_for_s=None))
    out = tmp_path / "out.txt"
    with out.open("wb") as sink:
        proc = subprocess.Popen([micropython_binary(), "-X", f"heapsize={HEAP}",
                                 str(build / "main.py"), str(board)], stdout=sink,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + SLACK_S
        while not gateway.of(Telemetry):  # up and synced
            assert time.monotonic() < deadline, "no TELEMETRY"
            try:
                data, gateway.addr = gateway.sock.recvfrom(4096)
            except TimeoutError:
                continue
            gateway.handle(data)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            pytest.fail("the board ignored Ctrl-C")
    assert proc.returncode == 0
    assert err == b""
    text = out.read_text()
    assert "I app: interrupted" in text
    assert "I app: stopped:" in text


def test_board_boots_from_the_source_tree(gateway: FakeGateway, tmp_path: Path) -> None:
    """The by-hand command: device/main.py straight from the repository (compiling needs more
    than 64 KB, so no heap limit here), started from another working directory."""
    board = make_board(tmp_path / "board", gateway.port, config(run_for_s=1.5))
    run = run_board(DEVICE / "main.py", board, gateway, heap="")
    assert_clean(run)
    assert isinstance(gateway.frames[0].message, Hello)
    assert run.telemetry


@pytest.mark.parametrize("arch", ARCHES)
def test_main_compiles_for_the_boards(arch: str, tmp_path: Path) -> None:
    """device/sw/** is compiled for these targets by test_device_codec.py; main.py is ours."""
    out = tmp_path / "main.mpy"
    done = subprocess.run([mpy_cross_binary(), f"-march={arch}", "-o", str(out),
                           str(DEVICE / "main.py")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:2] == b"M\x06"
