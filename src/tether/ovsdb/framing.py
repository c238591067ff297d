"""Incremental splitter for OVSDB's wire format: JSON objects back to back, no delimiter.

Pure: bytes in, decoded messages out; no I/O. A message may be cut at any byte and a chunk
may hold several messages. The splitter tracks brace depth, inside-a-string and
after-a-backslash across chunks, resuming where it stopped, so every byte is examined once.
Three speeds, one result:

* **Whole buffer.** When the buffered bytes end with ``}`` they are very often exactly one
  message (a reply that arrived whole, or the last chunk of a big one): orjson parses the
  buffer at once and the scan state is dropped. A failed attempt (the ``}`` was not the
  end) spaces the next one geometrically, so attempts cost linear time however the stream
  is cut.
* **Skim.** A big chunk without backslashes that cannot end a message (depth stays above
  zero and no ``}`` is followed by ``{`` outside strings) is accounted for in bulk: split at
  quotes, count braces in the non-string parts.
* **Exact scan.** Otherwise regular expressions jump from brace to brace, swallowing whole
  strings in C; one Python step per brace.

Refused with :class:`~tether.ovsdb.errors.OvsdbProtocolError`: anything but whitespace
between messages, a top-level value that is not an object, a message that is not valid
JSON (or UTF-8), and a message longer than ``max_message_bytes``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tether.ovsdb.errors import OvsdbProtocolError

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "JsonSplitter"]

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

# Up to the next brace or an unterminated string: plain bytes and whole strings.
# (No possessive quantifiers: CPython 3.11.2 mis-matches them; these never backtrack far.)
_TO_BRACE = re.compile(rb'(?:[^{}\[\]"]+|"[^"\\]*(?:\\.[^"\\]*)*")*', re.DOTALL)
# The rest of a string body: stops before the closing quote or a backslash ending the data.
_STRING_BODY = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SPACE = re.compile(rb"[ \t\r\n]*")
_BOUNDARY = re.compile(rb"}[ \t\r\n]*{")  # outside strings: one message ends, the next begins
_SKIM_BYTES = 4096
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = 0x7B, 0x7D, 0x22, 0x5C
_OPEN_ARRAY, _CLOSE_ARRAY = 0x5B, 0x5D
_TRAILING_SPACE = b" \t\r\n"


class JsonSplitter:
    """Cuts a byte stream into complete top-level JSON objects and decodes them."""

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._pos = 0  # next byte for the exact scanner; 0 and depth 0: nothing scanned yet
        self._depth = 0
        self._brackets = 0  # open arrays: a stray ']' is refused at once, not waited on
        self._in_string = False
        self._escaped = False
        self._next_attempt = 0  # fast path only once the buffer holds this many bytes
        self._may_skim = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; return every message it completes, decoded, oldest first."""
        self._buf += data
        self._may_skim = True
        message = self._try_whole_buffer()
        if message is not None:
            return [message]
        messages: list[Any] = []
        while (end := self._scan()) >= 0:
            messages.append(self._decode(end))
            del self._buf[:end]  # O(1): CPython moves the start of a bytearray
            self._pos = 0
            self._next_attempt = 0
        if len(self._buf) > self.max_message_bytes:
            raise OvsdbProtocolError(
                f"unfinished message exceeds the limit of {self.max_message_bytes} bytes"
            )
        return messages

    def _try_whole_buffer(self) -> Any:
        """Fast path: the buffer as exactly one message, or ``None`` (then scan exactly)."""
        buf = self._buf
        size = len(buf)
        if size < self._next_attempt or size > self.max_message_bytes:
            return None
        # The buffer always begins where a message begins (whitespace aside).
        if not buf.rstrip(_TRAILING_SPACE).endswith(b"}"):
            return None
        try:
            message = orjson.loads(buf)
        except orjson.JSONDecodeError:
            self._next_attempt = 2 * size
            return None
        if not isinstance(message, dict):
            return None  # the exact scanner reports what is wrong
        buf.clear()
        self._pos = self._depth = self._next_attempt = self._brackets = 0
        self._in_string = self._escaped = False
        return message

    def _decode(self, end: int) -> Any:
        if end > self.max_message_bytes:
            raise OvsdbProtocolError(
                f"message of {end} bytes exceeds the limit of {self.max_message_bytes} bytes"
            )
        try:
            return orjson.loads(memoryview(self._buf)[:end])
        except orjson.JSONDecodeError as exc:
            raise OvsdbProtocolError(f"malformed JSON message: {exc}") from exc

    def _scan(self) -> int:
        """Scan on from ``_pos``; return the end of the current message, or -1 for 'need more'."""
        pos = self._pos
        if self._depth == 0:
            pos = self._skip_to_object()  # drops whitespace before the message
            if pos < 0:
                return -1
        buf, n = self._buf, len(self._buf)
        while pos < n:
            if self._in_string:
                pos = self._scan_string(pos, n)
                continue
            if self._may_skim and (pos := self._skim(pos, n)) == n:
                break
            pos = _TO_BRACE.match(buf, pos).end()  # type: ignore[union-attr]  # matches ""
            if pos == n:
                break
            char = buf[pos]
            pos += 1
            if char == _QUOTE:
                self._in_string = True  # a string the data cuts short
            elif char == _OPEN:
                self._depth += 1
            elif char == _OPEN_ARRAY:
                self._brackets += 1
            elif char == _CLOSE_ARRAY:
                self._brackets -= 1
                if self._brackets < 0:
                    raise OvsdbProtocolError(f"malformed JSON: unbalanced ']' at byte {pos - 1}")
            else:
                self._depth -= 1
                if self._depth == 0:
                    if self._brackets:
                        raise OvsdbProtocolError("malformed JSON: an array is not closed")
                    return pos
        self._pos = pos
        return -1

    def _skim(self, pos: int, n: int) -> int:
        """Account for ``buf[pos:n]`` in bulk if no message can end in it; else return ``pos``."""
        self._may_skim = False  # once per chunk: a declined skim must not repeat per message
        if n - pos < _SKIM_BYTES:
            return pos
        region = self._buf[pos:n]
        if b"\\" in region:
            return pos  # escaped quotes: quotes no longer alternate in and out of strings
        parts = region.split(b'"')
        outside = b"".join(parts[0::2])
        if _BOUNDARY.search(outside):
            return pos
        depth = self._depth + outside.count(b"{") - outside.count(b"}")
        brackets = self._brackets + outside.count(b"[") - outside.count(b"]")
        if depth <= 0 or brackets < 0:
            return pos  # the exact scanner finds the end (or the fault)
        self._depth = depth
        self._brackets = brackets
        self._in_string = len(parts) % 2 == 0  # an odd number of quotes opens a string
        return n

    def _skip_to_object(self) -> int:
        """Skip whitespace before a message; the buffer must then hold ``{`` (or nothing yet)."""
        buf = self._buf
        pos = _SPACE.match(buf).end()  # type: ignore[union-attr]  # matches ""
        if pos:
            del buf[:pos]  # whitespace between messages never counts toward a message
        if not buf:
            return -1
        if buf[0] != _OPEN:
            raise OvsdbProtocolError(f"expected a JSON object, got {bytes(buf[:40])!r}")
        self._depth = 1
        self._brackets = 0
        return 1

    def _scan_string(self, pos: int, n: int) -> int:
        """Consume string bytes from ``pos``; leave the string state right for the next chunk."""
        if self._escaped:
            self._escaped = False
            return pos + 1
        pos = _STRING_BODY.match(self._buf, pos).end()  # type: ignore[union-attr]
        if pos == n:
            return pos
        if self._buf[pos] == _BACKSLASH:  # the data ends right after a backslash
            self._escaped = True
        else:
            self._in_string = False
        return pos + 1
