"""The decoder contract: :class:`DecodeResult` and the abstract :class:`Decoder`.

A decoder turns one response body into at most one ``pa.RecordBatch`` with the table's
``output_schema()``. Decoders are built once per table by :func:`arroyo_lite.formats.make_decoder`
and may be called from any thread (the polling operator offloads big bodies with
``asyncio.to_thread``): they keep no mutable state between calls except read-only caches.
"""

from __future__ import annotations

import logging
import traceback
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arroyo_lite.config import BadData, TableConfig
from arroyo_lite.errors import FatalSourceError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: How many per-record problems a result or an error message lists at most.
MAX_DETAILS = 5
#: Longest message a decoding error carries (bodies can be huge; messages stay bounded).
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """What one body decoded to.

    ``batch`` has exactly the table's ``output_schema()`` and ``rows`` rows, or is ``None`` when
    no row came out (an empty body, or every record dropped). ``dropped`` counts the records
    removed under ``bad_data = 'drop'``; ``errors`` says why (Arroyo's summary line first,
    then up to :data:`MAX_DETAILS` details that never contain the raw values).
    """

    batch: pa.RecordBatch | None
    rows: int
    dropped: int = 0
    errors: tuple[str, ...] = ()


class Decoder(ABC):
    """Body bytes -> record batch for one table.

    :meth:`decode` never blocks on I/O and is CPU-bound; it raises
    :class:`arroyo_lite.errors.FatalSourceError` for bad data when the table's ``bad_data`` is
    ``fail``. It never raises any other exception for any input bytes: subclasses implement
    :meth:`decode_body`, and whatever else escapes it (a bug met by some hostile body) is
    bad data too: the whole body is one dropped record under ``drop``, a fatal error naming
    only the exception's type under ``fail``.
    """

    config: TableConfig

    #: Whether :meth:`decode` may run DuckDB queries (virtual columns, JSON column text).
    #: Such a call blocks for the query's duration: a caller on an event loop must run it on
    #: a worker thread whatever the body's size.
    runs_queries: bool = False

    def decode(self, body: bytes, received_at_ns: int) -> DecodeResult:
        """Decode ``body``; every row's ``_timestamp`` is ``received_at_ns`` (ns since the epoch)
        unless the table has an event-time column."""
        try:
            return self.decode_body(body, received_at_ns)
        except FatalSourceError:
            raise
        except TooManyRecords as e:
            limit = self.config.max_records_per_body
            detail = f"the body has more than {limit} records (max_records_per_body)"
            if self.config.bad_data is not BadData.DROP:
                raise FatalSourceError(
                    f"bad data: {detail}",
                    hint="raise max_records_per_body, or ask the API for fewer records per "
                    "response",
                ) from None
            return DecodeResult(None, 0, dropped=e.seen, errors=(TOO_MANY_SUMMARY, detail))
        except Exception as e:  # the contract: no body may crash a source
            # Frames only: the exception's text may quote the body (and so a secret).
            log.debug(
                "decoder of table '%s' raised %s\n%s",
                self.config.name,
                type(e).__name__,
                "".join(traceback.format_tb(e.__traceback__)),
            )
            detail = f"the body could not be decoded ({type(e).__name__})"
            if self.config.bad_data is not BadData.DROP:
                raise FatalSourceError(f"bad data: {detail}") from None
            return DecodeResult(None, 0, dropped=1, errors=(UNDECODABLE_SUMMARY, detail))

    def decode_pages(
        self, bodies: Sequence[bytes], received_at_ns: Sequence[int]
    ) -> list[DecodeResult | FatalSourceError]:
        """What :meth:`decode` gives for each body with its arrival time, in order, the
        :class:`FatalSourceError` it raised in the place of a body that failed (the later
        bodies are decoded all the same). A decoder may read several bodies at once when that
        gives the same results (:class:`~.json_decoder.JsonDecoder` does: one read's set-up
        for all the pages of a poll)."""
        results: list[DecodeResult | FatalSourceError] = []
        for body, at in zip(bodies, received_at_ns, strict=True):
            try:
                results.append(self.decode(body, at))
            except FatalSourceError as e:
                results.append(e)
        return results

    @abstractmethod
    def decode_body(self, body: bytes, received_at_ns: int) -> DecodeResult:
        """What :meth:`decode` returns, for a subclass; may raise anything on a bug."""


class TooManyRecords(Exception):
    """Raised inside a decoder as soon as a body is known to hold more records than the
    table's ``max_records_per_body``; ``seen`` is how many were counted (at least the limit
    plus one)."""

    def __init__(self, seen: int) -> None:
        super().__init__(seen)
        self.seen = seen


def check_records(count: int, config: TableConfig) -> None:
    """Raise :class:`TooManyRecords` if ``count`` records exceed ``config``'s bound."""
    if count > config.max_records_per_body:
        raise TooManyRecords(count)


#: Summary line of a body dropped whole for holding too many records.
TOO_MANY_SUMMARY = "A response body held too many records"
#: Summary line of a body dropped whole because decoding it failed unexpectedly.
UNDECODABLE_SUMMARY = "A response body could not be decoded"


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
