"""A small blocking client for the admin API (the ``shorewatch devices`` commands and tests)."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from .errors import GatewayError

# Answers are a device list at most: a few hundred KiB for a large fleet.
MAX_RESPONSE: Final = 8 << 20


class AdminClientError(GatewayError):
    """The admin API could not be reached, or answered something that is not JSON."""


class ApiFailure(GatewayError):
    """The API refused the request: ``status`` and the error body's ``code``/``field``."""

    def __init__(self, status: int, body: Any) -> None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = str(err.get("code", ""))
        self.field = err.get("field")
        message = str(err.get("message", "no message"))
        where = f" ({self.field})" if self.field else ""
        super().__init__(f"HTTP {status} {self.code}{where}: {message}")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


class AdminClient:
    """One request per connection, like the server. ``socket_path`` or ``url`` (http://...)."""

    def __init__(self, *, socket_path: Path | None = None, url: str | None = None,
                 token: str | None = None, timeout: float = 10.0) -> None:
        if (socket_path is None) == (url is None):
            raise AdminClientError("give either an admin socket or an admin URL")
        self._socket = socket_path
        self._url = urlsplit(url) if url is not None else None
        if self._url is not None and (self._url.scheme != "http" or not self._url.hostname):
            raise AdminClientError(f"{url!r} is not an http://HOST:PORT URL")
        self._token = token
        self._timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer of a 2xx; ApiFailure for a 4xx/5xx with its error body."""
        status, answer = self.request(method, path, body)
        if status >= 300:
            raise ApiFailure(status, answer)
        return answer

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        conn = self._connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(MAX_RESPONSE + 1)
        except OSError as exc:
            raise AdminClientError(f"cannot reach the admin API at {self._where()}: {exc} "
                                   "(is the gateway running with the admin API on?)") from exc
        except http.client.HTTPException as exc:
            raise AdminClientError(f"bad HTTP answer from {self._where()}: {exc!r}") from exc
        finally:
            conn.close()
        if len(raw) > MAX_RESPONSE:
            raise AdminClientError(f"answer from {self._where()} is over {MAX_RESPONSE} bytes")
        try:
            return resp.status, json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AdminClientError(f"answer from {self._where()} is not JSON "
                                   f"(HTTP {resp.status})") from exc

    def _connection(self) -> http.client.HTTPConnection:
        if self._socket is not None:
            return _UnixConnection(self._socket, self._timeout)
        assert self._url is not None and self._url.hostname is not None
        return http.client.HTTPConnection(self._url.hostname, self._url.port or 80,
                                          timeout=self._timeout)

    def _where(self) -> str:
        return str(self._socket) if self._socket is not None else str(self._url.geturl()
                                                                        if self._url else "")


def read_token(path: Path) -> str:
    """The token to present: the first ``NAME TOKEN`` (or bare ``TOKEN``) line of ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AdminClientError(f"cannot read token file {path}: {exc}") from exc
    for line in text.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            return fields[0] if len(fields) == 1 else fields[1]
    raise AdminClientError(f"token file {path} holds no token")
