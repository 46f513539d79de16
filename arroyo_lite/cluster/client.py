"""An aiohttp client for the pipeline endpoints of Arroyo's REST API (see ``contract``).

:class:`ArroyoClient` is used as ``async with ArroyoClient(api) as client: ...``. Each method is
one request and returns parsed values; every way a call can fail becomes a one-line
:class:`~arroyo_lite.errors.ClusterError`: the API unreachable, no answer within ``timeout``
seconds, a server that is not an Arroyo API (HTML, not JSON), or an error answer (Arroyo's
``{"error": ...}`` text, with the status).

The API key (Arroyo's ``static-api-key`` auth mode) is sent as ``Authorization: Bearer`` to
the API's own origin only, and never appears in a message or a repr.
"""

from __future__ import annotations

import json
import os
import socket
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from arroyo_lite._version import __version__
from arroyo_lite.cluster.contract import (
    API_BASE,
    ARROYO_VERSION,
    DEFAULT_API,
    Job,
    JobLogMessage,
    Pipeline,
    SqlDiagnostic,
    error_text,
    parse_job_errors,
    parse_jobs,
    parse_pipeline,
    parse_pipelines,
    parse_validation,
)
from arroyo_lite.errors import ClusterError

DEFAULT_TIMEOUT = 30.0
#: Page size when listing pipelines (Arroyo's default is 10).
PAGE = 100


