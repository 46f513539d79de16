"""What a terminal shows about the running sources while queries print: a one-line progress
display redrawn in place (:class:`StatusLine`) and the source failures worth a line of their own
(:class:`SourceReporter`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from arroyo_lite.connectors.base import SourceState, SourceStatus


class StatusLine:
    """A one-line progress display on a terminal (stderr), redrawn in place.

    Anything else written to the same terminal must call :meth:`clear` first.
    """

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        from rich.console import Console  # here: a run without a progress line needs no rich

        width = max(20, Console(file=self.stream, emoji=False).width - 1)
        if len(text) > width:
            text = text[: width - 1] + "…"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


class SourceReporter:
    """Decides which source failures to report: each new error message once, a stop always."""

    def __init__(self) -> None:
        self._reported: dict[str, str | None] = {}
        self._failed: set[str] = set()

    def check(self, statuses: Sequence[SourceStatus]) -> list[tuple[str, str]]:
        """The ``(message, rich style)`` pairs to print for these statuses (often none)."""
        messages: list[tuple[str, str]] = []
        for s in statuses:
            if s.state == SourceState.FAILED and s.table not in self._failed:
                self._failed.add(s.table)
                text = f"error: source '{s.table}' stopped: {s.last_error or 'failed'}"
                messages.append((text, "bold red"))
            elif s.failures and s.last_error and self._reported.get(s.table) != s.last_error:
                plural = "s" if s.failures != 1 else ""
                rejected = "credentials rejected: " if s.state is SourceState.UNAUTHORIZED else ""
                text = (
                    f"warning: source '{s.table}': {rejected}{s.last_error} "
                    f"({s.failures} failed poll{plural} so far; retrying"
                    + (" with backoff)" if rejected else ")")
                )
                messages.append((text, "yellow"))
            if s.last_error:
                self._reported[s.table] = s.last_error
        return messages


def failed_sources(statuses: Sequence[SourceStatus]) -> list[str]:
    """One line per source that failed for good or never succeeded (each of its polls failed),
    for the summary ``run`` ends with; empty when every source got through at least once."""
    lines = []
    for s in statuses:
        if s.state == SourceState.FAILED:
            lines.append(f"'{s.table}' failed: {s.last_error or 'stopped'}")
        elif s.polls and s.failures >= s.polls:
            rejected = s.state is SourceState.UNAUTHORIZED
            what = "credentials rejected" if rejected else "never succeeded"
            plural = "s" if s.polls != 1 else ""
            lines.append(f"'{s.table}' {what} ({s.polls} poll{plural}): {s.last_error}")
    return lines
