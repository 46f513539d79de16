"""``arroyo-lite deploy FILE.sql --api URL``: run a file on an Arroyo cluster.

The strict check first (as ``validate --arroyo``; exit 3 if the file is not portable), then
the cluster plans the query (its errors shown as ``FILE:LINE:COL``), creates the pipeline,
and the command follows the job until it runs (exit 0) or fails (its reason; exit 1).
``--dry-run`` prints the requests instead of sending them. API failures are one line, exit 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from arroyo_lite.cli import main
from arroyo_lite.cli.api_options import (
    api_key,
    api_options,
    fail,
    poll_interval_option,
    with_client,
)
from arroyo_lite.cli.options import seconds_option
from arroyo_lite.cli.validate_cmd import NOT_PORTABLE, print_portability, print_problems
from arroyo_lite.cluster.client import ArroyoClient
from arroyo_lite.cluster.contract import SqlDiagnostic
from arroyo_lite.cluster.deploy import (
    DEFAULT_WAIT,
    DeployOutcome,
    DeployRequest,
    deploy,
    dry_run_lines,
)
from arroyo_lite.cluster.portability import check_portability, compile_for_cluster
from arroyo_lite.connectors.options import parse_duration
from arroyo_lite.errors import ClusterError, SourcePosition, ValidationErrors


def _pairs(what: str, values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got '{key}'", param_hint=what)
        found[key] = rest
    return found


def _interval_micros(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--checkpoint-interval") from e
    if not 1 <= seconds <= 24 * 60 * 60:
        # Arroyo's own check (arroyo-api jobs.rs), made before anything is sent.
        raise click.BadParameter(
            "Checkpoint_interval_micros must be between 1 second and 1 day.",
            param_hint="--checkpoint-interval",
        )
    return round(seconds * 1_000_000)


def diagnostic_problem(
    path: str, lines: list[str], d: SqlDiagnostic
) -> tuple[str, SourcePosition | None]:
    """A cluster diagnostic as a validator problem: ``FILE:LINE:COL: error: MESSAGE``."""
    if d.line is None or d.column is None:
        return (f"error: {d.message}", None)
    token = None
    if d.end_line == d.line and d.end_column is not None and 1 <= d.line <= len(lines):
        token = lines[d.line - 1][d.column - 1 : d.end_column - 1] or None
    position = SourcePosition(path, d.line, d.column, token)
    return (f"{position}: error: {d.message}", position)


@main.command("deploy")
@click.argument("file", type=click.Path(dir_okay=False))
@api_options
@click.option("--name", help="Pipeline name (default: the file's name without .sql).")
@click.option("--parallelism", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--checkpoint-interval",
    metavar="DURATION",
    help="Time between checkpoints, e.g. '10s' or '1 minute' (default: the cluster's, 10 s).",
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A pipeline tag.")
@click.option(
    "--env",
    "env_vars",
    multiple=True,
    metavar="NAME=VALUE",
    help="An environment variable for the job's workers (env_vars; never printed).",
)
@seconds_option(
    "--wait",
    default=DEFAULT_WAIT,
    zero=True,
    show_default=True,
    help="Seconds to follow the job until it runs; 0: return once the pipeline exists.",
)
@poll_interval_option
@click.option("--dry-run", is_flag=True, help="Print the requests instead of sending them.")
def deploy_cmd(
    file: str,
    api: str,
    timeout: float,
    name: str | None,
    parallelism: int,
    checkpoint_interval: str | None,
    tags: tuple[str, ...],
    env_vars: tuple[str, ...],
    wait: float,
    poll_interval: float,
    dry_run: bool,
) -> None:
    """Deploy FILE to the Arroyo cluster at --api, and follow its job until it runs.

    Exit 0: the job is running (or finished); 1: the cluster refused the query, the job
    failed or did not start within --wait, or the API could not be used; 3: the file uses
    arroyo-lite extensions or features Arroyo does not have (see validate --arroyo).
    {{ VAR }} references are sent as written: the cluster substitutes them from its own
    environment (API server and workers), so they must be set there.
    """
    request = _prepare(file, name, parallelism, checkpoint_interval, tags, env_vars)
    if dry_run:
        try:
            lines = dry_run_lines(api, request, api_key=api_key() is not None)
        except ClusterError as e:
            fail(e)
        for line in lines:
            click.echo(line)
        return

    async def call(client: ArroyoClient) -> DeployOutcome:
        return await deploy(
            client, request, wait=wait, every=poll_interval,
            progress=lambda line: click.echo(line, err=True),
        )  # fmt: skip

    outcome = with_client(api, timeout, call)
    raise SystemExit(_report(file, outcome, wait, api))


def _prepare(
    file: str,
    name: str | None,
    parallelism: int,
    checkpoint_interval: str | None,
    tags: tuple[str, ...],
    env_vars: tuple[str, ...],
) -> DeployRequest:
    """The checked file as a request; exits 1 (invalid) or 3 (not portable) otherwise."""
    interval = _interval_micros(checkpoint_interval)
    tag_map, env_map = _pairs("--tag", tags), _pairs("--env", env_vars)
    try:
        program = compile_for_cluster(file)
    except ValidationErrors as e:
        print_problems(file, [(error.format(), error.position) for error in e])
        raise SystemExit(1) from e
    portability = check_portability(program)
    print_portability(file, portability)
    if not portability.portable:
        raise SystemExit(NOT_PORTABLE)
    text = Path(file).read_text(encoding="utf-8-sig")
    return DeployRequest(
        name=name or Path(file).stem,
        query=text,
        parallelism=parallelism,
        checkpoint_interval_micros=interval,
        tags=tag_map,
        env_vars=env_map,
    )


def _report(file: str, outcome: DeployOutcome, wait: float, api: str) -> int:
    """Print how the deploy ended; return the exit status."""
    pipeline, job = outcome.pipeline, outcome.job
    show = f"arroyo-lite cluster show {pipeline.id} --api {api}" if pipeline else ""
    if outcome.kind == "planning":
        lines = [line.removesuffix("\r") for line in Path(file).read_text("utf-8-sig").split("\n")]
        print_problems(file, [diagnostic_problem(file, lines, d) for d in outcome.diagnostics])
        click.echo(
            f"{file}: the cluster rejected the query: {len(outcome.diagnostics)} error(s); "
            "nothing was created",
            err=True,
        )
        return 1
    assert pipeline is not None
    if outcome.kind == "running" and job is not None:
        click.echo(f"pipeline {pipeline.id} ({pipeline.name}) is running: job {job.id}")
        click.echo(f"follow it with: {show}")
        return 0
    if outcome.kind == "ended" and job is not None:
        click.echo(f"pipeline {pipeline.id} ({pipeline.name}): job {job.id} is {job.state}")
        return 0 if job.state == "Finished" else 1
    if outcome.kind == "failed" and job is not None:
        domain = f" ({job.failure_domain} error)" if job.failure_domain else ""
        click.echo(
            f"error: job {job.id} of pipeline {pipeline.id} failed{domain}: "
            f"{job.failure or 'no reason given'}",
            err=True,
        )
        for message in outcome.errors:
            where = message.operator_id or "job"
            if message.task_index is not None:
                where += f"[{message.task_index}]"
            details = f": {message.details}" if message.details else ""
            click.echo(f"  {message.level} {where}: {message.message}{details}", err=True)
        return 1
    state = job.state if job is not None else "without a job"
    if wait == 0:
        click.echo(f"pipeline {pipeline.id} ({pipeline.name}) created; job {state}")
        click.echo(f"follow it with: {show}")
        return 0
    click.echo(
        f"error: pipeline {pipeline.id}: job still {state} after {wait:g} s; "
        f"follow it with: {show}",
        err=True,
    )
    return 1
