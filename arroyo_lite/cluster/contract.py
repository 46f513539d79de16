"""The part of Arroyo's REST API that ``deploy`` and ``cluster`` use: paths, JSON shapes, states.

Every fact here was read from Arroyo's source at version ``ARROYO_VERSION``, commit
``ARROYO_COMMIT`` (github.com/ArroyoSystems/arroyo):

* request and response types: ``crates/arroyo-rpc/src/api_types/pipelines.rs`` (``PipelinePost``,
  ``PipelinePatch``, ``ValidateQueryPost``, ``QueryValidationResult``, ``SqlDiagnostic``,
  ``Pipeline``, ``Job``, ``FailureReason``, ``JobLogMessage``; all ``snake_case``) and
  ``mod.rs`` (``PaginatedCollection``/``NonPaginatedCollection``: ``camelCase``, so the
  "more" flag is ``hasMore``);
* routes: ``crates/arroyo-api/src/rest.rs`` (nested under ``/api/v1``; unknown routes answer
  404 ``{"error": "Route not found"}``), default port 5115 (``arroyo-rpc/default.toml``);
* error bodies: ``crates/arroyo-api/src/rest_utils.rs`` (``ErrorResp`` serializes as
  ``{"error": message}``); JSON bodies that do not deserialize are axum's rejections
  (415, 400, 422), with the same body;
* job states: ``crates/arroyo-api/src/jobs.rs`` (``get_action``) and the controller's states.

The parsers below read only the fields arroyo-lite uses, and fail with a
:class:`~arroyo_lite.errors.ClusterError` when one is missing or has the wrong type (the
server is then not the Arroyo API these shapes describe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arroyo_lite.errors import ClusterError

ARROYO_VERSION = "0.16.0-dev"
ARROYO_COMMIT = "addb390a7ac9efd52097a6b73167c481ce9b82c0"

DEFAULT_API = "http://localhost:5115"
API_BASE = "/api/v1"

#: ``StopType`` (``PipelinePatch.stop``): how a running job is stopped.
STOP_MODES = ("checkpoint", "graceful", "immediate", "force")
#: Job states after which nothing more happens until the pipeline is started again.
TERMINAL_STATES = frozenset({"Stopped", "Finished", "Failed"})
#: The state a healthy job reaches and stays in.
RUNNING = "Running"
FAILED = "Failed"

#: Connector names Arroyo knows (``arroyo-connectors/src/lib.rs``, ``connectors()``).
ARROYO_CONNECTORS = frozenset({
    "blackhole", "confluent", "delta", "filesystem", "fluvio", "iceberg", "impulse", "kafka",
    "kinesis", "mqtt", "nats", "nexmark", "polling_http", "preview", "rabbitmq", "redis",
    "single_file", "sse", "stdout", "webhook", "websocket",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class SqlDiagnostic:
    """One planning problem. ``line``/``column`` (start) and ``end_line``/``end_column`` are
    1-based, in the query text (sqlparser spans), or ``None`` when Arroyo gives no span."""

    message: str
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    name: str
    stop: str
    action_text: str
    checkpoint_interval_micros: int
    created_at: int
    tags: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    pipeline_id: str
    state: str
    running_desired: bool
    run_id: int
    start_time: int | None
    finish_time: int | None
    tasks: int | None
    #: ``failure_reason.error`` and ``.domain`` (``user``, ``external`` or ``internal``).
    failure: str | None
    failure_domain: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class JobLogMessage:
    created_at: int
    level: str
    message: str
    details: str
    operator_id: str | None
    task_index: int | None


def _field(obj: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict):
        raise ClusterError(f"unexpected answer: {what} is not a JSON object")
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ClusterError(f"unexpected answer: {what} has no valid '{key}'")
    return value


def _optional(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        raise ClusterError(f"unexpected answer: {what} has an invalid '{key}'")
    return value


def parse_validation(body: Any) -> tuple[SqlDiagnostic, ...]:
    """``QueryValidationResult`` -> its ``errors`` (empty when the query plans)."""
    errors = _field(body, "errors", list, "the validation result")
    found = []
    for item in errors:
        message = _field(item, "message", str, "a diagnostic")
        span = item.get("span")
        if isinstance(span, dict):
            start = _field(span, "start", dict, "a diagnostic span")
            end = _field(span, "end", dict, "a diagnostic span")
            found.append(
                SqlDiagnostic(
                    message,
                    _field(start, "line", int, "a diagnostic span"),
                    _field(start, "column", int, "a diagnostic span"),
                    _field(end, "line", int, "a diagnostic span"),
                    _field(end, "column", int, "a diagnostic span"),
                )
            )
        else:
            found.append(SqlDiagnostic(message))
    return tuple(found)


def parse_pipeline(body: Any) -> Pipeline:
    what = "the pipeline"
    tags = _optional(body, "tags", dict, what) if isinstance(body, dict) else None
    return Pipeline(
        id=_field(body, "id", str, what),
        name=_field(body, "name", str, what),
        stop=_field(body, "stop", str, what),
        action_text=_field(body, "action_text", str, what),
        checkpoint_interval_micros=_field(body, "checkpoint_interval_micros", int, what),
        created_at=_field(body, "created_at", int, what),
        tags={str(k): str(v) for k, v in (tags or {}).items()},
    )


def parse_pipelines(body: Any) -> tuple[tuple[Pipeline, ...], bool]:
    """``PipelineCollection`` -> (pipelines, ``hasMore``)."""
    data = _field(body, "data", list, "the pipeline list")
    return tuple(parse_pipeline(p) for p in data), bool(body.get("hasMore"))


def parse_job(body: Any) -> Job:
    what = "the job"
    reason = _optional(body, "failure_reason", dict, what) if isinstance(body, dict) else None
    return Job(
        id=_field(body, "id", str, what),
        pipeline_id=_field(body, "pipeline_id", str, what),
        state=_field(body, "state", str, what),
        running_desired=_field(body, "running_desired", bool, what),
        run_id=_field(body, "run_id", int, what),
        start_time=_optional(body, "start_time", int, what),
        finish_time=_optional(body, "finish_time", int, what),
        tasks=_optional(body, "tasks", int, what),
        failure=_field(reason, "error", str, "the failure reason") if reason else None,
        failure_domain=str(reason.get("domain")) if reason else None,
        created_at=_field(body, "created_at", int, what),
    )


def parse_jobs(body: Any) -> tuple[Job, ...]:
    """``JobCollection`` -> its jobs (Arroyo keeps one job per pipeline)."""
    return tuple(parse_job(j) for j in _field(body, "data", list, "the job list"))


def parse_job_errors(body: Any) -> tuple[JobLogMessage, ...]:
    """``JobLogMessageCollection`` -> its messages, newest first as Arroyo returns them."""
    found = []
    for item in _field(body, "data", list, "the job's errors"):
        what = "a job error"
        found.append(
            JobLogMessage(
                created_at=_field(item, "created_at", int, what),
                level=_field(item, "level", str, what),
                message=_field(item, "message", str, what),
                details=_field(item, "details", str, what),
                operator_id=_optional(item, "operator_id", str, what),
                task_index=_optional(item, "task_index", int, what),
            )
        )
    return tuple(found)


def error_text(body: Any) -> str | None:
    """The message of an ``ErrorResp`` body (``{"error": "..."}``), if it is one."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None
