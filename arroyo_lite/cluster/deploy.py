"""Deploying a SQL file to an Arroyo cluster: the requests, in order, and what came of them.

:class:`DeployRequest` is the ``PipelinePost`` a file becomes; :func:`dry_run_lines` shows the
requests without sending any; :func:`deploy` sends them: ``validate_query`` (the cluster plans
the query; its diagnostics come back with spans), ``POST /pipelines``, then
``GET /pipelines/{id}/jobs`` every ``every`` seconds until the job runs, ends, fails, or
``wait`` seconds have passed. It returns a :class:`DeployOutcome`; API failures raise
:class:`~arroyo_lite.errors.ClusterError`.

The query sent is the file's text as written: ``{{ VAR }}`` references stay references (the
cluster substitutes them from its own environment), so no secret value is ever in it.
``env_vars`` values are shown masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from arroyo_lite.clock import Clock, SystemClock
from arroyo_lite.cluster.client import ArroyoClient, api_base
from arroyo_lite.cluster.contract import (
    FAILED,
    RUNNING,
    TERMINAL_STATES,
    Job,
    JobLogMessage,
    Pipeline,
    SqlDiagnostic,
)
from arroyo_lite.secrets import MASK

DEFAULT_WAIT = 120.0
DEFAULT_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class DeployRequest:
    """What ``POST /pipelines`` gets (``PipelinePost``); ``None`` leaves the cluster's default
    (checkpoint interval: ``default-checkpoint-interval``, 10 s)."""

    name: str
    query: str
    parallelism: int = 1
    checkpoint_interval_micros: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    env_vars: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"DeployRequest(name={self.name!r}, env_vars=<{len(self.env_vars)} hidden>)"

    def pipeline_post(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "query": self.query,
            "udfs": [],
            "parallelism": self.parallelism,
            "checkpoint_interval_micros": self.checkpoint_interval_micros,
            "tags": dict(self.tags) or None,
            "env_vars": dict(self.env_vars) or None,
        }
        return body


def dry_run_lines(api: str, request: DeployRequest, *, api_key: bool) -> list[str]:
    """The requests :func:`deploy` would send, as text: method and URL, then the JSON body
    (``env_vars`` values and the API key masked)."""
    base = api_base(api)
    auth = [f"  Authorization: Bearer {MASK}"] if api_key else []
    post = request.pipeline_post()
    if post["env_vars"]:
        post["env_vars"] = dict.fromkeys(post["env_vars"], MASK)
    lines = [f"POST {base}/pipelines/validate_query", *auth]
    lines += json.dumps({"query": request.query, "udfs": []}, indent=2).splitlines()
    lines += [f"POST {base}/pipelines", *auth]
    lines += json.dumps(post, indent=2).splitlines()
    lines += [f"GET {base}/pipelines/<id>/jobs   (until the job is {RUNNING} or ends)"]
    return lines


@dataclass(frozen=True, slots=True)
class DeployOutcome:
    """How a deploy ended.

    ``planning``: the cluster refused the query (``diagnostics``), nothing was created;
    ``running``: the job reached Running; ``ended``: it stopped or finished by itself;
    ``failed``: it failed (``job.failure``, and the job's ``errors``); ``waiting``: it was
    still in ``job.state`` after the wait.
    """

    kind: Literal["planning", "running", "ended", "failed", "waiting"]
    diagnostics: tuple[SqlDiagnostic, ...] = ()
    pipeline: Pipeline | None = None
    job: Job | None = None
    errors: tuple[JobLogMessage, ...] = ()

    @property
    def ok(self) -> bool:
        return self.kind in ("running", "ended")


async def deploy(
    client: ArroyoClient,
    request: DeployRequest,
    *,
    wait: float = DEFAULT_WAIT,
    every: float = DEFAULT_EVERY,
    clock: Clock | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> DeployOutcome:
    """Validate, create, follow (see the module docstring). ``progress`` gets one line per
    step and per job state change. ``wait <= 0`` returns right after the pipeline is created
    (kind ``waiting``, with the job's first state if there is one)."""
    clock = clock or SystemClock()
    diagnostics = await client.validate_query(request.query)
    if diagnostics:
        return DeployOutcome("planning", diagnostics=diagnostics)
    progress("the cluster planned the query")
    pipeline = await client.create_pipeline(request.pipeline_post())
    progress(f"created pipeline {pipeline.id} ({pipeline.name})")
    return await follow(client, pipeline, wait=wait, every=every, clock=clock, progress=progress)


async def follow(
    client: ArroyoClient,
    pipeline: Pipeline,
    *,
    wait: float,
    every: float,
    clock: Clock,
    progress: Callable[[str], None],
) -> DeployOutcome:
    """Poll the pipeline's job until it runs, ends or fails, or ``wait`` seconds pass."""
    deadline = clock.monotonic() + wait
    last_state: str | None = None
    job: Job | None = None
    while True:
        jobs = await client.jobs(pipeline.id)
        job = jobs[0] if jobs else None
        if job is not None and job.state != last_state:
            progress(f"job {job.id}: {job.state}")
            last_state = job.state
        if job is not None and job.state == RUNNING:
            return DeployOutcome("running", pipeline=pipeline, job=job)
        if job is not None and job.state == FAILED:
            errors = await client.job_errors(pipeline.id, job.id)
            return DeployOutcome("failed", pipeline=pipeline, job=job, errors=errors)
        if job is not None and job.state in TERMINAL_STATES:
            return DeployOutcome("ended", pipeline=pipeline, job=job)
        if clock.monotonic() >= deadline:
            return DeployOutcome("waiting", pipeline=pipeline, job=job)
        await clock.sleep(min(every, max(0.0, deadline - clock.monotonic())))


async def stop_and_wait(
    client: ArroyoClient,
    pipeline_id: str,
    mode: str,
    *,
    wait: float,
    every: float = DEFAULT_EVERY,
    clock: Clock | None = None,
) -> Job | None:
    """Ask the cluster to stop the pipeline's job (``PATCH`` ``stop=mode``), then poll its
    job until it is stopped, finished or failed, or ``wait`` seconds pass; return the job as
    last seen (``None`` if the pipeline has none)."""
    clock = clock or SystemClock()
    await client.stop(pipeline_id, mode)
    deadline = clock.monotonic() + wait
    while True:
        jobs = await client.jobs(pipeline_id)
        job = jobs[0] if jobs else None
        if job is None or job.state in TERMINAL_STATES or clock.monotonic() >= deadline:
            return job
        await clock.sleep(min(every, max(0.0, deadline - clock.monotonic())))
