"""Gateway error tree: every failure a person can act on names the fix."""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error raised by ``gateway``."""


class RegistryError(GatewayError):
    """The device registry cannot do what was asked."""


class DeviceExists(RegistryError):
    def __init__(self, device_id: int) -> None:
        super().__init__(f"device {device_id:08x} is already registered (remove it first)")
        self.device_id = device_id


class DeviceNotFound(RegistryError):
    def __init__(self, device_id: int) -> None:
        super().__init__(f"device {device_id:08x} is not registered")
        self.device_id = device_id


class ConfigError(GatewayError):
    """A configuration value is missing or invalid."""

    def __init__(self, key: str, problem: str, hint: str = "") -> None:
        text = f"config {key}: {problem}"
        super().__init__(f"{text} ({hint})" if hint else text)
        self.key = key
        self.problem = problem
        self.hint = hint


class EndpointError(ConfigError):
    """A HOST:PORT endpoint could not be parsed."""


class LinkError(GatewayError):
    """A device link (UDP listener, serial port) cannot be opened or was lost."""

    def __init__(self, link: str, problem: str, hint: str = "") -> None:
        text = f"{link} {problem}"
        super().__init__(f"{text} ({hint})" if hint else text)
        self.link = link
        self.problem = problem
        self.hint = hint


class MdnsError(GatewayError):
    """The gateway could not be advertised over mDNS."""
