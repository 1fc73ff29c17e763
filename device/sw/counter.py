"""Uplink frame counter that survives reboots without reuse (spec section 3, block reservation).

The file holds R, the first counter not yet reserved. At boot the device starts at R and
persists R + BLOCK at once; when the counter reaches the reserved limit the next block is
persisted before the counter is handed out. One flash write per BLOCK frames.
"""
import errno
import os
import struct

try:
    from micropython import const
except ImportError:  # CPython: const() is only a compiler hint
    def const(x):  # type: ignore[misc]  # the stub's generic signature, same behaviour
        return x

from .proto import MAX_COUNTER, ProtoError

BLOCK = const(256)  # spec: one flash write per 256 frames, a reboot skips at most 255
_MAGIC = b"SWC1"
_FMT = "<4sQQ"  # magic, R, ~R: a torn or rotten file never parses as a valid R
_SIZE = const(20)
_ALL = const(0xFFFFFFFFFFFFFFFF)


class CounterFileError(Exception):
    """The counter file exists but cannot be trusted: refusing to guess a counter."""


class Counter:
    """Hands out frame counters; .writes counts file writes (one per reserved block)."""

    def __init__(self, path, kept=None):
        """kept: (next, limit) held in RTC memory over a deep sleep. They are taken only if
        limit is what the file holds (the block was reserved and nothing moved since);
        otherwise a new block is reserved, which only skips counters."""
        self.path = path
        self.writes = 0
        start = _load(path)
        if kept is not None and kept[1] == start and kept[0] <= start:
            self._next, self._limit = kept  # the reserved block goes on: no flash write
            return
        self._next = start
        self._limit = start
        self._reserve()  # a reboot right now must already skip what this run may use

    def state(self):
        """(next, limit): what a deep sleep keeps in RTC memory."""
        return self._next, self._limit

    def next(self):
        """The next counter; raises ProtoError('counter_exhausted') after 0xFFFFFFFF."""
        c = self._next
        if c > MAX_COUNTER:
            raise ProtoError("counter_exhausted", "re-key the device")
        if c >= self._limit:
            self._reserve()
        self._next = c + 1
        return c

    def peek(self):
        """The counter next() would return, without taking it."""
        return self._next

    def _reserve(self):
        limit = self._limit + BLOCK
        if limit > MAX_COUNTER + 1:
            limit = MAX_COUNTER + 1  # the last block is short; past it we are exhausted
        _store(self.path, limit)
        self.writes += 1
        self._limit = limit


def _load(path):
    """R from the file, or from the temporary one if a replace was interrupted; 0 if neither."""
    data = _read(path)
    if data is not None:
        return _parse(path, data)
    data = _read(path + ".tmp")
    if data is None:
        return 0  # never provisioned a counter: first boot
    try:
        return _parse(path + ".tmp", data)
    except CounterFileError:
        # No file and a torn .tmp: the very first reservation was cut short (a later .tmp is
        # complete before the old file is touched), so no counter was ever handed out.
        return 0


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(_SIZE + 1)  # one byte more than valid, to see an overlong file
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise  # a flash error is not a missing file: starting at 0 would reuse counters


def _parse(path, data):
    if len(data) == _SIZE:
        magic, r, inv = struct.unpack(_FMT, data)
        if magic == _MAGIC and r ^ inv == _ALL and r <= MAX_COUNTER + 1:
            return r
    raise CounterFileError(
        "counter file %s is corrupt; starting anywhere could reuse counters under the same key: "
        "re-key the device (re-provision) or restore the file" % path)


def _store(path, r):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack(_FMT, _MAGIC, r, r ^ _ALL))
    try:
        os.rename(tmp, path)  # atomic replace on littlefs
    except OSError:
        # FAT refuses to rename over an existing file: remove first. A crash in between
        # leaves only the .tmp file, which _load() reads.
        os.remove(path)
        os.rename(tmp, path)
