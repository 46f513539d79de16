"""One HTTP request of a ``polling_http`` table: building it, sending it, and naming what failed.

Used by the one poll step (:mod:`.poll`) that the polling operator and ``arroyo-lite test``
(:mod:`.probe`) share, so both send exactly the same request and report failures in the same
words.

* :class:`HttpRequest` is a fully resolved request; ``HttpRequest.secrets`` holds the values
  substituted into it (by the auth strategy, :mod:`.auth`), for masking.
* :func:`fetch` sends it on a shared session (:mod:`.client`: plain ``GET`` requests through
  the lean client, :mod:`.h1`, the rest through aiohttp, imported only then) or on an aiohttp
  session, and returns an :class:`HttpResponse`, or raises:
  :class:`TransientHttpError` (a ``TransientSourceError``) for timeouts, connection errors, 429
  and 5xx (with ``retry_after`` from ``Retry-After`` on 429/503), and :class:`HttpError` (a
  plain ``SourceError``) for other non-2xx statuses, oversized bodies and invalid requests.
  Messages follow Arroyo's wording (``HTTP request failed: http server responded with 503``)
  and never contain a secret.
* Redirects (at most :data:`MAX_REDIRECTS`) are followed here, not by aiohttp, so that
  secrets stay with their origin: on a redirect to another scheme, host or port, every header
  whose value holds a secret (``{{ VAR }}`` values, not only ``Authorization``) and
  ``Authorization`` itself are not sent, nor a 307/308 body holding one; the response lists
  what was withheld (``HttpResponse.withheld``, shown by ``arroyo-lite test``).

This module imports aiohttp only in the functions that send through it (its import costs
~0.1 s at start-up, which a run whose requests all go the lean path never pays); its
errors are told apart without importing it (:func:`_aiohttp_failure`).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from arroyo_lite._version import __version__
from arroyo_lite.connectors.polling_http import h1
from arroyo_lite.connectors.polling_http.backoff import parse_retry_after
from arroyo_lite.connectors.polling_http.client import SharedSession
from arroyo_lite.errors import SourceError, TransientSourceError
from arroyo_lite.secrets import Secrets, redact_url

if TYPE_CHECKING:
    import aiohttp

#: What :func:`fetch` sends on: a shared session (lean client first), or an aiohttp session.
HttpSession: TypeAlias = "SharedSession | aiohttp.ClientSession"

#: Sent unless the table's ``headers`` set one (Arroyo sends none; aiohttp would add its own).
USER_AGENT = f"arroyo-lite/{__version__}"
#: reqwest's default, which Arroyo inherits.
MAX_REDIRECTS = 10
#: Statuses that redirect (with a ``Location``); 301-303 turn a non-HEAD request into a GET
#: without a body, 307 and 308 keep the method and the body (as reqwest and browsers).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Statuses worth retrying with backoff; ``Retry-After`` is honoured on the first two.
RETRY_AFTER_STATUSES = frozenset({429, 503})
#: How much of a non-2xx body is read for logs and ``test`` output (bytes, then characters).
EXCERPT_BYTES = 1024
EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A fully resolved request. ``headers`` hold real (secret) values: never print them raw;
    use :meth:`masked_headers`."""

    method: str
    url: str
    # Kept out of repr: a request in a traceback or a debug log must not show a secret.
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes | None
    timeout_s: float
    max_body_bytes: int
    secrets: Secrets = field(default_factory=Secrets)
    # Derived once here rather than on every poll: at 1,000 polls/s, re-parsing the URL and
    # rebuilding headers and timeouts is a measurable share of the CPU (benchmarks/scale.py).
    _url: URL = field(init=False, repr=False, compare=False)
    _send_headers: dict[str, str] = field(init=False, repr=False, compare=False)
    _skip_headers: frozenset[str] = field(init=False, repr=False, compare=False)
    #: The head to write on the lean path (:mod:`.h1`), ``None`` if the request needs aiohttp.
    _lean_head: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = dict(self.headers)
        names = {name.lower() for name in headers}
        skip = set()
        if "user-agent" not in names:
            headers["User-Agent"] = USER_AGENT
        if "content-type" not in names:
            # aiohttp would label a bytes body application/octet-stream; Arroyo sends no type.
            skip.add("Content-Type")
        object.__setattr__(self, "_send_headers", headers)
        object.__setattr__(self, "_skip_headers", frozenset(skip))
        object.__setattr__(self, "_url", URL(self.url))
        object.__setattr__(
            self, "_lean_head", h1.request_head(self.method, self._url, headers, self.body)
        )

    def masked_headers(self) -> list[tuple[str, str]]:
        """The headers with every substituted secret replaced by ``****``."""
        return [(name, self.secrets.mask(value)) for name, value in self.headers]


