"""WiFi station bring-up with bounded, jittered exponential backoff (ESP32 and Pico W).

A board with WiFi builds one `Wifi` from config.json (`from_config`) and calls `up()` before the
link is opened, and `off()` when it goes to sleep: the radio draws ~80-100 mA while associated
(REFERENCE.md), far more than the rest of the node. `up()` never blocks for longer than
`attempts` x (timeout + backoff), so a missing access point costs a bounded amount of energy
per wake-up; the next wake-up tries again.

The passphrase is never logged, printed or returned: only the SSID and the reason appear.
"""
from micropython import const

from .. import log

_TAG = "wifi"

# Reasons up() returns (also logged); CONNECTED is the only success.
CONNECTED = "connected"
WRONG_PASSWORD = "wrong_password"
NO_AP = "no_ap_found"
TIMEOUT = "timeout"
FAILED = "connect_failed"

_POLL_MS = const(100)  # status poll while associating; association takes 1-5 s
_TIMEOUT_MS = const(15000)  # one association attempt: DHCP on a busy AP can take ~10 s
_BACKOFF_MS = const(1000)  # first pause between attempts
_BACKOFF_MAX_MS = const(30000)  # cap: an AP that reboots is back within ~30 s
_ATTEMPTS = const(4)  # per up() call: 4 x 15 s + 1 + 2 + 4 s worst case, then the node sleeps
_SSID_MAX = const(32)  # 802.11 SSID length limit (bytes)
_PSK_MIN = const(8)  # WPA2 passphrase: 8..63 characters (spec key 8, wifi_psk)
_PSK_MAX = const(63)

# network.STAT_* names -> reason. Names, not values: the ESP32 port numbers them 200-212 (from
# ESP-IDF), the rp2 port -3..3 (from the CYW43 driver), and each port has names the other lacks.
# A 4-way handshake timeout on ESP32 is what a wrong passphrase looks like on most APs.
_FAILURES = (
    ("STAT_WRONG_PASSWORD", WRONG_PASSWORD),
    ("STAT_HANDSHAKE_TIMEOUT", WRONG_PASSWORD),
    ("STAT_NO_AP_FOUND", NO_AP),
    ("STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD", NO_AP),
    ("STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD", NO_AP),
    ("STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY", NO_AP),
    ("STAT_BEACON_TIMEOUT", NO_AP),
    ("STAT_CONNECT_FAIL", FAILED),
    ("STAT_ASSOC_FAIL", FAILED),
)


class WifiConfigError(OSError):
    """config.json's wifi_ssid / wifi_psk are unusable; the message never holds the secret.
    An OSError, so that a board's make() raising it stops the boot as bad provisioning (one
    line on stderr, exit code 2) like an unresolvable gateway."""


def from_config(config, **kw):
    """A Wifi for config.json's `wifi_ssid` / `wifi_psk` (the keys CONFIG_PUSH 7 and 8 name),
    or None when there is no wifi_ssid (a board on a serial link). kw: see Wifi."""
    ssid = config.get("wifi_ssid")
    if ssid is None:
        return None
    return Wifi(ssid, config.get("wifi_psk", ""), **kw)


def station(config, board, **kw):
    """The station of a board whose link is UDP over WiFi, brought up: its rssi() is the
    board's radio role. WifiConfigError without a usable wifi_ssid (bad provisioning: the boot
    stops with exit code 2). A bring-up that fails is logged once by up() and the board goes
    on: sends fail and are counted, events wait in the store, and the next boot (every wake
    from deep sleep is one) tries again. kw: see Wifi."""
    w = from_config(config, **kw)
    if w is None:
        raise WifiConfigError("config.json: wifi_ssid is required on board %s (its link is UDP "
                              "over WiFi)" % board)
    w.up()
    return w


