"""Run cells as Ray tasks (``pip install 'gtbench[ray]'``).

    gtbench run --launcher ray                                 # a local Ray instance
    gtbench run --launcher ray:address=auto,num_gpus=1         # the cluster this node is in
    gtbench run --launcher ray:address=ray://head:10001,num_gpus=0.5

One task per cell, each calling :func:`gtbench.launch.runner.run_cell`; the results folder must
be reachable from every node (a shared filesystem), and gtbench installed on each. As
with every launcher, results are read from the run folders, never from task return
values: a task whose worker died gets a ``failed`` record from this process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gtbench.api import Launcher, LaunchRequest, Parameter
from gtbench_plugins.launchers._common import record_lost_cell, record_stamp, require, wrote_record


def _run(cell: dict[str, Any], results_dir: str, threads: int) -> str:
    """The task body: runs in a Ray worker."""
    import torch

    from gtbench.api import run_cell

    torch.set_num_threads(threads)
    return run_cell(cell, results_dir).status


class RayLauncher(Launcher):
    description = "Ray tasks, one per cell, on a local or existing cluster (extra: ray)"
    parameters: ClassVar = {
        "address": Parameter("", "cluster to join (auto, ray://host:port); empty: start one here"),
        "num_gpus": Parameter(-1.0, "GPUs per task (-1: 1 if the cluster has GPUs, else 0)"),
        "num_cpus": Parameter(1.0, "CPUs per task"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["num_cpus"] <= 0:
            raise ValueError("num_cpus must be positive")
        require("ray", "ray", "ray")

    def launch(self, request: LaunchRequest, on_done: Callable[[str], None]) -> None:
        import ray

        p = self.params
        started = not ray.is_initialized()
        if started:
            if p["address"]:
                ray.init(address=p["address"], log_to_driver=False)
            else:
                # --workers N caps the tasks a local instance runs at once
                cpus = request.workers * p["num_cpus"] if request.workers > 1 else None
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        try:
            gpus = p["num_gpus"]
            if gpus < 0:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
            task = ray.remote(num_cpus=p["num_cpus"], num_gpus=gpus, max_retries=0)(_run)
            threads = max(1, int(p["num_cpus"]))
            cells = {}
            stamps = {}
            for cell in request.cells:
                stamps[cell["run_id"]] = record_stamp(request.results_dir, cell["run_id"])
                ref = task.remote(dict(cell), request.results_dir, threads)
                cells[ref] = dict(cell)
            pending = list(cells)
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                for ref in finished:
                    cell = cells.pop(ref)
                    self._settle(ray, ref, cell, request.results_dir, stamps[cell["run_id"]])
                    on_done(cell["run_id"])
        finally:
            if started:
                ray.shutdown()

    @staticmethod
    def _settle(ray: Any, ref: Any, cell: dict[str, Any], results_dir: str, before: Any) -> None:
        """A task that wrote no record (its worker died) gets a failed one."""
        if wrote_record(results_dir, cell["run_id"], before):
            return
        try:
            ray.get(ref)
            error = "task ended without writing a record"
        except Exception as raised:  # noqa: BLE001 - Ray's error for the lost task
            error = f"{type(raised).__name__}: {str(raised).strip()}"
        record_lost_cell(cell, results_dir, error, before)
