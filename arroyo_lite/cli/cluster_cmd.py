"""``arroyo-lite cluster list|show|stop|delete``: the pipelines of an Arroyo cluster.

One click group with a small subcommand each, all through :mod:`arroyo_lite.cluster.client`
(so no one needs curl): ``list`` the pipelines and their job state, ``show`` one pipeline
with its job and the job's errors, ``stop`` it (``PATCH`` with a stop mode), ``delete`` it.
Times are UTC. API failures are one line on stderr, exit 1.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from arroyo_lite.cli import main
from arroyo_lite.cli.api_options import api_options, poll_interval_option, with_client
from arroyo_lite.cli.options import seconds_option
from arroyo_lite.cluster.client import ArroyoClient
from arroyo_lite.cluster.contract import STOP_MODES, TERMINAL_STATES, Job, Pipeline
from arroyo_lite.cluster.deploy import stop_and_wait
from arroyo_lite.errors import ClusterError


def _time(micros: int | None) -> str:
    if micros is None:
        return "-"
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def job_line(job: Job) -> str:
    """``job_…  Running  run 2  started …  tasks 4`` and the failure reason, if any."""
    parts = [job.id, job.state, f"run {job.run_id}", f"started {_time(job.start_time)}"]
    if job.tasks is not None:
        parts.append(f"tasks {job.tasks}")
    if job.finish_time is not None:
        parts.append(f"finished {_time(job.finish_time)}")
    line = "  ".join(parts)
    if job.failure:
        line += f"\n  failure ({job.failure_domain or 'unknown'} error): {job.failure}"
    return line


@main.group()
def cluster() -> None:
    """The pipelines of the Arroyo cluster at --api (see deploy)."""


@cluster.command("list")
@api_options
def list_pipelines(api: str, timeout: float) -> None:
    """One line per pipeline: id, name, job state, created."""

    async def call(client: ArroyoClient) -> list[tuple[Pipeline, Job | None]]:
        found = []
        for pipeline in await client.pipelines():
            jobs = await client.jobs(pipeline.id)
            found.append((pipeline, jobs[0] if jobs else None))
        return found

    rows = with_client(api, timeout, call)
    if not rows:
        click.echo("no pipelines")
    for pipeline, job in rows:
        state = job.state if job is not None else "no job"
        click.echo(f"{pipeline.id}  {pipeline.name}  {state}  created {_time(pipeline.created_at)}")


@cluster.command("show")
@click.argument("pipeline_id")
@api_options
def show(pipeline_id: str, api: str, timeout: float) -> None:
    """A pipeline, its job (state, failure reason) and the job's latest errors."""

    async def call(client: ArroyoClient) -> tuple[Pipeline, tuple[Job, ...], list[str]]:
        pipeline = await client.pipeline(pipeline_id)
        jobs = await client.jobs(pipeline_id)
        errors = []
        for job in jobs:
            for m in await client.job_errors(pipeline_id, job.id):
                where = (m.operator_id or "job") + (
                    f"[{m.task_index}]" if m.task_index is not None else ""
                )
                details = f": {m.details}" if m.details else ""
                errors.append(f"  {_time(m.created_at)}  {m.level}  {where}: {m.message}{details}")
        return pipeline, jobs, errors

    pipeline, jobs, errors = with_client(api, timeout, call)
    click.echo(f"pipeline {pipeline.id}  {pipeline.name}")
    click.echo(f"  created {_time(pipeline.created_at)}  stop={pipeline.stop}  "
               f"checkpoint every {pipeline.checkpoint_interval_micros / 1e6:g} s")  # fmt: skip
    for key, value in sorted(pipeline.tags.items()):
        click.echo(f"  tag {key}={value}")
    for job in jobs:
        click.echo("job " + job_line(job))
    if not jobs:
        click.echo("no job")
    click.echo(f"errors: {len(errors)}" if errors else "errors: none")
    for line in errors:
        click.echo(line)


@cluster.command("stop")
@click.argument("pipeline_id")
@api_options
@click.option(
    "--mode",
    type=click.Choice(STOP_MODES),
    default="checkpoint",
    show_default=True,
    help="checkpoint: take a final checkpoint, then stop (resumable); graceful: stop after "
    "in-flight data; immediate: stop now; force: stop without waiting for the workers.",
)
@seconds_option(
    "--wait",
    default=60.0,
    zero=True,
    show_default=True,
    help="Seconds to wait until the job has stopped; 0: do not wait.",
)
@poll_interval_option
def stop(
    pipeline_id: str, api: str, timeout: float, mode: str, wait: float, poll_interval: float
) -> None:
    """Stop a pipeline's job (PATCH /pipelines/ID with stop=MODE)."""

    async def call(client: ArroyoClient) -> Job | None:
        return await stop_and_wait(client, pipeline_id, mode, wait=wait, every=poll_interval)

    job = with_client(api, timeout, call)
    state = job.state if job is not None else "no job"
    if job is None or job.state in TERMINAL_STATES or wait == 0:
        click.echo(f"pipeline {pipeline_id}: stop={mode} requested; job {state}")
        return
    click.echo(f"error: pipeline {pipeline_id}: job still {state} after {wait:g} s", err=True)
    raise SystemExit(1)


@cluster.command("delete")
@click.argument("pipeline_id")
@api_options
def delete(pipeline_id: str, api: str, timeout: float) -> None:
    """Delete a pipeline; its job must be stopped, finished or failed (stop it first)."""

    async def call(client: ArroyoClient) -> None:
        try:
            await client.delete(pipeline_id)
        except ClusterError as e:
            if e.status == 400 and "terminal state" in e.message:
                raise ClusterError(
                    e.message, status=e.status,
                    hint=f"stop it first: arroyo-lite cluster stop {pipeline_id}",
                ) from e  # fmt: skip
            raise

    with_client(api, timeout, call)
    click.echo(f"pipeline {pipeline_id} deleted")
