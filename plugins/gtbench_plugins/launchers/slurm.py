"""Run cells as a SLURM job array through submitit (``pip install 'gtbench[slurm]'``).

    gtbench run --launcher slurm:partition=gpu,time=120,gpus_per_node=1
    gtbench run --launcher 'slurm:partition=gpu,extra=account=lab;qos=high,wait=false'

Each pending cell is one task of a job array (arrays are cut into chunks of at most
``max_array_size`` for clusters that cap it). Jobs are checkpointable: on pre-emption or
time-out SLURM sends USR2, submitit calls :meth:`CellJob.checkpoint` and requeues the
same cell, which runs again from the start in its own run folder (no training state is
pickled). Results are read from the run folders only: a job that ends without writing a
record gets a ``failed`` record from this process, so one lost job never hides others.

``cluster=local`` runs the same jobs as local subprocesses (submitit's local executor,
requeue included) and ``cluster=debug`` runs them in this process: both are for tests.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from gtbench.api import Launcher, LaunchRequest, Parameter
from gtbench.errors import GtbenchError, UsageError
from gtbench_plugins.launchers._common import (
    Stamp,
    record_lost_cell,
    record_stamp,
    require,
    wrote_record,
)

CLUSTERS = ("slurm", "local", "debug")


def parse_extra(text: str) -> dict[str, str]:
    """``key=value;key=value`` → extra sbatch parameters (``--key=value`` each)."""
    extra: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"slurm extra: bad item {item!r}, expected key=value;key=value")
        extra[key.strip().lstrip("-")] = value.strip()
    return extra


class SlurmLauncher(Launcher):
    description = "SLURM job arrays through submitit (checkpointable; extra: slurm)"
    parameters: ClassVar = {
        "cluster": Parameter("slurm", "slurm; local or debug run the jobs on this machine (tests)"),
        "partition": Parameter("", "SLURM partition (empty: the cluster's default)"),
        "time": Parameter(120, "time limit per job, minutes"),
        "gpus_per_node": Parameter(1, "GPUs per job"),
        "cpus_per_task": Parameter(4, "CPUs per job"),
        "mem_gb": Parameter(0.0, "memory per job in GB (0: the partition's default)"),
        "array_parallelism": Parameter(64, "jobs of an array running at once"),
        "max_array_size": Parameter(1000, "most tasks per array (the cluster's MaxArraySize)"),
        "extra": Parameter("", "extra sbatch parameters: key=value;key=value"),
        "folder": Parameter("", "submitit logs and pickles (default: RESULTS/slurm-logs)"),
        "wait": Parameter(True, "wait for the jobs; false: return right after submitting"),
        "poll_s": Parameter(5.0, "seconds between job-state polls"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["cluster"] not in CLUSTERS:
            raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}")
        if self.params["max_array_size"] < 1 or self.params["array_parallelism"] < 1:
            raise ValueError("max_array_size and array_parallelism must be at least 1")
        self.extra = parse_extra(self.params["extra"])
        require("submitit", "slurm", "slurm")

    def executor(self, results_dir: str) -> Any:
        """A submitit executor with this launcher's job parameters."""
        import submitit

        p = self.params
        folder = Path(p["folder"] or Path(results_dir) / "slurm-logs").expanduser()
        try:
            executor = submitit.AutoExecutor(folder=folder, cluster=p["cluster"])
        except RuntimeError as error:  # no srun here: not a SLURM machine
            raise GtbenchError(
                f"launcher slurm: {error} (cluster=local runs the jobs on this machine)"
            ) from None
        executor.update_parameters(
            name="gtbench",
            timeout_min=int(p["time"]),
            gpus_per_node=int(p["gpus_per_node"]),
            cpus_per_task=int(p["cpus_per_task"]),
            mem_gb=p["mem_gb"] or None,
            slurm_partition=p["partition"] or None,
            slurm_array_parallelism=int(p["array_parallelism"]),
            slurm_additional_parameters=self.extra or None,
        )
        return executor

    can_detach = True

    def launch(self, request: LaunchRequest, on_done: Callable[[str], None]) -> None:
        from gtbench_plugins.launchers._slurm_job import CellJob

        p = self.params
        wait = p["wait"] and request.options.get("wait", True)
        executor = self.executor(request.results_dir)
        queue = [dict(cell) for cell in request.cells]
        # SLURM throttles an array itself (%parallelism); the local executor starts every
        # job at once, so there we keep at most array_parallelism jobs alive.
        throttle = p["cluster"] != "slurm" and wait
        in_flight = p["array_parallelism"] if throttle else sys.maxsize
        running: list[tuple[Any, dict[str, Any]]] = []
        results = request.results_dir
        stamps = {c["run_id"]: record_stamp(request.results_dir, c["run_id"]) for c in queue}

        def submit(count: int) -> None:
            while count > 0 and queue:
                size = min(count, p["max_array_size"], len(queue))
                chunk, queue[:] = queue[:size], queue[size:]
                try:
                    with executor.batch():
                        calls = [CellJob(c, results, tables=not wait) for c in chunk]
                        jobs = [executor.submit(call) for call in calls]
                except Exception as error:  # noqa: BLE001 - sbatch's message, in one line
                    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                    raise GtbenchError(
                        f"submitting to {p['cluster']} failed ({len(running)} jobs already "
                        f"submitted keep running): {type(error).__name__}: {first}"
                    ) from None
                running.extend(zip(jobs, chunk, strict=True))
                count -= size

        submit(in_flight)
        if not wait:
            ids = sorted({str(job.job_id).split("_")[0] for job, _ in running})
            print(
                f"submitted {len(running)} jobs ({', '.join(ids)}); follow them with "
                f"`gtbench status --results {request.results_dir}`",
                file=sys.stderr,
            )
            return
        try:
            while running or queue:
                submit(in_flight - len(running))
                still = []
                for job, cell in running:
                    if not job.done():
                        still.append((job, cell))
                        continue
                    _settle(job, cell, request.results_dir, stamps[cell["run_id"]])
                    on_done(cell["run_id"])
                running = still
                if running:
                    time.sleep(p["poll_s"])
        except KeyboardInterrupt:
            if p["cluster"] == "slurm":
                print(
                    "submitted jobs keep running and write their records; "
                    f"`gtbench status --results {request.results_dir}` follows them",
                    file=sys.stderr,
                )
            raise


def _settle(job: Any, cell: dict[str, Any], results_dir: str, before: Stamp) -> None:
    """After a job ended: if it wrote no record, record the cell as failed with the
    job's own error (its return value is never used as a result)."""
    if wrote_record(results_dir, cell["run_id"], before):
        return
    try:
        error = job.exception()
    except Exception as raised:  # noqa: BLE001 - an uncompleted job raises instead of returning
        error = raised
    state = getattr(job, "state", "?")
    detail = f"{type(error).__name__}: {error}" if error is not None else "no error reported"
    message = f"job {job.job_id} ({state}) wrote no record: {detail}"
    record_lost_cell(cell, results_dir, message, before)
