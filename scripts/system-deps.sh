#!/bin/sh
# System packages the integration tests talk to: a real Mosquitto broker, promtool, and
# systemd-analyze (from the systemd package; works without systemd running) for the unit file.
# Installs them with apt when missing and we are root; otherwise says what to install.
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    exit 0
fi
echo "missing system packages:$missing" >&2
echo "install them with: sudo apt-get install --no-install-recommends$missing" >&2
exit 1
