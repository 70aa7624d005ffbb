"""A stand-in for the process launcher's cell runner: imports nothing heavy (a worker
starts in a fraction of a second), writes what it saw to ``<results>/<run_id>.env``, then
dies (``die``), sleeps (``sleep`` seconds) or returns."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def run(cell: dict[str, Any], results_dir: str, threads: int) -> str:
    seen = {
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "GTBENCH_DEVICE": os.environ.get("GTBENCH_DEVICE"),
        "pid": os.getpid(),
    }
    (Path(results_dir) / f"{cell['run_id']}.env").write_text(json.dumps(seen))
    if cell.get("die"):
        os._exit(3)
    time.sleep(cell.get("sleep", 0))
    return "ok"


def seen(results_dir: Path) -> dict[str, dict[str, Any]]:
    """run_id -> what its worker saw, for every cell that started."""
    return {p.stem: json.loads(p.read_text()) for p in results_dir.glob("*.env")}
