"""The gateway's TOML config: a valid file loads into the settings, every bad one is refused with
the full key path and a hint; the shipped example loads; ``check-config`` exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config, parse_endpoint
from gateway.errors import ConfigError
from gateway.mqtt import TlsSettings
from gateway.sessions import SessionPolicy
from gateway.transports import SerialSettings, UdpSettings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "gateway.example.toml"
PASSWORD = "pa55-w0rd-never-logged"
TOKEN = "0123456789abcdef0123456789abcdef"

MINIMAL = """\
[gateway]
id = "gw1"
site = "test"
data_dir = "data"

[[udp]]
listen = "127.0.0.1:0"

[[mqtt]]
name = "local"
host = "127.0.0.1"
"""


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """Secret files next to the config: good ones 0600, and the kinds of bad ones."""
    files = {"password": PASSWORD + "\n", "world": "x\n", "empty": "", "two-lines": "a\nb\n",
             "tokens": f"ops {TOKEN}\n", "short-tokens": "ops short\n", "ca.crt": "PEM\n",
             "client.key": "PEM\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o600)
    (tmp_path / "world").chmod(0o644)
    return tmp_path


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_config(path, env or {})


def _edit(*edits: str | tuple[str, str]) -> str:
    """MINIMAL with (old, new) replacements applied and plain strings appended."""
    text = MINIMAL
    for e in edits:
        if isinstance(e, tuple):
            assert e[0] in text, e[0]
            text = text.replace(e[0], e[1])
        else:
            text += "\n" + e
    return text


SECOND_MQTT = '[[mqtt]]\nname = "cloud"\nhost = "mqtt.example.org"\n'
PW = 'username = "gw"\npassword_file = "{}"\n'

# (id, config text, key path in the error, fragment of the problem)
BAD = [
    ("unknown-section", _edit('[gatway]\nid = "x"'), "gatway", "did you mean 'gateway'"),
    ("unknown-key", _edit(('site = "test"', 'site = "test"\nsiet = "x"')), "gateway.siet",
     "unknown key"),
    ("unknown-key-second-destination", _edit(SECOND_MQTT + 'hots = "x"'), "mqtt[1].hots",
     "did you mean 'host'"),
    ("missing-gateway", _edit(('[gateway]\nid = "gw1"\nsite = "test"\ndata_dir = "data"\n',
                               "")), "gateway", "missing"),
    ("missing-id", _edit(('id = "gw1"\n', "")), "gateway.id", "missing"),
    ("id-wrong-type", _edit(('id = "gw1"', "id = 5")), "gateway.id", "expected a string"),
    ("id-with-slash", _edit(('id = "gw1"', 'id = "gw/1"')), "gateway.id", "not allowed"),
    ("prefix-wildcard", _edit(('site = "test"', 'site = "test"\nprefix = "a/#"')),
     "gateway.prefix", "not allowed"),
    ("gateway-not-a-table", _edit(('[gateway]\nid = "gw1"\nsite = "test"\ndata_dir = "data"\n',
                                   'gateway = "gw1"\n')), "gateway", "expected a table"),
    ("port-out-of-range", _edit(SECOND_MQTT + "port = 70000"), "mqtt[1].port", "70000"),
    ("port-zero", _edit(SECOND_MQTT + "port = 0"), "mqtt[1].port", "out of range"),
    ("port-as-string", _edit(('host = "127.0.0.1"', 'host = "127.0.0.1"\nport = "1883"')),
     "mqtt[0].port", "expected an integer"),
    ("port-as-bool", _edit(('host = "127.0.0.1"', 'host = "127.0.0.1"\nport = true')),
     "mqtt[0].port", "expected an integer"),
    ("duplicate-destination", _edit(SECOND_MQTT.replace("cloud", "local")), "mqtt[1].name",
     "already used by mqtt[0]"),
    ("destination-name-missing", _edit(('name = "local"\n', "")), "mqtt[0].name", "missing"),
    ("host-with-port", _edit(('host = "127.0.0.1"', 'host = "broker:1883"')), "mqtt[0].host",
     "neither"),
    ("inline-password", _edit(('host = "127.0.0.1"',
                               f'host = "127.0.0.1"\nusername = "u"\npassword = "{PASSWORD}"')),
     "mqtt[0].password", "secrets are not accepted"),
    ("password-file-missing", _edit(SECOND_MQTT + PW.format("nope")), "mqtt[1].password_file",
     "does not exist"),
    ("password-file-world-readable", _edit(SECOND_MQTT + PW.format("world")),
     "mqtt[1].password_file", "accessible to other users"),
    ("password-file-empty", _edit(SECOND_MQTT + PW.format("empty")), "mqtt[1].password_file",
     "is empty"),
    ("password-file-two-lines", _edit(SECOND_MQTT + PW.format("two-lines")),
     "mqtt[1].password_file", "more than one line"),
    ("password-file-is-a-directory", _edit(SECOND_MQTT + PW.format(".")),
     "mqtt[1].password_file", "not a regular file"),
    ("password-without-username", _edit(SECOND_MQTT + 'password_file = "password"'),
     "mqtt[1].username", "required with password_file"),
    ("tls-key-without-cert", _edit(SECOND_MQTT + 'tls = { key_file = "client.key" }'),
     "mqtt[1].tls.cert_file", "required with key_file"),
    ("tls-unknown-key", _edit(SECOND_MQTT + 'tls = { ca = "ca.crt" }'), "mqtt[1].tls.ca",
     "known keys here: ca_file, cert_file, key_file"),
    ("tls-ca-missing", _edit(SECOND_MQTT + 'tls = { ca_file = "missing.crt" }'),
     "mqtt[1].tls.ca_file", "does not exist"),
    ("tls-key-world-readable", _edit(SECOND_MQTT + 'tls = { cert_file = "ca.crt", '
                                                   'key_file = "world" }'),
     "mqtt[1].tls.key_file", "accessible to other users"),
    ("tls-not-a-table", _edit(SECOND_MQTT + "tls = true"), "mqtt[1].tls", "expected a table"),
    ("topic-hash-not-last", _edit(SECOND_MQTT + 'topics = ["a/#/b"]'), "mqtt[1].topics[0]",
     "not an MQTT filter"),
    ("topic-partial-plus", _edit(SECOND_MQTT + 'topics = ["device/+x"]'), "mqtt[1].topics[0]",
     "not an MQTT filter"),
    ("topic-not-a-string", _edit(SECOND_MQTT + 'topics = ["#", 3]'), "mqtt[1].topics[1]",
     "expected a string"),
    ("topics-empty", _edit(SECOND_MQTT + "topics = []"), "mqtt[1].topics", "is empty"),
    ("keepalive-too-short", _edit(SECOND_MQTT + "keepalive = 1"), "mqtt[1].keepalive",
     "out of range"),
    ("no-destination", MINIMAL.split("[[mqtt]]", maxsplit=1)[0], "mqtt", "no MQTT destination"),
    ("mqtt-as-table", MINIMAL.replace("[[mqtt]]", "[mqtt]"), "mqtt",
     "expected an array of tables"),
    ("ipv6-without-brackets", _edit(('listen = "127.0.0.1:0"', 'listen = "::1:4700"')),
     "udp[0].listen", "needs brackets"),
    ("listen-without-port", _edit('[[udp]]\nlisten = "0.0.0.0"'), "udp[1].listen",
     "not HOST:PORT"),
    ("listen-bad-ipv6", _edit('[[udp]]\nlisten = "[::g]:4700"'), "udp[1].listen",
     "not an IPv6 address"),
    ("listen-port-too-big", _edit('[[udp]]\nlisten = "0.0.0.0:65536"'), "udp[1].listen",
     "out of range"),
    ("listen-duplicate", _edit('[[udp]]\nlisten = "[::1]:4700"\n[[udp]]\nlisten = "[::1]:4700"'),
     "udp[2].listen", "already listed in udp[1].listen"),
    ("no-device-link", _edit(('[[udp]]\nlisten = "127.0.0.1:0"\n', "")), "udp",
     "no device link"),
    ("serial-relative-path", _edit('[[serial]]\nport = "ttyUSB0"'), "serial[0].port",
     "neither an absolute device path"),
    ("serial-baudrate-zero", _edit('[[serial]]\nport = "/dev/ttyUSB0"\nbaudrate = 0'),
     "serial[0].baudrate", "out of range"),
    ("serial-duplicate", _edit('[[serial]]\nport = "loop://"\n[[serial]]\nport = "loop://"'),
     "serial[1].port", "already listed"),
    ("sessions-order", _edit("[sessions]\nstale_after_s = 600\noffline_after_s = 600"),
     "sessions.offline_after_s", "not greater than stale_after_s"),
    ("sessions-negative", _edit("[sessions]\nstale_after_s = -1"), "sessions.stale_after_s",
     "out of range"),
    ("sessions-nan", _edit("[sessions]\nstale_after_s = nan"), "sessions.stale_after_s",
     "out of range"),
    ("outbox-zero-rows", _edit("[outbox]\nmax_rows = 0"), "outbox.max_rows", "out of range"),
    ("outbox-age-as-string", _edit('[outbox]\nmax_age_s = "7d"'), "outbox.max_age_s",
     "expected a number"),
    ("metrics-listen", _edit('[metrics]\nlisten = "localhost"'), "metrics.listen",
     "not HOST:PORT"),
    ("mdns-enabled-string", _edit('[mdns]\nenabled = "yes"'), "mdns.enabled",
     "expected a boolean"),
    ("mdns-interface", _edit('[mdns]\nenabled = true\ninterfaces = ["eth0"]'),
     "mdns.interfaces[0]", "neither an IP address"),
    ("admin-token-without-socket", _edit('[admin]\ntoken_file = "tokens"'), "admin.socket",
     "required when admin.token_file"),
    ("admin-inline-token", _edit(f'[admin]\nsocket = "a.sock"\ntoken = "{TOKEN}"'),
     "admin.token", "secrets are not accepted"),
    ("admin-token-file-missing", _edit('[admin]\nsocket = "a.sock"\ntoken_file = "nope"'),
     "admin.token_file", "does not exist"),
    ("admin-token-too-short", _edit('[admin]\nsocket = "a.sock"\ntoken_file = "short-tokens"'),
     "admin.token_file", "16+ characters"),
    ("admin-socket-path-too-long", _edit(f'[admin]\nsocket = "/{"s" * 120}"'), "admin.socket",
     "longer than 107 bytes"),
    ("state-directory-unset", _edit(('data_dir = "data"\n', 'data_dir = "${STATE_DIRECTORY}"\n')),
     "gateway.data_dir", "is not set"),
    ("state-directory-default-unset", _edit(('data_dir = "data"\n', "")), "gateway.data_dir",
     "is not set"),
    ("other-variable", _edit(('data_dir = "data"', 'data_dir = "${HOME}/gw"')),
     "gateway.data_dir", "cannot be expanded"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_bad_config_names_the_key_and_a_fix(secrets_dir: Path, text: str, key: str,
                                            fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(secrets_dir, text)
    assert info.value.key == key, str(info.value)
    assert fragment in str(info.value)
    assert info.value.hint, f"no actionable hint: {info.value}"
    assert str(info.value).startswith(f"config {key}: ")
    assert PASSWORD not in str(info.value) and TOKEN not in str(info.value)


def test_all_bad_cases_ran() -> None:
    assert len(BAD) == len({c[0] for c in BAD}) >= 60


def test_invalid_toml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid TOML.*line 2") as info:
        _load(tmp_path, "[gateway]\nid = \n")
    assert info.value.key == str(tmp_path / "gateway.toml")
    with pytest.raises(ConfigError, match="cannot read the config file") as info:
        load_config(tmp_path / "absent.toml", {})
    assert info.value.hint


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    s = _load(tmp_path, MINIMAL)
    assert s.gateway_id == "gw1"
    assert s.data_dir == tmp_path / "data"  # relative to the config file
    assert s.udp == (UdpSettings("127.0.0.1", 0),)
    assert (s.udp_host, s.udp_port) == ("127.0.0.1", 0)
    assert (s.metrics_host, s.metrics_port) == ("127.0.0.1", 9108)
    assert s.serial == ()
    assert s.mdns is None
    assert s.admin.socket is None and s.admin.token_file is None
    assert s.sessions == SessionPolicy()
    assert (s.outbox.max_rows, s.outbox.max_age_s) == (100_000, 7 * 86400.0)
    (m,) = s.mqtt
    assert (m.name, m.host, m.port, m.prefix, m.site, m.gateway_id) == (
        "local", "127.0.0.1", 1883, "shorewatch", "test", "gw1")
    assert (m.username, m.password, m.tls, m.topics, m.keepalive) == (None, None, None, ("#",), 30)


def test_secrets_come_from_files_and_never_show_in_repr(secrets_dir: Path) -> None:
    s = _load(secrets_dir, _edit(SECOND_MQTT + PW.format("password") + "tls = {}",
                                 '[admin]\nsocket = "admin.sock"\ntoken_file = "tokens"'))
    cloud = s.mqtt[1]
    assert (cloud.username, cloud.password) == ("gw", PASSWORD)
    assert cloud.tls == TlsSettings() and cloud.port == 8883  # TLS changes the default port
    assert s.admin.socket == secrets_dir / "admin.sock"
    assert s.admin.token_file == secrets_dir / "tokens"
    assert PASSWORD not in repr(s) and TOKEN not in repr(s)


def test_the_example_config_loads(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    for name, text in (("admin-tokens", f"ops {TOKEN}\n"), ("mqtt-cloud-password", PASSWORD)):
        (creds / name).write_text(text)
        (creds / name).chmod(0o600)
    env = {"STATE_DIRECTORY": str(tmp_path / "state"), "RUNTIME_DIRECTORY": str(tmp_path / "run"),
           "CREDENTIALS_DIRECTORY": str(creds)}
    s = load_config(EXAMPLE, env)
    assert s.gateway_id == "gw-calais-1"
    assert s.data_dir == tmp_path / "state"
    assert s.udp == (UdpSettings("0.0.0.0", 4700), UdpSettings("::", 4700))
    assert s.serial == (SerialSettings("/dev/ttyUSB0", 115200),)
    assert s.mdns is not None and s.mdns.interfaces == ("192.168.4.1",)
    assert s.admin.socket == tmp_path / "run" / "admin.sock"
    assert s.sessions == SessionPolicy(900, 3600)
    assert [m.name for m in s.mqtt] == ["local", "cloud"]
    assert s.mqtt[1].password == PASSWORD and s.mqtt[1].tls is not None
    assert s.mqtt[1].topics == ("device/+/event/#",)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:4700", ("127.0.0.1", 4700)),
    ("[::1]:4700", ("::1", 4700)),
    ("[::]:0", ("::", 0)),
    ("gateway.local:1883", ("gateway.local", 1883)),
])
def test_endpoints(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text, "k") == expected


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shorewatch", "gateway", *args],
                          capture_output=True, text=True, timeout=60, check=False, env=env)


def test_check_config_exit_codes(secrets_dir: Path) -> None:
    good = secrets_dir / "good.toml"
    good.write_text(_edit(SECOND_MQTT + PW.format("password")))
    ok = _cli("check-config", "--config", str(good))
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: ok" in ok.stdout
    assert "mqtt cloud: mqtt.example.org:1883 plain, user gw with password" in ok.stdout
    assert PASSWORD not in ok.stdout + ok.stderr

    bad = secrets_dir / "bad.toml"
    bad.write_text(_edit(SECOND_MQTT + "port = 70000"))
    refused = _cli("check-config", "--config", str(bad))
    assert refused.returncode == 2
    assert "config mqtt[1].port: 70000 is out of range 1..65535" in refused.stderr
    assert refused.stdout == ""


def test_run_refuses_config_mixed_with_flags(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(MINIMAL)
    mixed = _cli("run", "--config", str(config), "--udp", "127.0.0.1:0")
    assert mixed.returncode == 2
    assert "config --udp: cannot be combined with --config" in mixed.stderr
    neither = _cli("run")
    assert neither.returncode == 2
    assert "--data-dir: is required without --config" in neither.stderr
