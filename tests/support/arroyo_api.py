"""A stand-in for Arroyo's REST API (the pipeline routes), on 127.0.0.1, for the deploy tests.

It follows Arroyo's contract exactly as read from its source (version and commit in
``arroyo_lite.cluster.contract``): routes under ``/api/v1`` (``crates/arroyo-api/src/rest.rs``),
``snake_case`` request and response bodies, ``camelCase`` collections (``hasMore``), error
bodies ``{"error": message}`` with Arroyo's messages and statuses (``rest_utils.rs``,
``pipelines.rs``, ``jobs.rs``), axum's JSON rejections (415 wrong content type, 400 bad JSON
syntax, 422 a body that does not deserialize), the 404 fallback ``Route not found``, and
``401`` with an empty body when an API key is configured (``ValidateRequestHeaderLayer``).

What it cannot do is plan SQL: ``planner`` (query -> diagnostics, each ``{"message", "span"}``
as Arroyo serializes ``SqlDiagnostic``) stands for DataFusion; by default only an empty query
is refused (``Query is empty!``). Jobs follow a script of states, one step per
``GET .../jobs``; ``fail_with`` makes the last step ``Failed`` with that reason (domain
``user``) and a job error message, as a job that fails after starting. ``delay`` makes every
answer slow; ``requests`` records what came in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

START_SCRIPT = ("Created", "Compiling", "Scheduling", "Running")
STOP_SCRIPT = {"checkpoint": ("CheckpointStopping", "Stopped"),
               "graceful": ("Stopping", "Stopped"),
               "immediate": ("Stopping", "Stopped"),
               "force": ("Stopping", "Stopped")}  # fmt: skip

# (state, running_desired) -> (action_text, action, in_progress): jobs.rs get_action.
_ACTIONS: dict[tuple[str, bool], tuple[str, str | None, bool]] = {
    ("Created", True): ("Stop", "checkpoint", True),
    ("Created", False): ("Start", "none", False),
    ("Compiling", True): ("Stop", "checkpoint", True),
    ("Compiling", False): ("Stopping", None, True),
    ("Scheduling", True): ("Stop", "checkpoint", True),
    ("Scheduling", False): ("Stopping", None, True),
    ("Running", True): ("Stop", "checkpoint", False),
    ("Running", False): ("Stopping", None, True),
    ("CheckpointStopping", True): ("Force Stop", "immediate", True),
    ("CheckpointStopping", False): ("Force Stop", "immediate", True),
    ("Rescaling", True): ("Stop", "checkpoint", True),
    ("Rescaling", False): ("Stopping", None, True),
    ("Recovering", True): ("Stop", "checkpoint", True),
    ("Recovering", False): ("Stopping", None, True),
    ("Restarting", True): ("Stop", "checkpoint", True),
    ("Restarting", False): ("Stopping", None, True),
    ("Finishing", True): ("Finishing", None, True),
    ("Finishing", False): ("Finishing", None, True),
    ("Failing", True): ("Failing", None, True),
    ("Failing", False): ("Failing", None, True),
    ("Stopping", True): ("Stopping", "checkpoint", True),
    ("Stopping", False): ("Stopping", None, True),
    ("Stopped", True): ("Starting", None, True),
    ("Stopped", False): ("Start", "none", False),
    ("Finished", True): ("Finished", None, False),
    ("Finished", False): ("Finished", None, False),
    ("Failed", True): ("Failed", None, False),
    ("Failed", False): ("Start", "none", False),
}

# The fields of PipelinePost (pipelines.rs): name -> (JSON type check, required).
_U64 = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "u64")
_STR = (lambda v: isinstance(v, str), "a string")
_MAP = (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()), "a map")
_LIST = (lambda v: isinstance(v, list), "a sequence")
_ANY = (lambda v: True, "any value")
PIPELINE_POST = {
    "name": (_STR, True), "query": (_STR, True), "udfs": (_LIST, False),
    "parallelism": (_U64, True), "checkpoint_interval_micros": (_U64, False),
    "state_url": (_STR, False), "tags": (_MAP, False), "env_vars": (_MAP, False),
    "scheduler_config": (_ANY, False),
}  # fmt: skip
VALIDATE_QUERY_POST = {"query": (_STR, True), "udfs": (_LIST, False)}
PIPELINE_PATCH = {
    "parallelism": (_U64, False), "checkpoint_interval_micros": (_U64, False),
    "stop": ((lambda v: v in ("none", "checkpoint", "graceful", "immediate", "force"),
              "one of `none`, `checkpoint`, `graceful`, `immediate`, `force`"), False),
    "env_vars": (_MAP, False), "scheduler_config": (_ANY, False),
}  # fmt: skip


_last_micros = 0


def _micros() -> int:
    """Now in microseconds, strictly increasing (pipelines are ordered by creation time)."""
    global _last_micros
    _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
    return _last_micros


def _serde_kind(value: Any) -> str:
    """How serde names a JSON value in ``invalid type`` errors."""
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    return "sequence" if isinstance(value, list) else "map"


def error(status: int, message: str) -> web.Response:
    """Arroyo's ``ErrorResp``: ``{"error": message}`` with the status."""
    return web.json_response({"error": message}, status=status)


