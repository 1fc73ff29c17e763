"""A destination with TLS and credentials, against a real Mosquitto with a TLS listener and a
password file: detections arrive; a destination with the wrong CA never connects, is counted,
and does not hold up the good one."""

from __future__ import annotations

import asyncio
import datetime
import getpass
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.mqtt import MqttSettings, TlsSettings
from gateway.registry import Registry
from gateway.service import Gateway, GatewaySettings
from protocol import (
    SCHEMA_FINGERPRINT,
    BootReason,
    Detection,
    DetectionKind,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    Lifecycle,
    encode_frame,
)
from shorewatch.peers import free_port, wait_tcp

pytestmark = pytest.mark.integration
DEV = 0x5A17F001


def _ca(tmp: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def _server_cert(tmp: Path, ca: x509.Certificate,
                 ca_key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_broker(tmp_path: Path):
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd = shutil.which("mosquitto_passwd")
    if not Path(mosquitto).exists() or passwd is None:
        pytest.fail("mosquitto and mosquitto_passwd are needed: apt-get install mosquitto")
    ca_path, ca, ca_key = _ca(tmp_path, "agency-ca")
    cert, key = _server_cert(tmp_path, ca, ca_key)
    password = "s3cret-" + tmp_path.name  # generated per test, never a fixed secret
    pw_file = tmp_path / "passwd"
    subprocess.run([passwd, "-b", "-c", str(pw_file), "gw", password], check=True, timeout=30,
                   capture_output=True)
    pw_file.chmod(0o600)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    # Started as root, Mosquitto drops to its own user unless told to stay: the key and password
    # files here are readable by their owner only.
    conf.write_text(f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\ncafile {ca_path}\n"
                    f"certfile {cert}\nkeyfile {key}\nallow_anonymous false\n"
                    f"password_file {pw_file}\n")
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "mosquitto.log").open("wb"))
    try:
        wait_tcp("127.0.0.1", port, 10)
        yield port, ca_path, password
    finally:
        proc.terminate()
        proc.wait(10)


async def test_tls_destination_with_credentials(tmp_path: Path, tls_broker) -> None:
    port, ca_path, password = tls_broker
    wrong_ca, _, _ = _ca(tmp_path, "somebody-else")
    key = bytes(range(32))
    registry = Registry(tmp_path / "gw" / "registry.sqlite3")
    registry.add(DEV, key)
    registry.close()
    good = MqttSettings("localhost", port, prefix="tls", site="s", name="agency",
                        username="gw", password=password, tls=TlsSettings(ca_file=str(ca_path)))
    bad = MqttSettings("localhost", port, prefix="tls", site="s", name="impostor",
                       username="gw", password=password, tls=TlsSettings(ca_file=str(wrong_ca)))
    gateway = Gateway(GatewaySettings(data_dir=tmp_path / "gw", mqtt=(good, bad), udp_port=0,
                                      metrics_port=0))
    up = asyncio.Event()
    task = asyncio.create_task(gateway.run(lambda _gw: up.set()))
    try:
        await asyncio.wait_for(up.wait(), 20)
        context = ssl.create_default_context(cafile=str(ca_path))
        async with aiomqtt.Client("localhost", port, username="gw", password=password,
                                  tls_context=context) as sub:
            await sub.subscribe("tls/s/device/+/event/detection", qos=1)
            keys = DeviceKeys.from_master(key)
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=("127.0.0.1", gateway.udp_port))
            hello = Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0,
                          SCHEMA_FINGERPRINT, b"tls-test")
            det = Detection(1, Lifecycle.NEW, DetectionKind.BOAT, 80, 1, 2, 3, 4, 2500, 1,
                            1_795_680_000, 0)
            for counter, msg in enumerate((hello, det)):
                transport.sendto(encode_frame(msg, keys=keys, direction=Direction.UP,
                                              device_id=DEV, counter=counter))
            async with asyncio.timeout(20):
                message = await anext(aiomqtt_messages(sub))
            transport.close()
        payload = json.loads(bytes(message.payload))
        assert payload["kind"] == "boat" and payload["device"] == f"{DEV:08x}"
        metrics = gateway.metrics.registry
        assert metrics.get_sample_value("shorewatch_mqtt_connected",
                                        {"destination": "agency"}) == 1
        assert metrics.get_sample_value("shorewatch_mqtt_connected",
                                        {"destination": "impostor"}) == 0
        assert (metrics.get_sample_value("shorewatch_mqtt_reconnects_total",
                                         {"destination": "impostor"}) or 0) >= 1
    finally:
        gateway.stop()
        await asyncio.wait_for(task, 30)


async def aiomqtt_messages(client: aiomqtt.Client):
    async for message in client.messages:
        yield message