def api_base(api: str) -> URL:
    """The ``/api/v1`` base of the API at ``api``.

    Accepts ``host:port``, ``http(s)://host:port``, and the same with ``/api`` or ``/api/v1``.
    Raises :class:`ClusterError` for anything that is not an http(s) address.
    """
    text = api.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        url = URL(text)
    except ValueError as e:
        raise ClusterError(f"invalid API address '{api}': {e}") from e
    if url.scheme not in ("http", "https") or not url.host:
        raise ClusterError(
            f"invalid API address '{api}'", hint=f"give Arroyo's API address, e.g. {DEFAULT_API}"
        )
    path = url.path.rstrip("/")
    for suffix in (API_BASE, "/api"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return url.with_path(path + API_BASE).with_query(None).with_fragment(None)


class ArroyoClient:
    """Calls to one Arroyo API (``api``: see :func:`api_base`)."""

    def __init__(
        self, api: str, *, timeout: float = DEFAULT_TIMEOUT, api_key: str | None = None
    ) -> None:
        self.base = api_base(api)
        self.timeout = timeout
        self._headers = {"User-Agent": f"arroyo-lite/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ArroyoClient({str(self.base)!r})"  # (never the headers: they hold the key)

    async def __aenter__(self) -> ArroyoClient:
        self._session = aiohttp.ClientSession(
            headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- endpoints -----------------------------------------------------------------------

    async def validate_query(self, query: str) -> tuple[SqlDiagnostic, ...]:
        """``POST /pipelines/validate_query``: the planning errors (empty when it plans)."""
        body = await self._call("POST", "pipelines/validate_query", {"query": query, "udfs": []})
        return parse_validation(body)

    async def create_pipeline(self, post: dict[str, Any]) -> Pipeline:
        """``POST /pipelines`` with a ``PipelinePost`` body: the created pipeline."""
        return parse_pipeline(await self._call("POST", "pipelines", post))

    async def pipelines(self, *, page_size: int = PAGE) -> list[Pipeline]:
        """``GET /pipelines`` (newest first), following the pages (``starting_after`` the last
        id of a page)."""
        found: list[Pipeline] = []
        after: str | None = None
        while True:
            query = {"limit": str(page_size)} | ({"starting_after": after} if after else {})
            page, more = parse_pipelines(await self._call("GET", "pipelines", query=query))
            found.extend(page)
            if not more or not page:
                return found
            after = page[-1].id

    async def pipeline(self, pipeline_id: str) -> Pipeline:
        """``GET /pipelines/{id}``."""
        return parse_pipeline(await self._call("GET", f"pipelines/{pipeline_id}"))

    async def jobs(self, pipeline_id: str) -> tuple[Job, ...]:
        """``GET /pipelines/{id}/jobs``."""
        return parse_jobs(await self._call("GET", f"pipelines/{pipeline_id}/jobs"))

    async def job_errors(self, pipeline_id: str, job_id: str) -> tuple[JobLogMessage, ...]:
        """``GET /pipelines/{id}/jobs/{job_id}/errors`` (the first page)."""
        return parse_job_errors(
            await self._call("GET", f"pipelines/{pipeline_id}/jobs/{job_id}/errors")
        )

    async def stop(self, pipeline_id: str, mode: str) -> Pipeline:
        """``PATCH /pipelines/{id}`` with ``{"stop": mode}``."""
        return parse_pipeline(await self._call("PATCH", f"pipelines/{pipeline_id}", {"stop": mode}))

    async def delete(self, pipeline_id: str) -> None:
        """``DELETE /pipelines/{id}`` (Arroyo wants its job stopped, finished or failed)."""
        await self._call("DELETE", f"pipelines/{pipeline_id}", empty_ok=True)

    # -- one request ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        empty_ok: bool = False,
    ) -> Any:
        if self._session is None:
            raise RuntimeError("use ArroyoClient as 'async with ArroyoClient(...) as client'")
        url = self.base / path
        if query:
            url = url.with_query(query)
        where = f"the Arroyo API at {self.base}"
        try:
            # No redirects: the API key must not follow one to another origin.
            async with self._session.request(
                method, url, json=body, allow_redirects=False
            ) as response:
                status, reason = response.status, response.reason or ""
                content_type = response.content_type
                location = response.headers.get("Location")
                raw = await response.read()
        except TimeoutError as e:
            raise ClusterError(
                f"{where} did not answer within {self.timeout:g} s",
                hint="check the address, or give it longer with --timeout",
            ) from e
        except aiohttp.ClientConnectorError as e:
            raise ClusterError(
                f"cannot reach {where}: {_reason(e.os_error)}",
                hint=f"is the cluster running? Arroyo's API listens on {DEFAULT_API} by default",
            ) from e
        except aiohttp.ClientError as e:
            raise ClusterError(f"request to {where} failed: {e.__class__.__name__}: {e}") from e
        if 300 <= status < 400:
            raise ClusterError(
                f"{where} redirected {method} /{path} ({status} {reason}) to {location}",
                status=status,
                hint="give the address of Arroyo's API server itself with --api",
            )
        return _answer(method, path, status, reason, content_type, raw, where, empty_ok)


def _answer(
    method: str,
    path: str,
    status: int,
    reason: str,
    content_type: str,
    raw: bytes,
    where: str,
    empty_ok: bool,
) -> Any:
    """The JSON body of an answer, or the :class:`ClusterError` it stands for."""
    body: Any = None
    is_json = False
    if raw.strip():
        try:
            body = json.loads(raw)
            is_json = True
        except ValueError:
            pass
    shown = f"{status} {reason}".strip()
    if status >= 400:
        message = error_text(body)
        if status == 401:
            raise ClusterError(
                f"{where} refused the request ({shown})",
                status=status,
                hint="set ARROYO_API_KEY to the cluster's API key",
            )
        if message is not None:
            hint = None
            if status == 404 and message == "Route not found":
                hint = f"is this Arroyo {ARROYO_VERSION} or later? Its routes are under {API_BASE}"
            raise ClusterError(f"Arroyo API: {shown}: {_one_line(message)}", status=status,
                               hint=hint)  # fmt: skip
        raise ClusterError(
            f"{where} answered {method} /{path} with {shown}"
            + ("" if is_json else f" ({content_type or 'no content type'}, not an Arroyo error)"),
            status=status,
        )
    if not is_json:
        if empty_ok and not raw.strip():
            return None
        raise ClusterError(
            f"{where} is not an Arroyo API: it answered {method} /{path} with "
            f"{content_type or 'no content type'}, not JSON",
            status=status,
            hint=f"give the address of Arroyo's API server, e.g. {DEFAULT_API}",
        )
    return body


def _reason(error: OSError) -> str:
    """``connection refused``, ``cannot resolve the host name``, ... (no errno numbers)."""
    if isinstance(error, socket.gaierror):
        return "cannot resolve the host name"
    if error.errno:
        return os.strerror(error.errno).lower()
    return str(error) or error.__class__.__name__


def _one_line(text: str) -> str:
    """Arroyo's multi-line messages ("Failed to plan query:\\n * ...") on one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
