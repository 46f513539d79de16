"""One trial request for a ``polling_http`` table, reported in full: ``arroyo-lite test``'s engine.

:func:`probe` runs the table's poll step (:mod:`.poll`: the same requests, headers, body,
timeout, size cap and redirects as the polling source), then decodes the first page's body
with the table's decoder, and returns a :class:`ProbeResult` saying what was sent
(secrets masked), what came back, and the first decoded rows or exactly why decoding failed.

Beyond Arroyo: Arroyo's connection test ignores the status and never decodes; a probe succeeds
only for a 2xx answer whose body decodes without dropping a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc

from arroyo_lite.clock import SystemClock
from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.polling_http.http import (
    HttpError,
    HttpRequest,
    HttpResponse,
    TransientHttpError,
)
from arroyo_lite.connectors.polling_http.metadata import MetadataColumns, PageInfo
from arroyo_lite.connectors.polling_http.operator import OFFLOAD_BYTES, page_decoder
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.poll import PollReport, PollStep, poll_step
from arroyo_lite.connectors.polling_http.poll_state import PollMemory
from arroyo_lite.connectors.polling_http.ratelimit import RateGate
from arroyo_lite.connectors.polling_http.templates import PollValues
from arroyo_lite.connectors.probing import ProbeResult, ProbeStage
from arroyo_lite.errors import ArroyoLiteError, FatalSourceError
from arroyo_lite.secrets import MASK, Secrets, redact_url

__all__ = ["ProbeResult", "ProbeStage", "probe"]


async def probe(
    config: TableConfig,
    env: Mapping[str, str],
    *,
    # The HTTP request's own timeout (as timeout_ms), not a cancel scope around the call.
    timeout: float | None = None,  # noqa: ASYNC109
    max_rows: int = 10,
    session: aiohttp.ClientSession | None = None,
) -> ProbeResult:
    """Send one request for ``config`` (a polling_http source) and decode the answer.

    ``env`` supplies ``{{ VAR }}`` values; ``timeout`` (seconds) overrides the table's
    ``timeout_ms``; ``max_rows`` bounds ``ProbeResult.rows``. A session may be passed to reuse
    connections across probes; otherwise one is opened and closed here. Never raises for a
    network, HTTP or decoding problem: those are reported in the result. Raises
    :class:`ArroyoLiteError` only if ``config`` is not a polling_http table.
    """
    options = config.connector_options
    if not isinstance(options, PollingHttpOptions):
        raise ArroyoLiteError(f"table '{config.name}' is not a polling_http source")
    base = ProbeResult(
        table=config.name,
        method=options.method,
        url=redact_url(options.endpoint),
        headers=tuple((name, template) for name, template in options.headers),
        body=options.body,
        stage=ProbeStage.CONFIG,
    )
    try:
        step = poll_step(options, env)
    except FatalSourceError as e:
        return replace(base, error=e.message)
    if timeout is not None:
        step = step.with_timeout(timeout)
    # A first poll: no state (``test`` keeps none), so the values a fresh table starts with.
    values = PollMemory({}, step.cursor, options.poll_interval_ms * 1_000_000, frozenset())
    poll_values = values.values(time.time_ns())
    request = step.first_request(poll_values)
    if request.url != options.endpoint:
        base = replace(base, url=redact_url(request.secrets.mask(request.url)))
    base = replace(base, headers=tuple(request.masked_headers()), stage=ProbeStage.REQUEST)
    if session is not None:
        return await _probe(config, step, request, poll_values, session, base, max_rows)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as own:
        return await _probe(config, step, request, poll_values, own, base, max_rows)


async def _probe(
    config: TableConfig,
    step: PollStep,
    request: HttpRequest,
    values: PollValues,
    session: aiohttp.ClientSession,
    base: ProbeResult,
    max_rows: int,
) -> ProbeResult:
    """Run one whole poll (every page, as the source would) and decode each page.

    ``notes`` lists every request (each page, each redirect, an auth request) with its
    status, latency, size and the rows its page decoded to; it is left empty for a poll of
    one plain request (the answer line says it all)."""
    started = time.perf_counter()
    report = PollReport()
    responses: list[HttpResponse] = []
    gate = _probe_gate(step, report)
    try:
        async with aclosing(step.pages(session, values, report, gate=gate)) as pages:
            async for response in pages:
                responses.append(response)
    except (HttpError, TransientHttpError) as e:
        latency = time.perf_counter() - started if e.status_code is not None else None
        return replace(
            base,
            error=e.message,
            status=e.status_code,
            latency_s=latency,
            reason=_reason(e.status_code),
            error_body=e.body_excerpt,
            notes=_trace(report),
        )
    received_at_ns = time.time_ns()
    last = responses[-1]
    result = replace(
        base,
        stage=ProbeStage.DECODE,
        status=last.status,
        reason=last.reason,
        latency_s=time.perf_counter() - started if len(responses) > 1 else last.latency_s,
        size=sum(len(r.body) for r in responses),
        content_type=last.content_type,
        final_url=redact_url(step.secrets.mask(last.url))
        if len(responses) == 1 and last.url != request.url
        and not step.auth.is_auth_request(request)
        else None,
        withheld=tuple(note for r in responses for note in r.withheld),
    )
    decoded = []
    try:
        decoder = page_decoder(config, config.connector_options)
        for response in responses:
            # Off the loop exactly when the operator would decode off it.
            if len(response.body) > OFFLOAD_BYTES or decoder.runs_queries:
                page = await asyncio.to_thread(decoder.decode, response.body, received_at_ns)
            else:
                page = decoder.decode(response.body, received_at_ns)
            decoded.append(page)
    except ArroyoLiteError as e:
        return replace(result, error=_mask(step.secrets, e.message), notes=_trace(report))
    for index, page in zip(report.page_lines, decoded, strict=True):
        report.lines[index] += f", {page.rows} row(s)"
    if report.capped:
        report.lines.append(
            f"stopped after {report.pages} pages (pagination.max_pages); the server had more"
        )
    batches = [p.batch for p in decoded if p.batch is not None]
    from arroyo_lite.formats.mismatch import mismatch_warning

    # The check compares the columns with the body's top-level keys: with records.path the
    # records are elsewhere in the body, so it would warn about every correct table.
    warning = None if config.connector_options.records_path else mismatch_warning(
        config,
        responses[0].body,
        decoded[0].batch if decoded else None,
        infer_command=_infer_command(config),
    )
    mismatch = [warning] if warning else []
    rows = None
    if batches:
        metadata = MetadataColumns(config, step.secrets)
        filled = [
            metadata.fill(p.batch, PageInfo(r, poll=1, page=i))
            for i, (r, p) in enumerate(zip(responses, decoded, strict=True), start=1)
            if p.batch is not None
        ]
        rows = _mask_rows(pa.Table.from_batches(filled).slice(0, max_rows), request)
    return replace(
        result,
        stage=ProbeStage.DONE,
        rows=rows,
        total_rows=sum(p.rows for p in decoded),
        dropped=sum(p.dropped for p in decoded),
        warnings=tuple(
            _mask(step.secrets, w) for w in (*(e for p in decoded for e in p.errors), *mismatch)
        ),
        notes=_trace(report),
    )


def _probe_gate(step: PollStep, report: PollReport) -> RateGate:
    """The rate gate of a trial poll: it waits for a budget reset (each wait one line of
    the trace) at most as long as the request timeout, and paces nothing (one table)."""
    clock = SystemClock()

    def waiting(until_ns: int | None, why: str) -> None:
        if until_ns is not None:
            wait_s = max(until_ns - clock.time_ns(), 0) / 1e9
            report.lines.append(f"  rate limited ({why}): waiting {wait_s:.1f} s for the reset")

    return RateGate(clock, on_wait=waiting, max_wait_s=step.request.timeout_s)


def _trace(report: PollReport) -> tuple[str, ...]:
    """The report's lines, or none for a poll of one plain request."""
    return tuple(report.lines) if len(report.lines) > 1 or report.capped else ()


