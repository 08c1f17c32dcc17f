"""Where the job steps run: in this process on DuckDB, or as the Spark jobs of `glue_scripts/` (local PySpark or
AWS Glue, launched through Dagster Pipes). One variable picks the twin: ENROLLMENT_ENGINE (local | spark) with
ENROLLMENT_ENV (local | aws).

A step is called with Glue-style arguments (`--lake_uri`, `--dataset`, `--batch`, `--input`, …: see
`transforms/spark/glue.py`) and returns what the step reported: its materialization metadata and the asset check
results it evaluated.
"""

from __future__ import annotations

import os
import sys
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from enrollment_platform.settings import SPARK_LAUNCHES, SettingsError


def glue_scripts_dir() -> Path:
    """The `glue_scripts/` folder of a source checkout (the wheel carries the same code as a module)."""
    return Path(__file__).resolve().parents[2] / "glue_scripts"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of an in-process step, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def argument_list(arguments: dict[str, str]) -> list[str]:
    """`{"--dataset": "x"}` as a command line (`--dataset x`)."""
    return [item for name, value in arguments.items() for item in (name, str(value))]


class JobRunner(dg.ConfigurableResource):
    """Runs one job step; `in_process` runners let the asset run its DuckDB body itself."""

    @property
    def in_process(self) -> bool:
        return False

    @abstractmethod
    def run(
        self,
        context: dg.AssetExecutionContext,
        step: str,
        arguments: dict[str, str],
        env: dict[str, str] | None = None,
    ) -> dg.MaterializeResult:
        """Run `step` with `arguments` (and, on this machine, extra environment `env`: secrets); return what it
        reported (metadata and check results)."""


class InProcessJobRunner(JobRunner):
    """The local engine: the asset's own DuckDB body is the job (nothing is launched)."""

    @property
    def in_process(self) -> bool:
        return True

    def run(self, context, step, arguments, env=None) -> dg.MaterializeResult:
        raise RuntimeError(f"the in-process engine runs {step} inside the asset; nothing is launched")


class LocalSparkJobRunner(JobRunner):
    """The Spark engine on this machine (`local[*]`-style, no UI).

    `launch=subprocess` runs `glue_scripts/<step>.py` as its own process through `PipesSubprocessClient`, exactly
    as Glue runs it (a JVM per step: slow, but the same process boundary as production). `launch=in_process`
    calls the same step function with one SparkSession shared by every step of the run (the default: a JVM
    start per step costs more than the step on laptop-sized batches).
    """

    launch: str = "in_process"
    python: str = sys.executable

    def run(self, context, step, arguments, env=None) -> dg.MaterializeResult:
        if self.launch not in SPARK_LAUNCHES:
            raise SettingsError(f"ENROLLMENT_SPARK_LAUNCH={self.launch!r} is not one of {', '.join(SPARK_LAUNCHES)}")
        if self.launch == "subprocess":
            return self._subprocess(context, step, arguments, env or {})
        from enrollment_platform.transforms.spark.glue import parse_args, run_step, step_checks
        from enrollment_platform.transforms.spark.session import spark_session

        args = parse_args(step, argument_list(arguments))
        with _environment(env or {}):
            metadata = run_step(step, args, spark_session(f"enrollment-{step}"))
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[dg.AssetCheckResult(**check) for check in step_checks(step, metadata)],
        )

    def _subprocess(self, context, step: str, arguments: dict[str, str], env: dict[str, str]) -> dg.MaterializeResult:
        script = glue_scripts_dir() / f"{step}.py"
        launcher = [str(script)] if script.is_file() else ["-m", "enrollment_platform.transforms.spark.glue", step]
        command = [self.python, *launcher, *argument_list(arguments)]
        invocation = dg.PipesSubprocessClient().run(command=command, context=context, env={**os.environ, **env})
        return invocation.get_materialize_result()


def prefixed_message_reader(prefix: str):
    """A `PipesS3MessageReader` whose message keys live under `prefix` (the IAM roles of infra/ allow the Pipes
    exchange only there; dagster-aws puts its random message prefix at the bucket root)."""
    from dagster_aws.pipes import PipesS3MessageReader

    class PrefixedS3MessageReader(PipesS3MessageReader):
        @contextmanager
        def get_params(self):
            with super().get_params() as params:
                yield {**params, "key_prefix": f"{prefix.strip('/')}/{params['key_prefix']}"}

    return PrefixedS3MessageReader


class GlueJobRunner(JobRunner):
    """AWS Glue: one Glue job per step (`<job_prefix>-<step>`, created by infra/catalog.yaml), started through
    `PipesGlueClient`; the Pipes context and messages travel through `pipes_bucket` under `pipes_prefix`."""

    job_prefix: str = "enrollment"
    pipes_bucket: str
    pipes_prefix: str = "dagster-pipes"
    region_name: str | None = None
    endpoint_url: str | None = None
    poll_interval_seconds: float = 10.0

    def client(self):
        import boto3
        from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector

        session = boto3.session.Session(region_name=self.region_name)
        s3 = session.client("s3", endpoint_url=self.endpoint_url)
        return PipesGlueClient(
            client=session.client("glue", endpoint_url=self.endpoint_url),
            context_injector=PipesS3ContextInjector(
                bucket=self.pipes_bucket, client=s3, key_prefix=f"{self.pipes_prefix.strip('/')}/"
            ),
            message_reader=prefixed_message_reader(self.pipes_prefix)(
                bucket=self.pipes_bucket, client=s3, interval=self.poll_interval_seconds
            ),
        )

    def run(self, context, step, arguments, env=None) -> dg.MaterializeResult:
        invocation = self.client().run(
            context=context,
            start_job_run_params={"JobName": f"{self.job_prefix}-{step}", "Arguments": dict(arguments)},
        )
        return invocation.get_materialize_result()
