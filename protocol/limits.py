"""Caps on every length that comes from outside, and fixed protocol sizes (docs/protocol.md)."""

from typing import Final

VERSION: Final = 1

# IPv6 minimum MTU 1280 minus 48 bytes of IPv6+UDP headers: a frame is never fragmented.
MAX_FRAME_SIZE: Final = 1232
# A deflated 32x24 8-bit thumbnail is ~300-700 bytes; leaves room for header and tag.
MAX_THUMBNAIL: Final = 1024
# Largest firmware chunk that still fits one frame with headers and tag.
MAX_FW_CHUNK: Final = 1024
# More keys than any device has; bounds the decode loop.
MAX_CONFIG_ENTRIES: Final = 32
# Longest value is a WiFi passphrase (63 characters).
MAX_CONFIG_VALUE: Final = 64
# One log line; devices truncate longer ones.
MAX_LOG_TEXT: Final = 192
# COBS adds one byte per 254 (plus one); the delimiter is not counted.
MAX_STREAM_FRAME: Final = MAX_FRAME_SIZE + MAX_FRAME_SIZE // 254 + 1

SHORT_HEADER: Final = 7
LONG_HEADER: Final = 9
TAG_STD: Final = 8
TAG_LORA: Final = 4
TAG_LENGTHS: Final = (TAG_STD, TAG_LORA)

REPLAY_WINDOW_BITS: Final = 64
COUNTER_MAX: Final = 0xFFFFFFFF
# Devices reserve counters in flash in blocks of this size: one write per block.
COUNTER_BLOCK: Final = 256
# A device re-sends HELLO after this many uplinks without an authenticated downlink, so that the
# 16-bit counter in the short header can always be reconstructed (limit is 32767).
RESYNC_AFTER_FRAMES: Final = 16384