def _infer_command(config: TableConfig) -> str:
    """The ``arroyo-lite infer`` line that fetches what this table fetches (header values as
    ``{{ VAR }}`` templates, so no secret)."""
    import shlex

    options = config.connector_options
    assert isinstance(options, PollingHttpOptions)
    words = ["arroyo-lite", "infer", options.endpoint]
    for name, template in options.headers:
        words += ["-H", f"{name}: {template}"]
    if options.method != "GET":
        words += ["--method", options.method]
    if options.body is not None:
        words += ["--body", options.body]
    return shlex.join([*words, "--name", config.name])


def _mask_rows(rows: pa.Table, request: HttpRequest) -> pa.Table:
    return mask_rows(rows, request.secrets)


def mask_rows(rows: pa.Table, secrets: Secrets) -> pa.Table:
    """``rows`` with every secret in a text value (nested ones too) replaced by ``****``.

    An API may echo the request's headers into its body (httpbin's ``/headers`` does): the
    shown rows are output too. Display-only, on at most ``max_rows`` rows.
    """
    if not secrets.values:
        return rows
    columns = [_mask_array(column.combine_chunks(), secrets) for column in rows.columns]
    return pa.Table.from_arrays(columns, schema=rows.schema)


def _mask_array(array: Any, secrets: Secrets) -> Any:
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        for value in sorted(secrets.values, key=len, reverse=True):
            array = pc.replace_substring(array, value, MASK)
        return array
    if pa.types.is_struct(kind):
        children = [_mask_array(array.field(i), secrets) for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(
            children, fields=list(kind), mask=array.is_null() if array.null_count else None
        )
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        # Offsets are kept: only the (flattened) values change, never their number.
        return type(array).from_arrays(
            array.offsets,
            _mask_array(array.values, secrets),
            type=kind,
            mask=array.is_null() if array.null_count else None,
        )
    return array


def _mask(secrets: Secrets, text: str) -> str:
    # A body may echo the request's headers back (httpbin's /headers does).
    return secrets.mask(text)


def _reason(status: int | None) -> str | None:
    if status is None:
        return None
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None