class Rejection(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


@dataclass
class StandInJob:
    id: str
    pipeline_id: str
    script: list[str]
    state: str = "Created"
    running_desired: bool = True
    run_id: int = 0
    start_time: int | None = None
    finish_time: int | None = None
    tasks: int | None = None
    failure: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    created_at: int = field(default_factory=_micros)
    env_vars: dict[str, str] = field(default_factory=dict)

    def step(self, parallelism: int) -> None:
        if self.script:
            self.state = self.script.pop(0)
        if self.state == "Running" and self.start_time is None:
            self.run_id += 1
            self.start_time = _micros()
            self.tasks = parallelism
        if self.state in ("Stopped", "Finished", "Failed") and self.finish_time is None:
            self.finish_time = _micros()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline_id": self.pipeline_id,
            "running_desired": self.running_desired,
            "state": self.state,
            "run_id": self.run_id,
            "start_time": self.start_time,
            "finish_time": self.finish_time,
            "tasks": self.tasks,
            "failure_reason": {"error": self.failure, "domain": "user"} if self.failure else None,
            "created_at": self.created_at,
            "scheduler_config": {},
            "env_vars": self.env_vars,
        }


@dataclass
class StandInPipeline:
    id: str
    name: str
    query: str
    parallelism: int
    checkpoint_interval_micros: int
    tags: dict[str, str]
    job: StandInJob
    stop: str = "none"
    created_at: int = field(default_factory=_micros)

    def to_json(self) -> dict[str, Any]:
        action_text, action, in_progress = _ACTIONS[(self.job.state, self.stop == "none")]
        return {
            "id": self.id,
            "name": self.name,
            "query": self.query,
            "udfs": [],
            "checkpoint_interval_micros": self.checkpoint_interval_micros,
            "stop": self.stop,
            "created_at": self.created_at,
            "action": action,
            "action_text": action_text,
            "action_in_progress": in_progress,
            "graph": graph(self.parallelism),
            "preview": False,
            "state_url": None,
            "tags": self.tags,
        }


def graph(parallelism: int) -> dict[str, Any]:
    """A ``PipelineGraph`` (the stand-in does not plan, so it is always source -> sink)."""
    return {
        "nodes": [
            {"node_id": 1, "operator": "source_0", "description": "source",
             "parallelism": parallelism},
            {"node_id": 2, "operator": "sink_0", "description": "sink",
             "parallelism": parallelism},
        ],
        "edges": [{"src_id": 1, "dest_id": 2, "key_type": "()", "value_type": "ArroyoRecord",
                   "edge_type": "Forward"}],
    }  # fmt: skip


def empty_query_only(query: str) -> list[dict[str, Any]]:
    """Arroyo's first planning check (``parse_and_get_program``)."""
    return [{"message": "Query is empty!"}] if not query.strip() else []


