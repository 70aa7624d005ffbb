"""What one cell costs in memory: the peak resident memory of the process while the cell
ran, and the peak CUDA memory where the cell used a GPU.

A worker process runs many cells, and ``getrusage``'s ``ru_maxrss`` is the maximum since
the process started: it never resets, so it would charge every cell with the largest
cell before it. Per cell, in order of preference:

- ``vmhwm``: Linux resets the process's resident high-water mark on request (writing
  ``5`` to ``/proc/self/clear_refs``); ``VmHWM`` in ``/proc/self/status`` is then exactly
  the peak since the cell started.
- ``sampled``: the resident size read every 20 ms by a thread (``/proc/self/statm``, or
  psutil where installed): a lower bound that can miss a spike shorter than 20 ms.
- ``process-max``: ``ru_maxrss``, the peak since the process started (an upper bound),
  where nothing better is available.

CUDA: ``torch.cuda.max_memory_allocated`` (tensors) and ``max_memory_reserved`` (the
caching allocator's pool, nearer to what ``nvidia-smi`` shows), reset when the cell
starts.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import threading
from pathlib import Path
from typing import Any

MB = 2**20
SAMPLE_EVERY_S = 0.02
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATM = Path("/proc/self/statm")


def _high_water_mark() -> int | None:
    """``VmHWM`` of this process in bytes, or None where the kernel does not report it."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _reset_high_water_mark() -> bool:
    """Reset ``VmHWM`` to the current resident size; whether the kernel did it."""
    try:
        with _CLEAR_REFS.open("w") as handle:
            handle.write("5")
    except OSError:
        return False
    return _high_water_mark() is not None


def _resident_reader() -> Any:
    """A function returning the current resident size in bytes, or None if none works."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        _STATM.read_text()

        def statm() -> int:
            return int(_STATM.read_text().split()[1]) * page

        return statm
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    process = psutil.Process()
    return lambda: int(process.memory_info().rss)


def _process_max() -> int:
    """``ru_maxrss`` in bytes (kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class PeakMemory:
    """The peak memory of this process between :meth:`start` and :meth:`stop`.

    ``cuda``: also the peak CUDA memory of the current device (reset at start)."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.how = ""
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PeakMemory:
        if _reset_high_water_mark():
            self.how = "vmhwm"
        elif (reader := _resident_reader()) is not None:
            self.how = "sampled"
            self._peak = reader()
            self._thread = threading.Thread(target=self._sample, args=(reader,), daemon=True)
            self._thread.start()
        else:
            self.how = "process-max"
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        return self

    def _sample(self, reader: Any) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._peak = max(self._peak, reader())

    def stop(self) -> dict[str, Any]:
        """``peak_rss_mb``, how it was measured (``peak_rss_measure``) and, with CUDA,
        ``cuda_peak_mb`` (allocated) and ``cuda_reserved_peak_mb``."""
        if self.how == "vmhwm":
            peak = _high_water_mark() or 0
        elif self.how == "sampled":
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            reader = _resident_reader()
            peak = max(self._peak, reader() if reader is not None else 0)
        else:
            peak = _process_max()
        memory: dict[str, Any] = {
            "peak_rss_mb": round(peak / MB, 1),
            "peak_rss_measure": self.how,
        }
        if self.cuda:
            import torch

            memory["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1)
            memory["cuda_reserved_peak_mb"] = round(torch.cuda.max_memory_reserved() / MB, 1)
        return memory
