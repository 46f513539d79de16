"""What the push connectors (``sse``, ``websocket``) share on the configuration side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from arroyo_lite.connectors.base import Connector

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped


class PushConnector(Connector):
    """A source connector whose server pushes messages; ``arroyo-lite test`` connects to it
    and decodes the first messages (:func:`~arroyo_lite.connectors.streaming.probe.
    probe_stream`)."""

    async def probe(
        self,
        config: TableConfig,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the wait for a first message)
        max_rows: int = 10,
    ) -> ProbeResult | ProbeSkipped:
        """Connect as the source would and decode the first messages."""
        # Imported lazily: validating SQL must not pull in aiohttp.
        from arroyo_lite.connectors.streaming.probe import probe_stream

        return await probe_stream(config, env, timeout=timeout, max_rows=max_rows)
