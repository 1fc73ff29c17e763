"""mDNS / DNS-SD: the gateway advertises ``_shorewatch._udp.local.`` so devices and tools find it.

TXT records carry the site, the gateway id, the protocol version and the URLs of the metrics
(and, when configured, admin) endpoints. ``Advertiser`` is an async context manager: on entry the
name is probed, registered and announced (``registered`` is set); on exit it is withdrawn with
goodbye packets and the mDNS sockets are closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import ifaddr
from zeroconf import Error as ZeroconfError
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from protocol.limits import VERSION

from .errors import MdnsError

log = logging.getLogger("shorewatch.mdns")

SERVICE_TYPE = "_shorewatch._udp.local."
# Probing (~0.75 s) plus three announcements (~0.5 s) normally; a busy host gets some slack.
REGISTER_TIMEOUT_S = 10.0
# Goodbye packets are best effort: shutdown does not wait longer than this for them.
UNREGISTER_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class MdnsSettings:
    """Where and how to advertise. Tests pin ``interfaces=("127.0.0.1",)``."""

    # Addresses (or IPv6 interface indexes as digits) to speak mDNS on; empty = every interface.
    interfaces: tuple[str, ...] = ()
    # Service instance name; empty = "Shorewatch <site> <gateway id>".
    instance: str = ""
    # A/AAAA records; empty = the UDP listener's address, else the interfaces' addresses.
    addresses: tuple[str, ...] = ()
    # Advertised as the ``admin`` TXT record when set (the gateway serves no admin API itself).
    admin_url: str = ""


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What one gateway announces."""

    site: str
    gateway_id: str
    port: int
    addresses: tuple[str, ...]
    metrics_url: str
    admin_url: str = ""
    instance: str = ""

    @property
    def name(self) -> str:
        instance = self.instance or f"Shorewatch {self.site} {self.gateway_id}"
        return f"{instance}.{SERVICE_TYPE}"

    @property
    def server(self) -> str:
        label = re.sub(r"[^a-z0-9-]+", "-", self.name.removesuffix(f".{SERVICE_TYPE}").lower())
        return f"{label.strip('-')[:63] or 'shorewatch'}.local."

    def txt(self) -> dict[str, str]:
        txt = {"proto": str(VERSION), "site": self.site, "gateway": self.gateway_id,
               "metrics": self.metrics_url}
        if self.admin_url:
            txt["admin"] = self.admin_url
        return txt


class Advertiser:
    """Registers an ``Advertisement`` for the lifetime of an ``async with`` block."""

    def __init__(self, settings: MdnsSettings, ad: Advertisement) -> None:
        self.settings = settings
        self.ad = ad
        self.registered = asyncio.Event()
        self.name = ad.name
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    async def wait_registered(self) -> None:
        """Return once the name is ours and announced (the point to report READY after)."""
        await self.registered.wait()

    async def __aenter__(self) -> Advertiser:
        ad = self.ad
        info = ServiceInfo(SERVICE_TYPE, ad.name, port=ad.port, properties=ad.txt(),
                           server=ad.server, parsed_addresses=list(ad.addresses))
        where = ", ".join(self.settings.interfaces) or "all interfaces"
        try:
            self._zc = AsyncZeroconf(interfaces=_interfaces(self.settings),
                                     ip_version=_ip_version(self.settings, ad.addresses))
            async with asyncio.timeout(REGISTER_TIMEOUT_S):
                announced = await self._zc.async_register_service(info, allow_name_change=True)
                await announced
        except (OSError, ZeroconfError, TimeoutError) as exc:
            await self._close()
            raise MdnsError(f"mDNS: cannot advertise {ad.name!r} on {where}: "
                            f"{exc or type(exc).__name__} (is multicast allowed on those "
                            f"interfaces? set [mdns] interfaces to addresses of this host)"
                            ) from exc
        self._info = info
        self.name = info.name  # allow_name_change may have added a suffix
        self.registered.set()
        log.info("mDNS: advertising %r on %s, port %d, addresses %s", self.name, where, ad.port,
                 ", ".join(ad.addresses) or "none")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.registered.clear()
        if self._zc is not None and self._info is not None:
            try:
                async with asyncio.timeout(UNREGISTER_TIMEOUT_S):
                    await (await self._zc.async_unregister_service(self._info))
            except (OSError, ZeroconfError, TimeoutError) as err:
                log.warning("mDNS: goodbye for %r not sent: %s", self.name, err)
        self._info = None
        await self._close()

    async def _close(self) -> None:
        if self._zc is not None:
            zc, self._zc = self._zc, None
            async with asyncio.timeout(UNREGISTER_TIMEOUT_S):
                await zc.async_close()


async def choose_addresses(settings: MdnsSettings,
                           listener_hosts: Sequence[str]) -> tuple[str, ...]:
    """The A/AAAA records: configured ones, else the specific listener addresses, else the
    addresses of the mDNS interfaces (every non-loopback one when no interfaces are set).
    """
    if settings.addresses:
        return settings.addresses
    specific = [h for h in listener_hosts if _is_ip(h) and not _unspecified(h)]
    if specific:
        return tuple(dict.fromkeys(specific))
    literal = [i for i in settings.interfaces if _is_ip(i)]
    if literal:
        return tuple(literal)
    return await asyncio.to_thread(_host_addresses)


def http_url(host: str, port: int, path: str, addresses: Sequence[str]) -> str:
    """A URL a client can use: a wildcard bind address is replaced by an advertised one."""
    if _is_ip(host) and _unspecified(host) and addresses:
        host = addresses[0]
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def _interfaces(settings: MdnsSettings) -> list[str | int] | InterfaceChoice:
    if not settings.interfaces:
        return InterfaceChoice.All
    return [int(i) if i.isdigit() else i for i in settings.interfaces]


def _ip_version(settings: MdnsSettings, addresses: Sequence[str]) -> IPVersion | None:
    if settings.interfaces:
        return None  # zeroconf derives it from the interface list
    v6 = any(":" in a for a in addresses)
    return IPVersion.All if v6 else IPVersion.V4Only


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _unspecified(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_unspecified


def _host_addresses() -> tuple[str, ...]:
    """Non-loopback IPv4 and global IPv6 addresses of this host (blocking: getifaddrs)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            addr = ipaddress.ip_address(text.split("%")[0])
            if addr.is_loopback or addr.is_link_local:
                continue
            found.append(str(addr))
    return tuple(dict.fromkeys(found))