@dataclass
class ArroyoStandIn:
    planner: Callable[[str], list[dict[str, Any]]] = empty_query_only
    start_script: tuple[str, ...] = START_SCRIPT
    fail_with: str | None = None
    delay: float = 0.0
    api_key: str | None = None
    #: Answer every API request with Arroyo's generic 500 (``log_and_map``).
    broken: bool = False
    pipelines: dict[str, StandInPipeline] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _release: asyncio.Event | None = None

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/api/v1/ping", self.ping)
        r.add_post("/api/v1/pipelines/validate_query", self.validate_query)
        r.add_post("/api/v1/pipelines", self.create_pipeline)
        r.add_get("/api/v1/pipelines", self.get_pipelines)
        r.add_get("/api/v1/pipelines/{id}", self.get_pipeline)
        r.add_patch("/api/v1/pipelines/{id}", self.patch_pipeline)
        r.add_delete("/api/v1/pipelines/{id}", self.delete_pipeline)
        r.add_get("/api/v1/pipelines/{id}/jobs", self.get_jobs)
        r.add_get("/api/v1/pipelines/{id}/jobs/{job_id}/errors", self.get_job_errors)
        r.add_route("*", "/api/v1/{tail:.*}", self.fallback)
        return app

    def _released(self) -> asyncio.Event:
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def release(self) -> None:
        """End every ``delay`` now (call on the server's loop), so the server stops at once."""
        self._released().set()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):010d}"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append((request.method, request.path_qs, body))
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released().wait(), self.delay)
        if self.api_key is not None and request.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return web.Response(status=401)
        if self.broken:
            return error(500, "Something went wrong")
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except Rejection as e:
            return e.response

    # -- axum's Json extractor -------------------------------------------------------------

    @staticmethod
    async def json_body(request: web.Request, spec: dict[str, Any]) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise Rejection(error(415, "Expected request with `Content-Type: application/json`"))
        raw = (await request.read()).decode()
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise Rejection(error(
                400, f"Failed to parse the request body as JSON: {e.msg} at line {e.lineno} "
                f"column {e.colno}")) from e  # fmt: skip
        prefix = "Failed to deserialize the JSON body into the target type: "
        lines = raw.split("\n")
        at = f"at line {len(lines)} column {len(lines[-1])}"
        if not isinstance(body, dict):
            raise Rejection(error(422, f"{prefix}invalid type: expected struct {at}"))
        for key, ((check, expected), required) in spec.items():
            value = body.get(key)
            if value is None:
                if required and key not in body:
                    raise Rejection(error(422, f"{prefix}missing field `{key}` {at}"))
                if required:
                    raise Rejection(error(422, f"{prefix}{key}: invalid type: null, "
                                               f"expected {expected} {at}"))  # fmt: skip
                continue
            if not check(value):
                raise Rejection(error(
                    422, f"{prefix}{key}: invalid type: {_serde_kind(value)}, expected "
                    f"{expected} {at}"))  # fmt: skip
        return body

    def find(self, request: web.Request) -> StandInPipeline:
        pipeline = self.pipelines.get(request.match_info["id"])
        if pipeline is None:
            raise Rejection(error(404, "Pipeline not found"))
        return pipeline

    # -- handlers (rest.rs, pipelines.rs, jobs.rs) -----------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response("Pong")

    async def fallback(self, request: web.Request) -> web.Response:
        return error(404, "Route not found")  # api_fallback: not_found("Route")

    async def validate_query(self, request: web.Request) -> web.Response:
        body = await self.json_body(request, VALIDATE_QUERY_POST)
        diagnostics = self.planner(body["query"])
        return web.json_response(
            {"graph": None if diagnostics else graph(1), "errors": diagnostics}
        )

    async def create_pipeline(self, request: web.Request) -> web.Response:
        body = await self.json_body(request, PIPELINE_POST)
        diagnostics = self.planner(body["query"])
        if diagnostics:
            # create_pipeline_inner: `compile_sql(...).await??`, From<PlannerError> for ErrorResp
            message = "Failed to plan query:" + "".join(f"\n * {d['message']}" for d in diagnostics)
            return error(400, message)
        interval = body.get("checkpoint_interval_micros")
        interval = 10_000_000 if interval is None else interval  # default-checkpoint-interval
        if not 1_000_000 <= interval <= 86_400_000_000:
            return error(400, "Checkpoint_interval_micros must be between 1 second and 1 day.")
        if not body["name"]:
            return error(400, "Field name must be set")
        pipeline_id = self.new_id("pl")
        script = list(self.start_script)
        if self.fail_with is not None:
            script += ["Failing", "Failed"]
        job = StandInJob(self.new_id("job"), pipeline_id, script,
                         env_vars=body.get("env_vars") or {})  # fmt: skip
        pipeline = StandInPipeline(
            pipeline_id, body["name"], body["query"], body["parallelism"], interval,
            body.get("tags") or {}, job,
        )  # fmt: skip
        self.pipelines[pipeline_id] = pipeline
        return web.json_response(pipeline.to_json())

    async def get_pipelines(self, request: web.Request) -> web.Response:
        limit_text = request.query.get("limit")
        limit = int(limit_text) if limit_text is not None else 10
        if limit < 1:
            return error(400, "Limit must be greater than 0")
        newest_first = sorted(self.pipelines.values(), key=lambda p: p.created_at, reverse=True)
        after = request.query.get("starting_after", "")
        if after:
            cut = self.pipelines.get(after)
            newest_first = [
                p for p in newest_first if cut is not None and p.created_at < cut.created_at
            ]
        page = newest_first[: limit + 1]
        has_more = len(page) == limit + 1
        return web.json_response(
            {"data": [p.to_json() for p in page[:limit]], "hasMore": has_more}
        )

    async def get_pipeline(self, request: web.Request) -> web.Response:
        return web.json_response(self.find(request).to_json())

    async def get_jobs(self, request: web.Request) -> web.Response:
        pipeline = self.find(request)
        job = pipeline.job
        job.step(pipeline.parallelism)
        if job.state == "Failed" and job.failure is None and self.fail_with is not None:
            job.failure = self.fail_with
            job.errors.insert(0, {
                "id": self.new_id("jlm"), "created_at": _micros(), "operator_id": "source_0",
                "task_index": 0, "level": "error", "message": self.fail_with,
                "details": "the operator panicked", "error_domain": "user",
            })  # fmt: skip
        return web.json_response({"data": [job.to_json()]})

    async def get_job_errors(self, request: web.Request) -> web.Response:
        pipeline = self.find(request)
        if pipeline.job.id != request.match_info["job_id"]:
            return error(404, "Job not found")
        return web.json_response({"data": pipeline.job.errors, "hasMore": False})

    async def patch_pipeline(self, request: web.Request) -> web.Response:
        body = await self.json_body(request, PIPELINE_PATCH)  # (the extractor runs first)
        pipeline = self.pipelines.get(request.match_info["id"])
        if pipeline is None:
            return error(404, "Job for pipeline not found")
        interval = body.get("checkpoint_interval_micros")
        if interval is not None and not 1_000_000 <= interval <= 86_400_000_000:
            return error(400, "checkpoint_interval_micros must be between 1 second and 1 day")
        stop = body.get("stop")
        if stop is not None:
            pipeline.stop = stop
            pipeline.job.running_desired = stop == "none"
            if stop == "none":
                pipeline.job.script = ["Scheduling", "Running"]
                pipeline.job.start_time = pipeline.job.finish_time = None
            elif pipeline.job.state not in ("Stopped", "Finished", "Failed"):
                pipeline.job.script = list(STOP_SCRIPT[stop])
        return web.json_response(pipeline.to_json())

    async def delete_pipeline(self, request: web.Request) -> web.Response:
        pipeline = self.pipelines.get(request.match_info["id"])
        if pipeline is None:
            return error(404, "Pipeline not found")
        if pipeline.job.state not in ("Stopped", "Finished", "Failed"):
            return error(400, "Pipeline's jobs must be in a terminal state (stopped, finished, or "
                              "failed) before it can be deleted")  # fmt: skip
        del self.pipelines[pipeline.id]
        return web.Response(status=200)  # axum's `()`: 200, empty body
