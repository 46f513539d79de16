"""The request a table sends on one poll, built from its templated options.

:class:`RequestTemplate` holds the endpoint, the ``query.*`` parameters, the headers that
carry per-poll values, and the body, each parsed once (:mod:`.templates`). :meth:`render`
builds the :class:`~.http.HttpRequest` of one poll: ``{{ VAR }}`` values from the
environment (kept as the request's secrets), ``[[ value ]]`` from the poll's
:class:`~.templates.PollValues`, query parameters URL-encoded and merged into the endpoint's
own query (a parameter of the same name replaces the endpoint's). A template with no
per-poll value renders the same request every time: :meth:`render` then returns the one
built first (building a request costs at 1,000 polls/s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from yarl import URL

from arroyo_lite.connectors.polling_http.http import HttpRequest
from arroyo_lite.connectors.polling_http.templates import PollRef, PollValues, Template
from arroyo_lite.secrets import Secrets, url_password


def _quote_in_url(value: str) -> str:
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    method: str
    endpoint: Template
    query: tuple[tuple[str, Template], ...]
    headers: tuple[tuple[str, Template], ...]
    body: Template | None
    timeout_s: float
    max_body_bytes: int
    env: Mapping[str, str] = field(repr=False)
    _static: list[HttpRequest] = field(default_factory=list, repr=False, compare=False)
    #: The per-poll values (``now``, ``last_success``, ``cursor``) this request names: read
    #: on every poll, so derived once from the parts.
    uses: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = [self.endpoint, *(t for _, t in self.query), *(t for _, t in self.headers)]
        if self.body is not None:
            parts.append(self.body)
        uses = frozenset(p.name for t in parts for p in t.parts if isinstance(p, PollRef))
        object.__setattr__(self, "uses", uses)

    @property
    def per_poll(self) -> bool:
        """Whether any part changes from poll to poll (it names a per-poll value)."""
        return bool(self.uses)

    def render(self, values: PollValues | None) -> HttpRequest:
        """This poll's request. Raises ``MissingVariableError`` for an unset variable."""
        if self._static:
            return self._static[0]
        secrets = Secrets()
        url, found = self.endpoint.render(self.env, values, _quote_in_url)
        # A password in the endpoint's userinfo is a credential too.
        secrets |= found | Secrets.of([url_password(url) or ""])
        if self.query:
            params = {}
            for name, template in self.query:
                params[name], found = template.render(self.env, values)
                secrets |= found
            url = str(URL(url).update_query(params))
        headers = []
        for name, template in self.headers:
            value, found = template.render(self.env, values)
            secrets |= found
            headers.append((name, value))
        body = None
        if self.body is not None:
            text, found = self.body.render(self.env, values)
            secrets |= found
            body = text.encode("utf-8")
        request = HttpRequest(
            method=self.method,
            url=url,
            headers=tuple(headers),
            # Sent verbatim, and without an automatic Content-Type (as Arroyo): see fetch().
            body=body,
            timeout_s=self.timeout_s,
            max_body_bytes=self.max_body_bytes,
            secrets=secrets,
        )
        if not self.per_poll:
            self._static.append(request)
        return request