@dataclass(slots=True)
class HttpResponse:
    """A 2xx response read in full (body already decompressed, at most ``max_body_bytes``).

    Not frozen (a frozen dataclass sets each field through ``object.__setattr__``, a share
    of a small poll's CPU): made once per answer and handed over, never changed."""

    status: int
    reason: str
    url: str
    headers: CIMultiDictProxy[str]
    body: bytes
    latency_s: float
    #: What redirects kept from another origin (``X-Api-Key not sent to http://b:81``).
    withheld: tuple[str, ...] = ()

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


class HttpError(SourceError):
    """A request failed in a way retrying soon will not fix (404, an oversized body).

    ``body_excerpt`` (non-2xx answers only) is the start of the answer's body, masked and
    shortened, for logs and ``arroyo-lite test``; it is not part of the message.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body_excerpt: str | None = None,
        headers: CIMultiDictProxy[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        #: The answer's headers (rate-limit headers of a 403, :mod:`.ratelimit`).
        self.headers = headers


class CredentialsRejectedError(HttpError):
    """The server answered 401 or 403: the credentials are missing, wrong or not enough.

    (The operator puts the table in the ``unauthorized`` state; an auth strategy may
    refresh its credentials once, :mod:`.auth`.)
    """


class TransientHttpError(TransientSourceError):
    """A request failed in a way worth retrying with backoff (timeouts, 429, 5xx, ...)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
        body_excerpt: str | None = None,
        headers: CIMultiDictProxy[str] | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, hint=hint)
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.headers = headers


def _failed(cause: str, request: HttpRequest) -> str:
    return request.secrets.mask(f"HTTP request failed: {cause}")


