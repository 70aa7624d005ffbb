"""Run cells in worker processes (``--workers N``); on a GPU machine, one worker per GPU.

Workers are spawned (not forked) so CUDA initialises cleanly in each; worker *i* sees
only GPU *i* through ``CUDA_VISIBLE_DEVICES``. A worker that dies (out of memory,
killed) fails only its own cell: the parent records it as failed and goes on."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from gtbench.api import Launcher, LaunchRequest, Parameter, run_cell
from gtbench_plugins.launchers._common import record_lost_cell, record_stamp


def _claim_device(devices: Any) -> None:
    """Worker initialiser: take one GPU id from the shared queue, if any."""
    try:
        device = devices.get_nowait()
    except Exception:  # noqa: BLE001 - queue empty: CPU worker
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = str(device)


def _run(cell: dict[str, Any], results_dir: str, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    return run_cell(cell, results_dir).status


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class ProcessLauncher(Launcher):
    description = "worker processes (--workers N; one per GPU on a GPU machine)"
    parameters: ClassVar = {
        "threads": Parameter(0, "torch threads per worker (0: cores / workers)"),
    }

    def launch(self, request: LaunchRequest, on_done: Callable[[str], None]) -> None:
        gpus = _gpu_count()
        workers = max(1, request.workers if request.workers > 0 else gpus or 1)
        threads = self.params["threads"] or max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        devices = context.Manager().Queue() if gpus else None
        for index in range(min(workers, gpus)):
            devices.put(index)
        cells = [dict(cell) for cell in request.cells]
        while cells:
            cells = self._run_pool(
                cells, request.results_dir, workers, threads, context, devices, on_done
            )

    def _run_pool(self, cells, results_dir, workers, threads, context, devices, on_done):  # noqa: ANN001, ANN202
        """Run ``cells``; return those to retry in a fresh pool after a worker died."""
        retry: list[dict[str, Any]] = []
        stamps = {cell["run_id"]: record_stamp(results_dir, cell["run_id"]) for cell in cells}
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_claim_device, initargs=(devices,)
        ) as pool:
            futures: dict[Future[str], dict[str, Any]] = {
                pool.submit(_run, cell, results_dir, threads): cell for cell in cells
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    cell = futures[future]
                    try:
                        future.result()
                    except BrokenProcessPool:
                        retry.append(cell)
                        continue
                    except Exception as error:  # noqa: BLE001 - recorded as this cell's failure
                        message = f"{type(error).__name__}: {error}"
                        record_lost_cell(cell, results_dir, message, stamps[cell["run_id"]])
                    on_done(cell["run_id"])
        if retry and len(retry) == len(cells):
            # Nothing finished in this pool: the first cell is the likely culprit.
            lost = retry[0]
            stamp = stamps[lost["run_id"]]
            record_lost_cell(lost, results_dir, "worker process died", stamp)
            on_done(retry[0]["run_id"])
            retry = retry[1:]
        return retry
