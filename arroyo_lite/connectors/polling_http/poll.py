"""One poll of a ``polling_http`` table: the requests of a paginator, sent through an auth.

:class:`PollStep` is what the operator runs on every tick and what ``arroyo-lite test``
runs once (:mod:`.probe`), so both send exactly the same requests. :meth:`PollStep.pages`
walks the paginator's sequence (:mod:`.paging`, dlt's shape) and sends each request through
the auth flow (:mod:`.auth`, httpx's shape), yielding every page's 2xx response; a failed
request raises :func:`.http.fetch`'s errors and ends the poll.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace

import orjson

from arroyo_lite.connectors.polling_http.auth import (
    Auth,
    ClientCredentials,
    StaticHeaders,
    basic_header,
)
from arroyo_lite.connectors.polling_http.h1 import RawResponse
from arroyo_lite.connectors.polling_http.http import (
    CredentialsRejectedError,
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpSession,
    TransientHttpError,
    fetch,
)
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.paging import (
    BodyCursor,
    HeaderLink,
    JsonLink,
    OffsetLimit,
    PageNumber,
    Paginator,
    PagingError,
    Records,
    SinglePage,
)
from arroyo_lite.connectors.polling_http.poll_state import CursorSource
from arroyo_lite.connectors.polling_http.ratelimit import (
    MAX_EXHAUSTED_RETRIES,
    RateGate,
    retry_after_of,
)
from arroyo_lite.connectors.polling_http.request_template import RequestTemplate
from arroyo_lite.connectors.polling_http.templates import (
    SAMPLE_VALUES,
    PollValues,
    TemplateError,
    parse,
)
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.json_path import JsonPath, JsonPathError, value_path
from arroyo_lite.secrets import MissingVariableError, Secrets, substitute


@dataclass
class PollReport:
    """What one poll sent, for ``arroyo-lite test`` and the status: one line per request
    (masked), and whether the page cap stopped the poll.

    ``detailed = False`` counts pages only (the running source, which shows no request lines:
    masking and formatting a line per request is a share of a small poll's CPU)."""

    lines: list[str] = field(default_factory=list)
    pages: int = 0
    capped: bool = False
    #: The index in ``lines`` of each page's line (to add its row count).
    page_lines: list[int] = field(default_factory=list)
    #: Whether to write the request lines.
    detailed: bool = True

    def sent(self, request: HttpRequest, response: HttpResponse) -> None:
        if not self.detailed:
            return
        for note in response.withheld:
            self.lines.append(f"  redirect: {note}")
        self.lines.append(
            f"{request.method} {request.secrets.mask(request.url)} -> {response.status} "
            f"{response.reason} ({response.latency_s * 1000:.1f} ms, {len(response.body):,} bytes)"
        )

    def failed(self, request: HttpRequest, error: Exception) -> None:
        if self.detailed:
            self.lines.append(f"{request.method} {request.secrets.mask(request.url)} -> failed")

    def page(self) -> None:
        """A page was received (its line is the last one written)."""
        self.pages += 1
        if self.detailed:
            self.page_lines.append(len(self.lines) - 1)


@dataclass(frozen=True, slots=True)
class PollStep:
    """A table's request (without credentials), its auth, and how to page one poll.

    ``template``, when set, builds each poll's request from that poll's values
    (:mod:`.request_template`); ``request`` is then the one built for the first poll.
    """

    request: HttpRequest
    auth: Auth
    paginator: Callable[[], Paginator] = SinglePage
    template: RequestTemplate | None = None
    cursor: CursorSource = CursorSource()
    max_pages: int = 100

    @property
    def single_page(self) -> bool:
        """Whether a poll is one request (:class:`~.paging.SinglePage`, Arroyo's way)."""
        return self.paginator is SinglePage

    def request_for(self, values: PollValues | None) -> HttpRequest:
        """The base request of a poll with ``values`` (the fixed one without a template)."""
        if self.template is None or values is None or not self.template.per_poll:
            return self.request
        return self.template.render(values)

    @property
    def secrets(self) -> Secrets:
        """Every credential value this step sends: mask them in all output."""
        return self.request.secrets | self.auth.secrets

    def with_timeout(self, seconds: float) -> PollStep:
        """The same step with another request timeout (``arroyo-lite test --timeout``)."""
        template = self.template
        if template is not None:
            template = replace(template, timeout_s=seconds, _static=[])
        return replace(
            self, request=replace(self.request, timeout_s=seconds), template=template
        )

    def first_request(self, values: PollValues | None = None) -> HttpRequest:
        """The first request a poll sends, credentials included (to show it, masked)."""
        flow = self.auth.auth_flow(self.paginator().init_request(self.request_for(values)))
        try:
            return next(flow)
        finally:
            flow.close()

    async def pages(
        self,
        session: HttpSession,
        values: PollValues | None = None,
        report: PollReport | None = None,
        conditional: tuple[tuple[str, str], ...] = (),
        gate: RateGate | None = None,
    ) -> AsyncGenerator[HttpResponse, None]:
        """Send the poll's requests in order (built with ``values``), yielding each page;
        at most ``max_pages`` (``report.capped`` says the cap stopped it). A next link to
        another origin raises :class:`HttpError`. ``conditional`` headers go with the first
        request only; a 304 answer to it is the poll's only page. ``gate`` holds each
        request until the rate limits allow it (:mod:`.ratelimit`), pages included."""
        report = report if report is not None else PollReport()
        paginator = self.paginator()
        request = paginator.init_request(self.request_for(values))
        sending = request
        if conditional:
            sending = replace(request, headers=request.headers + conditional)
        while True:
            response = await self._send(session, sending, report, gate)
            report.page()
            yield response
            if response.status == 304:
                return
            try:
                paginator.update_state(response)
                if not paginator.has_next_page:
                    return
                if report.pages >= self.max_pages:
                    report.capped = True
                    return
                request = sending = paginator.update_request(request)
            except PagingError as e:
                raise HttpError(request.secrets.mask(f"HTTP request failed: {e}")) from None

    async def responses(
        self,
        session: HttpSession,
        values: PollValues | None = None,
        report: PollReport | None = None,
        conditional: tuple[tuple[str, str], ...] = (),
        gate: RateGate | None = None,
    ) -> list[HttpResponse]:
        """Every page :meth:`pages` yields, in order (what the operator keeps of a poll).

        A poll of one page (:class:`~.paging.SinglePage`, Arroyo's) is sent here directly:
        it is :meth:`pages`' first round, whose paginator then always stops, without the
        async generator's machinery (a share of a small poll's CPU)."""
        if not self.single_page:
            async with aclosing(self.pages(session, values, report, conditional, gate)) as pages:
                return [response async for response in pages]
        report = report if report is not None else PollReport()
        response = await self.one_page(session, report, values, conditional, gate)
        report.page()
        return [response]

    async def one_page(
        self,
        session: HttpSession,
        report: PollReport,
        values: PollValues | None = None,
        conditional: tuple[tuple[str, str], ...] = (),
        gate: RateGate | None = None,
        first: RawResponse | BaseException | None = None,
    ) -> HttpResponse:
        """The one request of a one-page poll (:attr:`single_page`), its page not counted
        in ``report``: :meth:`responses`' only page (what the polling operator sends on
        every tick, without the list around it).

        ``first``: the outcome of that request's lean exchange when the operator's callback
        polls sent it already (:mod:`.callback_polls`; only for a flow that is one request,
        :meth:`Auth.alone`): taken as its answer, after the rate gate let it go."""
        request = self.request_for(values)
        if conditional:
            request = replace(request, headers=request.headers + conditional)
        return await self._send(session, request, report, gate, first)

    async def _send(
        self,
        session: HttpSession,
        request: HttpRequest,
        report: PollReport,
        gate: RateGate | None = None,
        first: RawResponse | BaseException | None = None,
    ) -> HttpResponse:
        """One logical request through the auth flow (httpx's ``_send_handling_auth``).

        A 401/403 is thrown into the flow (``CredentialsRejectedError``), so a strategy can
        refresh its credentials and send again, or let it end the poll. A 403/429 saying
        the rate-limit budget is spent is waited out and sent again (at most
        :data:`~.ratelimit.MAX_EXHAUSTED_RETRIES` times); a 403 with ``Retry-After`` is a
        rate limit too (transient), not a rejection of the credentials.

        A strategy whose flow is one request whatever the answer (:meth:`Auth.alone`: the
        table's headers, basic, bearer, api_key) is not driven as a generator: the same
        request, answers and errors (a rejection thrown into such a flow comes back out)."""
        alone = self.auth.alone(request)
        if alone is not None:
            return await self._send_alone(session, alone, report, gate, first)
        assert first is None  # (sent ahead only for a flow of one request)
        flow = self.auth.auth_flow(request)
        exhausted = 0
        try:
            sent = next(flow)
            while True:
                if gate is not None and gate.holds(sent):
                    await gate.before(sent)
                try:
                    response = await fetch(session, sent)
                except (HttpError, TransientHttpError) as e:
                    report.failed(sent, e)
                    if self.auth.is_auth_request(sent):
                        raise auth_failed(e) from e
                    if _budget_spent(gate, e, exhausted):
                        exhausted += 1
                        continue
                    if (limited := _rate_limited_403(e)) is not None:
                        raise limited from e
                    if not isinstance(e, CredentialsRejectedError):
                        raise
                    try:
                        sent = flow.throw(e)
                    except StopIteration:
                        raise e from None
                    continue
                report.sent(sent, response)
                if gate is not None:
                    gate.observe(response.headers)
                try:
                    sent = flow.send(response)
                except StopIteration:
                    return response
        finally:
            flow.close()

    async def _send_alone(
        self,
        session: HttpSession,
        sent: HttpRequest,
        report: PollReport,
        gate: RateGate | None,
        first: RawResponse | BaseException | None = None,
    ) -> HttpResponse:
        """:meth:`_send` of a flow that is the one request ``sent`` (see there); ``first``:
        the outcome of its first sending, made already (the gate was asked then)."""
        exhausted = 0
        while True:
            if first is None and gate is not None and gate.holds(sent):
                await gate.before(sent)
            try:
                response = await fetch(session, sent, first)
            except (HttpError, TransientHttpError) as e:
                first = None
                report.failed(sent, e)
                if _budget_spent(gate, e, exhausted):
                    exhausted += 1
                    continue
                if (limited := _rate_limited_403(e)) is not None:
                    raise limited from e
                raise
            report.sent(sent, response)
            if gate is not None:
                gate.observe(response.headers)
            return response


def _budget_spent(
    gate: RateGate | None, error: HttpError | TransientHttpError, retries: int
) -> bool:
    """Whether ``error`` is a 403/429 saying the rate-limit budget is spent, to be waited
    out (by the gate) and sent again: at most :data:`~.ratelimit.MAX_EXHAUSTED_RETRIES`."""
    return (
        gate is not None
        and error.status_code in (403, 429)
        and retries < MAX_EXHAUSTED_RETRIES
        and gate.exhausted_answer(error.headers)
    )


def _rate_limited_403(error: HttpError | TransientHttpError) -> TransientHttpError | None:
    """A 403 with ``Retry-After`` as the rate limit it is (transient), else ``None``."""
    if isinstance(error, CredentialsRejectedError) and error.status_code == 403:
        wait = retry_after_of(error.headers, time.time())
        if wait is not None:
            return TransientHttpError(
                error.message, status_code=403, retry_after=wait,
                body_excerpt=error.body_excerpt, headers=error.headers,
            )  # fmt: skip
    return None


def auth_failed(error: HttpError | TransientHttpError) -> HttpError | TransientHttpError:
    """``error`` of a token request, reworded ``auth failed: ...`` (with the OAuth2 ``error``
    code of an RFC 6749 section 5.2 answer), of the same kind (so retried the same way)."""
    cause = error.message.removeprefix("HTTP request failed: ")
    code = None
    if error.body_excerpt:
        try:
            answer = orjson.loads(error.body_excerpt)
            code = answer.get("error") if isinstance(answer, dict) else None
        except orjson.JSONDecodeError:
            pass
    message = f"auth failed: token endpoint: {cause}" + (f" ({code})" if code else "")
    if isinstance(error, TransientHttpError):
        return TransientHttpError(
            message,
            status_code=error.status_code,
            retry_after=error.retry_after,
            body_excerpt=error.body_excerpt,
        )
    kind = type(error)
    return kind(message, status_code=error.status_code, body_excerpt=error.body_excerpt)


def poll_step(
    options: PollingHttpOptions,
    env: Mapping[str, str],
    values: PollValues | None = None,
    now: Callable[[], float] = time.monotonic,
) -> PollStep:
    """A table's poll step: its request template, its fixed ``headers`` as
    :class:`StaticHeaders`, one page. ``values`` build the first request (default: the
    sample values validation uses).

    Raises :class:`~arroyo_lite.errors.FatalSourceError` (``Environment variable NAME not
    found``, an unknown ``[[ value ]]``) when a template cannot be built: no retry fixes that.
    """
    try:
        per_poll_headers = tuple(
            (name, t) for name, text in options.headers if (t := parse(text)).per_poll
        )
        fixed = tuple(
            (name, text) for name, text in options.headers
            if name not in {n for n, _ in per_poll_headers}
        )  # fmt: skip
        template = RequestTemplate(
            method=options.method,
            endpoint=parse(options.endpoint),
            query=tuple((name, parse(text)) for name, text in options.query),
            headers=per_poll_headers,
            body=parse(options.body) if options.body is not None else None,
            timeout_s=options.timeout_ms / 1000.0,
            max_body_bytes=options.max_body_bytes,
            env=env,
        )
        cursor = CursorSource(
            path=value_path(options.cursor_path) if options.cursor_path else None,
            header=options.cursor_header,
            initial=options.cursor_initial,
        )
        request = template.render(values or SAMPLE_VALUES)
        paginator = paginator_for(options)
        auth = auth_for(options, env, fixed, now)
    except MissingVariableError as e:
        raise FatalSourceError(str(e), hint="set the variable and start the table again") from e
    except (TemplateError, JsonPathError) as e:
        raise FatalSourceError(str(e), hint=getattr(e, "hint", None)) from e
    return PollStep(
        request,
        auth,
        paginator,
        template=template,
        cursor=cursor,
        max_pages=options.pagination_max_pages,
    )


def auth_for(
    options: PollingHttpOptions,
    env: Mapping[str, str],
    headers: tuple[tuple[str, str], ...],
    now: Callable[[], float],
) -> Auth:
    """The table's headers plus the credentials of its ``auth.type``.
    Raises ``MissingVariableError`` for an unset variable."""

    def value(text: str | None) -> tuple[str, Secrets]:
        return substitute(text or "", env)

    kind = options.auth_type
    extra: list[tuple[str, str]] = []
    params: list[tuple[str, str]] = []
    secrets = Secrets()
    if kind == "basic":
        (user, s1), (password, s2) = value(options.auth_username), value(options.auth_password)
        header = basic_header(user, password)
        extra.append(("Authorization", header))
        secrets = s1 | s2 | Secrets.of([header.removeprefix("Basic ")])
    elif kind == "bearer":
        token, secrets = value(options.auth_token)
        extra.append(("Authorization", f"Bearer {token}"))
        secrets |= Secrets.of([token])
    elif kind == "api_key":
        key, secrets = value(options.auth_api_key_value)
        secrets |= Secrets.of([key])
        pair = (options.auth_api_key_name, key)
        (params if options.auth_api_key_location == "query" else extra).append(pair)
    inner = StaticHeaders.from_templates(headers, env)
    inner = StaticHeaders(inner.headers + tuple(extra), inner.secrets | secrets, tuple(params))
    if kind != "oauth2_client_credentials":
        return inner
    (token_url, s1), (client_id, s2) = value(options.auth_token_url), value(options.auth_client_id)
    client_secret, s3 = value(options.auth_client_secret)
    return ClientCredentials(
        inner,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        scope=options.auth_scope,
        client_auth=options.auth_client_auth,
        timeout_s=options.timeout_ms / 1000.0,
        secrets=s1 | s2 | s3 | Secrets.of([client_secret]),
        now=now,
    )


def paginator_for(options: PollingHttpOptions) -> Callable[[], Paginator]:
    """A fresh paginator per poll, of the table's ``pagination.type`` (paths compiled once).
    Raises :class:`JsonPathError` for a bad path (validation reports it first)."""
    kind = options.pagination_type

    def path(text: str | None) -> JsonPath | None:
        return value_path(text) if text else None

    has_more = path(options.pagination_has_more_path)
    records = Records(path(options.pagination_records_path))
    total = path(options.pagination_total_path)
    if kind == "header_link":
        return HeaderLink
    if kind == "json_link":
        next_url = value_path(options.pagination_next_url_path or "next")
        return lambda: JsonLink(next_url)
    if kind == "cursor":
        cursor = value_path(options.pagination_cursor_path or "next_cursor")
        param = options.pagination_cursor_param
        return lambda: BodyCursor(cursor, param, has_more)
    if kind == "offset":
        o = options
        return lambda: OffsetLimit(
            o.pagination_limit, o.pagination_offset_param, o.pagination_limit_param,
            records, total, has_more,
        )  # fmt: skip
    if kind == "page_number":
        param, start = options.pagination_page_param, options.pagination_start_page
        return lambda: PageNumber(param, start, records, total, has_more)
    return SinglePage