async def fetch(
    session: HttpSession,
    request: HttpRequest,
    first: h1.RawResponse | BaseException | None = None,
) -> HttpResponse:
    """Send ``request`` once and read the whole body.

    Returns the response only for 2xx statuses and 304 (empty body). A 401 or 403 raises
    :class:`CredentialsRejectedError` (an :class:`HttpError`). Raises
    :class:`TransientHttpError` for timeouts (``timeout_s`` bounds the whole request, body
    included), connection and DNS errors, 429 and 5xx; :class:`HttpError` for other
    statuses and bodies over ``max_body_bytes`` (checked against the Content-Length of an
    uncompressed body first, then while streaming the decompressed body; exactly the
    maximum is allowed). Never
    raises anything else for a network problem.

    On a :class:`~.client.SharedSession`, a plain ``GET`` goes through the lean keep-alive
    client (:mod:`.h1`, same contract, a fraction of aiohttp's CPU); everything else through
    aiohttp.

    ``first``: the outcome of the request's lean exchange when it was sent already (the
    operator's callback polls, :mod:`.callback_polls`, hand over what they do not take):
    answered, raised and redirected here exactly as if this call had sent it.
    """
    started = time.perf_counter()
    lean = _lean_pool(session)
    try:
        sent, withheld = request, list[str]()
        for _ in range(MAX_REDIRECTS + 1):
            if lean is not None and sent._lean_head is not None:
                timeout_s = request.timeout_s - (time.perf_counter() - started)
                hop = await _lean_hop(lean, sent, max(timeout_s, 0.001), started, first)
                first = None
            else:
                assert first is None  # (only a lean exchange is ever sent ahead)
                # The timeout bounds the whole fetch, as aiohttp's does across the redirects
                # it follows: what earlier redirects took is spent.
                timeout_s = request.timeout_s
                if sent is not request:
                    timeout_s = max(timeout_s - (time.perf_counter() - started), 0.001)
                hop = await _aiohttp_hop(session, sent, timeout_s, started)
            if isinstance(hop, HttpResponse):
                return replace(hop, withheld=tuple(withheld)) if withheld else hop
            sent, kept_back = _redirected(sent, *hop)
            withheld += kept_back
        raise HttpError(_failed(f"too many redirects (more than {MAX_REDIRECTS})", request))
    except TimeoutError as e:
        raise TransientHttpError(
            _failed(f"operation timed out after {request.timeout_s * 1000:.0f} ms", request),
            hint="the server is slow or unreachable; raise 'timeout_ms' if it is just slow",
        ) from e
    # (The lean client's errors carry the same facts as aiohttp's: the same words as
    # _aiohttp_failure's.)
    except h1.ConnectFailed as e:
        raise TransientHttpError(
            _failed(f"error connecting to {e.host}:{e.port}: {e.os_error.strerror or e}", request)
        ) from e
    except h1.BadBody as e:
        raise TransientHttpError(
            _failed(f"error reading response body: {_one_line(e)}", request)
        ) from e
    except h1.Disconnected as e:
        raise TransientHttpError(_failed(f"ServerDisconnectedError: {e}", request)) from e
    except h1.BadResponse as e:
        raise TransientHttpError(_failed(f"ClientResponseError: {_one_line(e)}", request)) from e
    except h1.BodyTooLarge as e:
        if e.declared is not None:
            cause = (
                f"content length sent by server exceeds maximum limit ({e.declared} > {e.limit})"
            )
        else:
            cause = f"response body exceeds max length {e.limit}"
        raise HttpError(_failed(cause, request), status_code=e.status) from e
    except Exception as e:
        # aiohttp's errors come before ValueError: some are ValueErrors too (a TLS certificate
        # failure is an ssl.CertificateError), yet they are connection failures, not bad input.
        failure = _aiohttp_failure(e, request)
        if failure is None and isinstance(e, (ValueError, UnicodeError)):
            # aiohttp rejects some header values or bodies only when sending; not retryable.
            failure = HttpError(request.secrets.mask(f"invalid request: {e}"))
        if failure is None:
            raise  # ours already (an HttpError of a status), or not a network problem
        raise failure from e


def _aiohttp_failure(error: Exception, request: HttpRequest) -> SourceError | None:
    """What :func:`fetch` raises for aiohttp's ``error``; ``None`` if it is not aiohttp's.

    aiohttp is looked up, not imported: an aiohttp error exists only once it is imported."""
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None or not isinstance(error, aiohttp.ClientError):
        return None
    if isinstance(error, aiohttp.InvalidURL):
        return HttpError(_failed(f"invalid URL: {error}", request))
    if isinstance(error, aiohttp.ClientConnectorError):
        where, why = f"{error.host}:{error.port}", error.os_error.strerror or error
        return TransientHttpError(_failed(f"error connecting to {where}: {why}", request))
    if isinstance(error, aiohttp.ClientPayloadError):
        return TransientHttpError(
            _failed(f"error reading response body: {_one_line(error)}", request)
        )
    # Server disconnects, malformed responses and the like: worth another try.
    return TransientHttpError(_failed(f"{type(error).__name__}: {_one_line(error)}", request))