class Wifi:
    """Station interface: up() associates with backoff, off() powers the radio down.

    net, sleep_ms, ticks_ms, ticks_diff and rand16 default to the port's `network`, `time` and
    `os.urandom`; tests pass fakes (the seam: nothing else touches the hardware).
    """

    def __init__(self, ssid, psk, net=None, sleep_ms=None, ticks_ms=None, ticks_diff=None,
                 rand16=None, attempts=_ATTEMPTS, timeout_ms=_TIMEOUT_MS,
                 backoff_ms=_BACKOFF_MS, backoff_max_ms=_BACKOFF_MAX_MS):
        if not isinstance(ssid, str) or not 0 < len(ssid.encode()) <= _SSID_MAX:
            raise WifiConfigError("config.json: wifi_ssid must be 1..%d bytes" % _SSID_MAX)
        # an empty passphrase is an open network; anything else is WPA2 (checked, not shown)
        if not isinstance(psk, str) or (psk and not _PSK_MIN <= len(psk) <= _PSK_MAX):
            raise WifiConfigError("config.json: wifi_psk must be empty (open network) or "
                                  "%d..%d characters" % (_PSK_MIN, _PSK_MAX))
        if net is None:
            # only a WiFi board builds this without net; the unix stub set has no network
            import network  # type: ignore[import-not-found, unused-ignore]

            net = network
        if sleep_ms is None or ticks_ms is None or ticks_diff is None:
            import time

            sleep_ms, ticks_ms, ticks_diff = time.sleep_ms, time.ticks_ms, time.ticks_diff
        self.ssid = ssid
        self._psk = psk
        self._net = net
        self._sleep_ms = sleep_ms
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self._rand16 = rand16 or _urandom16
        self._attempts = attempts
        self._timeout_ms = timeout_ms
        self._backoff_ms = backoff_ms
        self._backoff_max_ms = backoff_max_ms
        fail = {}
        for name, reason in _FAILURES:
            code = getattr(net, name, None)
            if code is not None:
                fail[code] = reason
        self._fail = fail
        self._wlan = None
        self.reason = None  # last up() result
        self.tries = 0  # association attempts in the last up()

    def __repr__(self):
        return "<Wifi %s>" % self.ssid  # never the passphrase

    def up(self):
        """Associate and get an address: CONNECTED, or the reason of the last failure after at
        most `attempts` tries. A wrong passphrase stops at once: retrying cannot fix it."""
        w = self._station()
        if w.isconnected():
            self.reason = CONNECTED
            self.tries = 0
            return CONNECTED
        delay = self._backoff_ms
        reason = TIMEOUT
        self.tries = 0
        for n in range(self._attempts):
            if n:
                pause = _jitter(delay, self._rand16())
                log.info(_TAG, "%s: %s, next try in %d ms", self.ssid, reason, pause)
                self._sleep_ms(pause)
                delay = min(delay * 2, self._backoff_max_ms)
            self.tries += 1
            reason = self._attempt(w)
            if reason == CONNECTED or reason == WRONG_PASSWORD:
                break
        self.reason = reason
        if reason == CONNECTED:
            log.info(_TAG, "%s: connected (try %d)", self.ssid, self.tries)
        else:
            log.warning(_TAG, "%s: giving up after %d tries: %s", self.ssid, self.tries, reason)
            self._stop(w)
        return reason

    def off(self):
        """Disconnect and power the radio down (between wake-ups, before deep sleep)."""
        if self._wlan is not None:
            self._stop(self._wlan)
            self._wlan.active(False)
            log.debug(_TAG, "radio off")

    def rssi(self):
        """Signal of the associated AP in dBm (radio role), -128 when not connected."""
        w = self._wlan
        if w is None or not w.isconnected():
            return -128
        try:
            return w.status("rssi")
        except (OSError, ValueError):
            return -128  # the driver refused the query (rare, mid-roam): "not measured"

    # --- private ----------------------------------------------------------------------------

    def _station(self):
        w = self._wlan
        if w is None:
            w = self._wlan = self._net.WLAN(self._net.STA_IF)
        if not w.active():
            w.active(True)
        return w

    def _attempt(self, w):
        """One association, polled until success, a failure status or the timeout."""
        try:
            w.connect(self.ssid, self._psk)
        except OSError as e:
            # ESP32: "Wifi Internal Error" when the driver is still busy with the last attempt.
            # Not e itself in the log: some ports echo their arguments in the message.
            log.warning(_TAG, "%s: connect refused (errno %s)", self.ssid,
                        e.args[0] if e.args and isinstance(e.args[0], int) else "?")
            self._stop(w)
            return FAILED
        start = self._ticks_ms()
        while True:
            if w.isconnected():
                return CONNECTED
            reason = self._fail.get(w.status())
            if reason is not None:
                self._stop(w)
                return reason
            if self._ticks_diff(self._ticks_ms(), start) >= self._timeout_ms:
                self._stop(w)
                return TIMEOUT
            self._sleep_ms(_POLL_MS)

    def _stop(self, w):
        # Stop the driver's own reconnect attempts, so that the next try starts clean and an
        # idle radio does not keep scanning. Both ports raise OSError if nothing is connected.
        try:
            w.disconnect()
        except OSError:
            pass  # already disconnected: that is the state we want


def _jitter(ms, r16):
    """ms +- 25 % (r16: 0..65535), so a fleet that lost its AP together spreads out."""
    return ms * 3 // 4 + ms * r16 // 131072


def _urandom16():
    import os

    b = os.urandom(2)
    return b[0] << 8 | b[1]
