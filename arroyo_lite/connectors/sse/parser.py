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
        self._event_type = b""
        # The id buffer (raw), and its text as of the last dispatch (``last_event_id``).
        self._id_raw = last_event_id.encode("utf-8")
        self._id_raw_decoded = self._id_raw
        self._id_text = last_event_id
        self._types: dict[bytes, str] = {b"": DEFAULT_EVENT_TYPE}
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
        events = self._lines(lines)
        if len(rest) > self.max_event_bytes:
            # One line alone is too big: its event is oversized; drop the line as it comes.
            self._discard()
            rest = b""
            self._skip_line = True
        self._pending = rest
        return events

    def _lines(self, lines: list[bytes]) -> list[SseEvent]:
        """Interpret complete lines. The hot loop: buffers live in locals, ``data`` lines (most
        of a stream) take the first branch, and event types and ids are decoded only when
        they change."""
        events: list[SseEvent] = []
        append = events.append
        data, size, skipping = self._data, self._data_size, self._skipping
        event_type, id_raw, id_text = self._event_type, self._id_raw, self._id_text
        limit = self.max_event_bytes
        types = self._types
        for line in lines:
            if not line:  # dispatch
                id_text = self._decode_id(id_raw)  # (sets last_event_id, even with no data)
                if skipping:
                    skipping = False
                elif data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    append(SseEvent(joined, types.get(event_type) or self._type(event_type),
                                    id_text))  # fmt: skip
                data, size, event_type = [], 0, b""
                continue
            if line[:5] == b"data:":
                value = line[6:] if line[5:6] == b" " else line[5:]
            elif line[0] == 0x3A:  # ':' -> comment
                continue
            else:
                name, colon, value = line.partition(b":")
                if colon and value[:1] == b" ":
                    value = value[1:]
                if name == b"event":
                    event_type = value
                elif name == b"id":
                    if b"\x00" not in value:
                        id_raw = value
                elif name == b"retry" and value.isdigit() and value.isascii():
                    self.retry_ms = int(value)
                if name != b"data":
                    continue
            if skipping:
                continue
            data.append(value)
            size += len(value) + 1
            if size > limit:
                self.oversized += 1
                skipping, data, size = True, [], 0
        self._data, self._data_size, self._skipping = data, size, skipping
        self._event_type, self._id_raw = event_type, id_raw
        return events

    def _decode_id(self, raw: bytes) -> str:
        """The id buffer as text; also what ``last_event_id`` becomes at a dispatch."""
        if raw is not self._id_raw_decoded:
            self._id_raw_decoded = raw
            self._id_text = raw.decode("utf-8", "replace")
        self.last_event_id = self._id_text
        return self._id_text

    def _type(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace") or DEFAULT_EVENT_TYPE
        if len(self._types) < 64:  # a few distinct types per stream; bounded anyway
            self._types[raw] = text
        return text

    def _discard(self) -> None:
        """Drop the data of the event being read; ignore its data lines until it ends."""
        if not self._skipping:
            self.oversized += 1
        self._skipping = True
        self._data = []
        self._data_size = 0
