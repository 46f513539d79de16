"""The running ``webhook`` sink: one POST per record, bounded in flight, retried with backoff.

As Arroyo's ``WebhookSinkFunc``: each row is encoded with the table's format (one JSON
object for ``json``) and POSTed as the body of its own request to ``endpoint``, with the
table's headers; at most ``max_inflight`` (Arroyo: 50) requests are open at once, so a slow
endpoint back-pressures the query instead of piling up requests. A failed request is retried
forever after ``50 ms * 2^retry`` (capped at ``max_backoff_ms``, Arroyo: 5 s); while any is
retrying the sink reports ``backoff`` with ``webhook failed (retry N): ...`` as its last
error. :meth:`WebhookSink.flush` waits until every request written so far has succeeded
(Arroyo waits the same way at a checkpoint), so the rows a flush acknowledges were received.

Beyond Arroyo (whose HTTP client reports only transport errors), an answer with status 408,
429 or 5xx is a failure and retried; another non-2xx answer cannot succeed by retrying: it is
counted in ``dropped_rows`` and reported, and the record is not sent again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import aiohttp
import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SinkOperator, SourceContext, SourceState
from arroyo_lite.connectors.probing import ProbeResult, ProbeStage
from arroyo_lite.connectors.webhook.options import WebhookOptions
from arroyo_lite.errors import ArroyoLiteError
from arroyo_lite.formats.encode import make_encoder
from arroyo_lite.secrets import MissingVariableError, Secrets, substitute, url_password

if TYPE_CHECKING:
    from collections.abc import Mapping

#: First retry delay (Arroyo: ``50 * (1 << retries)`` milliseconds).
BASE_BACKOFF_S = 0.05
#: Statuses worth retrying: the server may answer differently later.
RETRYABLE = frozenset({408, 429})
#: Longest start of an answer's body kept for a message.
EXCERPT = 200


def resolve(options: WebhookOptions, env: Mapping[str, str]) -> tuple[str, dict[str, str], Secrets]:
    """The endpoint and headers with ``{{ VAR }}`` substituted, and the values inserted."""
    url, secrets = substitute(options.endpoint, env)
    secrets = secrets | Secrets.of([url_password(url) or ""])
    headers: dict[str, str] = {}
    for name, template in options.headers:
        value, used = substitute(template, env)
        headers[name] = value
        secrets = secrets | used
    return url, headers, secrets


class WebhookSink(SinkOperator):
    """POSTs each encoded row to the table's endpoint (see the module docstring)."""

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        assert isinstance(config.connector_options, WebhookOptions)
        self.options = config.connector_options
        self.encoder = make_encoder(config)
        try:
            self.url, self.headers, self.secrets = resolve(self.options, context.env)
        except MissingVariableError as e:
            raise ArroyoLiteError(f"table '{config.name}': {e}") from None
        self._slots = asyncio.Semaphore(self.options.max_inflight)
        self._inflight: set[asyncio.Task[None]] = set()
        self._retrying = 0
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=self.options.timeout_ms / 1000),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def write(self, batch: pa.RecordBatch) -> None:
        for body in self.encoder.records(batch):
            await self._slots.acquire()  # bounded in flight: waits for a free slot
            task = asyncio.create_task(self._send(body))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def flush(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            for task in self._inflight:
                task.cancel()
            if self._session is not None:
                await self._session.close()

    async def _send(self, body: bytes) -> None:
        """POST ``body`` until it is accepted (or refused for good); frees its slot."""
        assert self._session is not None
        retries = 0
        try:
            while True:
                problem = await self._post(body)
                if problem is None:
                    if retries:
                        self._recovered()
                    return
                permanent, details = problem
                if permanent:
                    self.status.dropped_rows += 1
                    self._failed(f"webhook refused a record: {details}")
                    if retries:
                        self._recovered()
                    return
                if not retries:
                    self._retrying += 1
                    self.report(SourceState.BACKOFF)
                self._failed(f"webhook failed (retry {retries}): {details}")
                retries += 1
                delay = min(
                    BASE_BACKOFF_S * (1 << min(retries, 30)), self.options.max_backoff_ms / 1000
                )
                await self.context.clock.sleep(delay)  # (injected: tests drive it)
        finally:
            self._slots.release()

    async def _post(self, body: bytes) -> tuple[bool, str] | None:
        """``None`` when the endpoint accepted ``body``; else (permanent?, what happened)."""
        assert self._session is not None
        try:
            async with self._session.post(self.url, data=body) as resp:
                if 200 <= resp.status < 300:
                    await resp.read()
                    self.status.bytes += len(body)
                    self.status.last_status_code = resp.status
                    return None
                self.status.last_status_code = resp.status
                retry = resp.status >= 500 or resp.status in RETRYABLE
                return (not retry, f"server responded with error code: {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            return (False, str(e) or type(e).__name__)

    def _failed(self, message: str) -> None:
        status = self.status
        status.failures += 1
        status.consecutive_failures += 1
        status.last_error = self.secrets.mask(message)
        status.last_error_at_ns = self.context.clock.time_ns()

    def _recovered(self) -> None:
        self.status.consecutive_failures = 0
        self._retrying -= 1
        if not self._retrying:
            self.report(SourceState.RUNNING)


async def probe(
    config: TableConfig,
    env: Mapping[str, str],
    body: bytes,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (the request's timeout)
) -> ProbeResult:
    """POST ``body`` once to ``config``'s endpoint (what ``arroyo-lite test`` shows)."""
    options = config.connector_options
    assert isinstance(options, WebhookOptions)
    base = ProbeResult(
        table=config.name,
        method="POST",
        url=options.endpoint,
        headers=options.headers,
        body=body.decode(),
        stage=ProbeStage.CONFIG,
    )
    try:
        url, headers, secrets = resolve(options, env)
    except MissingVariableError as e:
        return replace(base, error=str(e))
    masked = tuple((name, secrets.mask(value)) for name, value in headers.items())
    base = replace(base, url=secrets.mask(url), headers=masked, stage=ProbeStage.REQUEST)
    seconds = timeout if timeout is not None else options.timeout_ms / 1000
    started = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
            ) as session,
            session.post(url, data=body) as resp,
        ):
            answer = await resp.content.read(64 * 1024)
            latency = time.perf_counter() - started
            text = answer.decode(errors="replace").strip().replace("\n", " ")
            text = secrets.mask(text[:EXCERPT] + ("..." if len(text) > EXCERPT else ""))
            ok = 200 <= resp.status < 300
            return replace(
                base,
                stage=ProbeStage.DONE,
                status=resp.status,
                reason=resp.reason,
                latency_s=latency,
                size=len(answer) if ok else None,
                content_type=resp.headers.get("Content-Type"),
                response=text,
                error=None if ok else f"server responded with error code: {resp.status}",
            )
    except (aiohttp.ClientError, TimeoutError) as e:
        return replace(base, error=secrets.mask(f"HTTP request failed: {e or type(e).__name__}"))
