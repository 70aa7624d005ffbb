"""Run cells in worker processes (``--workers N``); on a GPU machine, one worker per GPU.

GPUs are handed out per worker from the parent's visible devices (its
``CUDA_VISIBLE_DEVICES``, else every GPU torch sees; ``--device cuda:N`` picks one of
them, ``--device cpu`` none): each worker is a *lane* that keeps its GPU for its whole
life and sees only that GPU (``CUDA_VISIBLE_DEVICES`` set before CUDA starts, the cell's
device then ``cuda``). A lane whose process dies (out of memory, killed) fails only the
cell it was running, and is started again *with the same GPU*. More workers than GPUs
is refused unless ``share_gpus=true`` (lanes then share GPUs round-robin).

Workers are spawned (not forked) so CUDA initialises cleanly in each. On SIGTERM or
Ctrl-C the queued cells are cancelled (never started), running workers are stopped, and
the interruption propagates (those cells leave no record, so a rerun resumes them)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, ClassVar

from gtbench.api import Launcher, LaunchRequest, Parameter
from gtbench.errors import UsageError
from gtbench_plugins.launchers._common import record_lost_cell, record_stamp
from gtbench_plugins.launchers._lane import set_environment

DEVICE_ENV = "GTBENCH_DEVICE"


def _run(cell: dict[str, Any], results_dir: str, threads: int) -> str:
    import torch

    from gtbench.launcher import run_cell

    torch.set_num_threads(threads)
    return run_cell(cell, results_dir).status


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries: the parent's
    own mask when set (ids or UUIDs, in its order), else ``0 .. count-1``."""
    count = _gpu_count()
    if count == 0:
        return []
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        return [str(index) for index in range(count)]
    return [entry.strip() for entry in mask.split(",") if entry.strip()][:count]


CPU_WORKERS_MAX = 4


def assign_devices(
    gpus: list[str], workers: int, share: bool, device: str | None
) -> list[str | None]:
    """One entry per worker lane: the GPU it sees, or None for a CPU lane.

    ``workers`` 0 means one per GPU, or without GPUs one per CPU core (at most
    ``CPU_WORKERS_MAX``: small cells scale better as single-threaded processes than as
    one process with several threads); ``device`` is ``GTBENCH_DEVICE``
    (``cpu``: no GPU; ``cuda:N``: the N-th visible GPU only)."""
    device = (device or "").strip()
    if device == "cpu" or device == "mps":
        gpus = []
    elif device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        if index >= len(gpus):
            raise UsageError(
                f"--device {device}: only {len(gpus)} GPU(s) visible "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})"
            )
        gpus = [gpus[index]]
    elif device == "cuda" and not gpus:
        raise UsageError("--device cuda: no GPU visible to this process")
    if not gpus:
        return [None] * (workers or max(1, min(os.cpu_count() or 1, CPU_WORKERS_MAX)))
    workers = workers or len(gpus)
    if workers > len(gpus) and not share:
        raise UsageError(
            f"--workers {workers} is more than the {len(gpus)} visible GPU(s); use "
            f"--workers {len(gpus)}, or --launcher process:share_gpus=true to put several "
            "workers on one GPU"
        )
    return [gpus[index % len(gpus)] for index in range(workers)]


def _lane_environment(gpu: str | None, device: str | None) -> dict[str, str]:
    if gpu is None:
        return {DEVICE_ENV: device} if device else {}
    return {"CUDA_VISIBLE_DEVICES": gpu, DEVICE_ENV: "cuda"}


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt here while the launcher runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Lane:
    """One worker process with a fixed environment (its GPU), started again if it dies."""

    def __init__(self, environment: dict[str, str], context: Any) -> None:
        self.environment, self.context = environment, context
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=self.context,
            initializer=set_environment,
            initargs=(self.environment,),
        )

    def restart(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self._start()

    def stop(self) -> None:
        """Cancel what is queued and end the worker now (an interruption)."""
        processes = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)


class ProcessLauncher(Launcher):
    description = (
        "worker processes (--workers N; default one per visible GPU, or one per CPU core "
        "up to 4 without GPUs)"
    )
    parameters: ClassVar = {
        "threads": Parameter(0, "torch threads per worker (0: cores / workers)"),
        "share_gpus": Parameter(
            False, "allow more workers than visible GPUs (they share GPUs round-robin)"
        ),
    }

    def launch(self, request: LaunchRequest, on_done: Callable[[str], None]) -> None:
        device = os.environ.get(DEVICE_ENV)
        slots = assign_devices(visible_gpus(), request.workers, self.params["share_gpus"], device)
        threads = self.params["threads"] or max(1, (os.cpu_count() or 1) // len(slots))
        context = multiprocessing.get_context("spawn")
        queue = [dict(cell) for cell in request.cells]
        queue.reverse()  # pop() from the end keeps the plan's order
        stamps: dict[str, Any] = {}
        running: dict[Future[str], tuple[_Lane, dict[str, Any]]] = {}
        lanes = [_Lane(_lane_environment(gpu, device), context) for gpu in slots]
        idle = list(lanes)
        try:
            with _sigterm_interrupts():
                while queue or running:
                    while queue and idle:
                        lane, cell = idle.pop(0), queue.pop()
                        stamps[cell["run_id"]] = record_stamp(request.results_dir, cell["run_id"])
                        future = lane.pool.submit(_run, cell, request.results_dir, threads)
                        running[future] = (lane, cell)
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        lane, cell = running.pop(future)
                        self._settle(future, lane, cell, request.results_dir, stamps)
                        idle.append(lane)
                        on_done(cell["run_id"])
        except BaseException:
            for lane in lanes:
                lane.stop()
            raise
        for lane in lanes:
            lane.pool.shutdown(wait=True)

    @staticmethod
    def _settle(
        future: Future[str],
        lane: _Lane,
        cell: dict[str, Any],
        results_dir: str,
        stamps: dict[str, Any],
    ) -> None:
        """Record a cell whose worker failed to write its own record."""
        run_id = cell["run_id"]
        try:
            future.result()
        except BrokenProcessPool:
            # one cell per lane at a time: the dead worker was running exactly this cell
            record_lost_cell(cell, results_dir, "worker process died", stamps[run_id])
            lane.restart()
        except Exception as error:  # noqa: BLE001 - recorded as this cell's failure
            message = f"{type(error).__name__}: {error}"
            record_lost_cell(cell, results_dir, message, stamps[run_id])
