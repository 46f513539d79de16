"""The ``text/event-stream`` parser: bytes as they arrive -> dispatched events (WHATWG HTML §9.2).

:class:`EventStreamParser` is fed chunks of any size (a chunk may end inside a line, or between
the ``\\r`` and ``\\n`` of a CRLF) and returns the events completed by each chunk. It follows
the spec's "interpret an event stream" algorithm:

* a UTF-8 byte order mark at the start of the stream is skipped;
* lines end with CRLF, LF or CR; a line starting with ``:`` is a comment;
* ``field: value`` (one space after the colon removed), or a bare ``field`` with an empty value;
* ``event`` sets the event type, ``data`` appends the value and a LF to the data buffer,
  ``id`` sets the last event ID unless the value contains NUL, ``retry`` sets the reconnection
  time when the value is ASCII digits only; other fields are ignored;
* a blank line dispatches: the last event ID is updated even when no event follows; an event
  with an empty data buffer is not dispatched; one final LF of the data is removed; the type
  defaults to ``message``;
* bytes after the last blank line at the end of a stream are an unfinished event, discarded.

Data stays bytes (the table's format decodes it, lossy UTF-8 for text as elsewhere); event
types and ids are decoded as UTF-8 with replacement characters, as the spec does.

Memory is bounded: an event whose data grows beyond ``max_event_bytes`` is discarded (counted in
:attr:`EventStreamParser.oversized`) and the parser skips to its end; a single line longer than
that is cut the same way, without keeping it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The spec's default event type.
DEFAULT_EVENT_TYPE = "message"
#: Largest data buffer of one event (bytes) before it is discarded (an arroyo-lite bound).
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event. ``id`` is the last event ID in force when it was dispatched."""

    data: bytes
    event: str = DEFAULT_EVENT_TYPE
    id: str = ""


class EventStreamParser:
    """Incremental parser of one connection's stream (make a new one per connection).

    :attr:`last_event_id` and :attr:`retry_ms` carry the stream's state for the next
    connection: the caller copies them into the next parser's constructor.
    """

    def __init__(
        self, last_event_id: str = "", *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        #: The last event ID buffer (sent as ``Last-Event-ID`` on reconnect).
        self.last_event_id = last_event_id
        #: The reconnection time the server asked for with ``retry:``, if it did.
        self.retry_ms: int | None = None
        #: Events discarded because their data exceeded ``max_event_bytes``.
        self.oversized = 0
        self.max_event_bytes = max_event_bytes
        self._pending = b""  # the start of an unfinished line
        self._started = False  # whether the BOM check has been done
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_type = ""
        self._id = last_event_id  # the id buffer; copied to last_event_id at dispatch
        self._skipping = False  # inside an oversized event: ignore data until it ends
        self._skip_line = False  # inside an oversized line: drop until its end
        self._after_cr = False  # the last chunk ended with CR (a LF next is part of it)

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Parse ``chunk``; return the events it completes, in order."""
        if not self._started:
            chunk, self._pending = self._pending + chunk, b""
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._pending = chunk  # maybe a BOM split across chunks: wait for more
                return []
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if self._skip_line:
            # The rest of a line already cut for its size: drop up to its end.
            ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
            if not ends:
                return []
            end = min(ends)
            self._after_cr = chunk[end] == 0x0D
            chunk = chunk[end + 1 :]
            self._skip_line = False
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF whose CR ended the previous chunk
        buffer = self._pending + chunk if self._pending else chunk
        if not buffer:
            return []
        self._after_cr = buffer.endswith(b"\r")
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        rest = lines.pop()
        events: list[SseEvent] = []
        for line in lines:
            if line:
                self._line(line)
            else:
                self._dispatch(events)
        if len(rest) > self.max_event_bytes:
            # One line alone is too big: its event is oversized; drop the line as it comes.
            self._discard()
            rest = b""
            self._skip_line = True
        self._pending = rest
        return events

    def _line(self, line: bytes) -> None:
        if line[0] == 0x3A:  # ':' -> comment
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._skipping:
                return
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self.max_event_bytes:
                self._discard()
        elif name == b"event":
            self._event_type = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\x00" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value and value.isdigit() and value.isascii():
            self.retry_ms = int(value)

    def _discard(self) -> None:
        """Drop the data of the event being read; ignore its data lines until it ends."""
        if not self._skipping:
            self.oversized += 1
        self._skipping = True
        self._data = []
        self._data_size = 0

    def _dispatch(self, events: list[SseEvent]) -> None:
        self.last_event_id = self._id
        data, self._data, self._data_size = self._data, [], 0
        event_type, self._event_type = self._event_type, ""
        if self._skipping:
            self._skipping = False
            return
        if not data:
            return
        joined = data[0] if len(data) == 1 else b"\n".join(data)
        events.append(SseEvent(joined, event_type or DEFAULT_EVENT_TYPE, self._id))