async def _aiohttp_hop(
    session: HttpSession, sent: HttpRequest, seconds: float, started: float
) -> HttpResponse | tuple[int, URL]:
    """One request through aiohttp, bounded by ``seconds``: the final response (its latency
    counted from ``started``), or a redirect's status and target. On a shared session, the
    first such request makes its aiohttp session (and imports aiohttp)."""
    if isinstance(session, SharedSession):
        session = session.aiohttp_session()
    async with session.request(
        sent.method,
        sent._url,
        headers=sent._send_headers,
        data=sent.body,
        skip_auto_headers=sent._skip_headers,
        timeout=_aiohttp_timeout(seconds),
        allow_redirects=False,
    ) as resp:
        if resp.status in REDIRECT_STATUSES and (location := resp.headers.get("Location")):
            return resp.status, resp.url.join(URL(location))
        if resp.status == 304:
            # Only ever the answer to a conditional request: "unchanged", no body.
            body = b""
        elif not 200 <= resp.status < 300:
            excerpt = await _excerpt(resp, sent)
            _raise_for_status(resp.status, resp.headers, excerpt, sent)
        else:
            body = await _read_capped(resp, sent)
        return HttpResponse(
            status=resp.status,
            reason=resp.reason or "",
            url=str(resp.url),
            headers=resp.headers,
            body=body,
            latency_s=time.perf_counter() - started,
        )


@lru_cache(maxsize=256)
def _aiohttp_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """aiohttp's timeout of ``seconds``, made once per value (at 1,000 polls/s, rebuilding
    it per request is a measurable share of the CPU, benchmarks/scale.py)."""
    import aiohttp

    return aiohttp.ClientTimeout(total=seconds)


async def _lean_hop(
    pool: h1.Pool,
    sent: HttpRequest,
    seconds: float,
    started: float,
    first: h1.RawResponse | BaseException | None = None,
) -> HttpResponse | tuple[int, URL]:
    """One plain ``GET`` through :mod:`.h1` (its errors are mapped by :func:`fetch`);
    ``first``: its outcome when sent already (:meth:`.h1.Pool.send`)."""
    assert sent._lean_head is not None
    raw = await pool.send(sent._url, sent._lean_head, sent.max_body_bytes, seconds, first)
    return lean_answer(sent, raw, started)


def lean_answer(
    sent: HttpRequest, raw: h1.RawResponse, started: float
) -> HttpResponse | tuple[int, URL]:
    """The lean client's answer ``raw`` to ``sent`` as :func:`fetch` takes it: the response
    (2xx and 304; its latency counted from ``started``, a ``perf_counter`` time), a
    redirect's status and target, or the status's error raised."""
    headers = CIMultiDictProxy(CIMultiDict(raw.headers))
    status = raw.status
    if status in REDIRECT_STATUSES and (location := headers.get("Location")):
        return status, sent._url.join(URL(location))
    if not 200 <= status < 300 and status != 304:
        head = raw.body[:EXCERPT_BYTES]
        excerpt = _mask_excerpt(head, sent) if head else "<no body>"
        _raise_for_status(status, headers, excerpt, sent)
    return HttpResponse(
        status=status,
        reason=raw.reason,
        url=sent.url,
        headers=headers,
        body=raw.body if status != 304 else b"",
        latency_s=time.perf_counter() - started,
    )


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host or "", url.port)


