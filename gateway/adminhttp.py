"""The admin API's HTTP/1.1 layer: bounded request parsing, JSON responses, and authentication
(bearer tokens from a file, compared in constant time, and the unix socket peer's uid).

One request per connection (``Connection: close``): the API is for an operator's tool, not a
browser, so keep-alive buys nothing and every request reads with its own caps and timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

from .errors import ConfigError

# Request line plus headers of a CLI request are a few hundred bytes; 8 KiB is generous.
MAX_HEAD: Final = 8192
# The largest legitimate body is a configuration of eight keys (< 1 KiB); 16 KiB leaves room.
MAX_BODY: Final = 16384
# At most this many header lines are read: bounds the header dict.
MAX_HEADERS: Final = 64
# A client that stalls mid-request loses its connection after this long.
READ_TIMEOUT_S: Final = 5.0

_REASONS: Final = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized",
                   403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                   409: "Conflict", 411: "Length Required", 413: "Content Too Large",
                   415: "Unsupported Media Type", 500: "Internal Server Error",
                   501: "Not Implemented", 503: "Service Unavailable"}
_TOKEN_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class ApiError(Exception):
    """A request the API refuses: becomes ``{"error": {code, message, field}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        return {"error": err}


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    peer_uid: int | None  # unix socket only

    def json(self) -> Any:
        """The body as JSON (an empty body is an error for the endpoints that take one)."""
        if not self.body:
            raise ApiError(400, "body_required", "this endpoint takes a JSON body")
        ctype = self.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype != "application/json":
            raise ApiError(415, "unsupported_media_type",
                           f"content type {ctype[:40]!r} is not application/json")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "invalid_json", f"body is not JSON: {exc}") from exc
        except RecursionError as exc:  # 16 KiB of "[" nests deeper than the parser goes
            raise ApiError(400, "invalid_json", "body nests too deeply") from exc


async def read_request(reader: asyncio.StreamReader, peer_uid: int | None) -> Request:
    """One request with every length capped; raises ApiError for what a client got wrong."""
    async with asyncio.timeout(READ_TIMEOUT_S):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise ApiError(413, "head_too_large", f"request head over {MAX_HEAD} bytes") from exc
        lines = head[:-4].split(b"\r\n")
        method, path, query = _request_line(lines[0])
        headers = _headers(lines[1:])
        if "transfer-encoding" in headers:
            raise ApiError(501, "chunked_unsupported", "send a Content-Length, not chunks")
        length = _content_length(headers, method)
        body = await reader.readexactly(length) if length else b""
    return Request(method, path, query, headers, body, peer_uid)


def _request_line(line: bytes) -> tuple[str, str, dict[str, list[str]]]:
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise ApiError(400, "bad_request_line", "expected METHOD PATH HTTP/1.1")
    try:
        method, target = parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_request_line", "request line is not ASCII") from exc
    path, _, qs = target.partition("?")
    try:
        query = parse_qs(qs, strict_parsing=False, max_num_fields=16)
    except ValueError as exc:
        raise ApiError(400, "bad_query", "too many query parameters") from exc
    return method, path, query


def _headers(lines: list[bytes]) -> dict[str, str]:
    if len(lines) > MAX_HEADERS:
        raise ApiError(400, "too_many_headers", f"more than {MAX_HEADERS} header lines")
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.partition(b":")
        if not sep or not name.strip():
            raise ApiError(400, "bad_header", "header line without a name")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def _content_length(headers: dict[str, str], method: str) -> int:
    text = headers.get("content-length")
    if text is None:
        if method in ("POST", "PUT"):
            raise ApiError(411, "length_required", "send a Content-Length header")
        return 0
    if not text.isdigit() or len(text) > 9:
        raise ApiError(400, "bad_content_length", "Content-Length is not a number",
                       "content-length")
    length = int(text)
    if length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"body over {MAX_BODY} bytes")
    return length


def response(status: int, body: Any, extra: str = "") -> bytes:
    """A complete HTTP/1.1 response carrying ``body`` as JSON."""
    data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    return (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n").encode() + data


def peer_uid(sock: socket.socket | None) -> int | None:
    """The uid of the process at the other end of a unix socket (Linux SO_PEERCRED)."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


# --- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: ``actor`` goes into the audit log."""

    actor: str
    can_write: bool


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    digest: bytes = field(repr=False)
    can_write: bool


class Tokens:
    """Bearer tokens from a file: one per line, ``NAME TOKEN`` or ``NAME TOKEN read-only``.

    A line with a single field is a token named ``admin``. Only SHA-256 digests are kept, and a
    presented token is compared with every digest (no early exit), so timing says nothing.
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens

    @classmethod
    def load(cls, path: Path) -> Tokens:
        """Read the token file (blocking); refuse one that other users can read."""
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("admin token_file", f"cannot read {path}: {exc}") from exc
        if mode & 0o007:
            raise ConfigError("admin token_file", f"{path} is accessible to other users",
                              f"chmod 600 {path}")
        tokens = []
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) == 1:
                fields = ["admin", fields[0]]
            name, secret, *rest = fields
            if not _TOKEN_NAME.fullmatch(name) or len(secret) < 16 or rest not in ([],
                                                                                  ["read-only"]):
                raise ConfigError("admin token_file", f"{path} line {number} is not "
                                  "'NAME TOKEN [read-only]' with a token of 16+ characters")
            tokens.append(_Token(name, _digest(secret), not rest))
        if not tokens:
            raise ConfigError("admin token_file", f"{path} holds no token")
        return cls(tokens)

    def match(self, presented: str) -> _Token | None:
        digest = _digest(presented)
        found = None
        for token in self._tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def authenticate(req: Request, tokens: Tokens | None, allowed_uids: frozenset[int]) -> Principal:
    """A bearer token wins; without one, a unix peer whose uid is allowed. Else 401/403."""
    auth = req.headers.get("authorization")
    if auth is not None:
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(401, "unauthorized", "use 'Authorization: Bearer TOKEN'")
        token = tokens.match(presented.strip()) if tokens is not None else None
        if token is None:
            raise ApiError(401, "unauthorized", "invalid token")
        return Principal(f"token:{token.name}", token.can_write)
    if req.peer_uid is not None:
        if req.peer_uid in allowed_uids:
            return Principal(f"uid:{req.peer_uid}", can_write=True)
        raise ApiError(403, "forbidden", f"uid {req.peer_uid} may not use the admin socket "
                       "(send a bearer token, or add the uid to the allowed uids)")
    raise ApiError(401, "unauthorized", "a bearer token is required")


def default_uids() -> frozenset[int]:
    """Root and the user the gateway runs as."""
    return frozenset({0, os.getuid()})