def _redirected(
    request: HttpRequest, status: int, target: URL
) -> tuple[HttpRequest, list[str]]:
    """The request to send to ``target`` after a ``status`` redirect, and what it withholds.

    To another origin, a header holding a secret (or named ``Authorization``) is not sent,
    nor a 307/308 body holding one: a secret goes only where it was written for.
    """
    method, body = request.method, request.body
    if status in (301, 302, 303) and method != "HEAD":
        method, body = "GET", None
    headers = request.headers
    withheld: list[str] = []
    if _origin(target) != _origin(request._url):
        secret = request.secrets.mask
        keep = [(n, v) for n, v in headers if n.lower() != "authorization" and secret(v) == v]
        withheld = [n for n, v in headers if (n, v) not in keep]
        text = body.decode("utf-8", "replace") if body is not None else ""
        if secret(text) != text:
            withheld.append("the request body")
            body = None
        headers = tuple(keep)
        # A server may copy our query into Location: a parameter holding a secret stays too.
        query = [(k, v) for k, v in target.query.items() if secret(v) == v]
        if len(query) != len(target.query):
            dropped = [k for k, v in target.query.items() if secret(v) != v]
            withheld += [f"query parameter '{k}'" for k in dropped]
            target = target.with_query(query)
        where = redact_url(str(target.origin()))
        withheld = [f"{name} not sent to {where} (another origin)" for name in withheld]
    return (
        replace(request, method=method, url=str(target), headers=headers, body=body),
        withheld,
    )


def _one_line(error: Exception) -> str:
    """``error``'s text on one line, without aiohttp's internal ``400, message:`` prefix
    (its parser errors carry a pseudo status that the server never sent)."""
    text = " ".join(str(error).split())
    return re.sub(r"^\d{3}, message: ", "", text) or type(error).__name__


def _raise_for_status(
    status: int, headers: CIMultiDictProxy[str], excerpt: str, request: HttpRequest
) -> NoReturn:
    message = _failed(f"http server responded with {status}", request)
    if status == 429 or status >= 500:
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(headers.get("Retry-After"), time.time())
        raise TransientHttpError(
            message, status_code=status, retry_after=retry_after, body_excerpt=excerpt,
            headers=headers,
        )  # fmt: skip
    kind = CredentialsRejectedError if status in (401, 403) else HttpError
    raise kind(message, status_code=status, body_excerpt=excerpt, headers=headers)


async def _excerpt(resp: aiohttp.ClientResponse, request: HttpRequest) -> str:
    """The start of an error answer's body, one line, masked (Arroyo logs it the same way)."""
    import aiohttp  # (a response of aiohttp's: imported already)

    try:
        head = await resp.content.read(EXCERPT_BYTES)
    except aiohttp.ClientError:
        return "<body unreadable>"
    if not head:
        return "<no body>"
    return _mask_excerpt(head, request)


def _mask_excerpt(head: bytes, request: HttpRequest) -> str:
    """``head`` (at most :data:`EXCERPT_BYTES` of a body) as one masked, shortened line."""
    # Mask first, then fold whitespace and cut: a secret split by either is never shown.
    secrets = request.secrets
    # The body may go on after the head read: the head may end inside a secret.
    text = secrets.mask_and_cut(
        head.decode("utf-8", "replace"), None, cut_before=len(head) == EXCERPT_BYTES
    )
    return secrets.mask_and_cut(" ".join(text.split()), EXCERPT_CHARS)


async def _read_capped(resp: aiohttp.ClientResponse, request: HttpRequest) -> bytes:
    limit = request.max_body_bytes
    # The cap is on the decompressed body; a Content-Length under a Content-Encoding counts
    # compressed bytes, so only the streaming check below can judge such a body.
    encoded = "Content-Encoding" in resp.headers
    if resp.content_length is not None and not encoded and resp.content_length > limit:
        raise HttpError(
            _failed(
                f"content length sent by server exceeds maximum limit "
                f"({resp.content_length} > {limit})",
                request,
            ),
            status_code=resp.status,
        )
    if resp.content_length is not None and not encoded:
        # The length is known and uncompressed: one read, no chunk bookkeeping (hot path).
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise HttpError(
                _failed(f"response body exceeds max length {limit}", request),
                status_code=resp.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _lean_pool(session: HttpSession) -> h1.Pool | None:
    """The lean pool of ``session`` (``None``: not a shared session, or the lean path off)."""
    return session.lean if isinstance(session, SharedSession) else None
