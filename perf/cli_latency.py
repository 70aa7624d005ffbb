"""Wall time of the command lines a user types most, each run as a fresh subprocess.

``gtbench --help`` and every usage error should answer in well under a second: the CLI
imports torch, torch-fidelity and pandas only inside the commands that need them, and
unknown plugin names are found from entry-point metadata alone. Listing plugins, planning
a sweep and reading records import torch (plugin classes) but not torch-fidelity.

Prints the median (and min, max) wall time of ``--repeat`` runs per command, the median
CPU time (user + system: nearly independent of the machine's load), and which heavy
modules each one imported. ``PYTHONPATH=<old checkout>/benchmark:<old checkout>/plugins``
measures another version of the code with the same installed entry points (a "before"
figure).

    python perf/cli_latency.py                 # the installed `gtbench` next to python
    python perf/cli_latency.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = str(Path(__file__).resolve().parents[1] / "results" / "reference")
COMMANDS: list[list[str]] = [
    ["--help"],
    ["run", "--help"],
    ["run", "--methods", "nope"],
    ["run", "--shots", "ten"],
    ["run", "--bogus-option"],
    ["list"],
    ["run", "--methods", "all", "--dry-run"],
    # read-only commands on the committed results (256 records)
    ["status", "--results", REFERENCE],
    ["compare", "finetune", "cdc", "--results", REFERENCE],
]
HEAVY = ("torch", "torch_fidelity", "pandas")
# Prints which heavy modules the CLI process imported (appended to its own output).
PROBE = (
    "import atexit, sys\n"
    "def _report():\n"
    "    loaded = [m for m in {heavy!r} if m in sys.modules]\n"
    "    sys.stderr.write('\\nHEAVY:' + ','.join(loaded) + '\\n')\n"
    "atexit.register(_report)\n"
    "sys.argv = ['gtbench', *sys.argv[1:]]\n"
    "from gtbench.cli.main import main\n"
    "main()\n"
)


def time_command(
    args: list[str], repeat: int, env: dict[str, str]
) -> tuple[list[float], list[float], int, str]:
    """Wall seconds and CPU seconds (user + system) per run, the exit status and the heavy
    modules imported. CPU time hardly depends on what else the machine runs."""
    seconds, cpu, status, heavy = [], [], 0, ""
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                capture_output=True,
                text=True,
                cwd=folder,  # an empty folder: `run` finds no ./results there
                env=env,
            )
            seconds.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            status = done.returncode
            marker = done.stderr.rsplit("HEAVY:", 1)
            heavy = marker[1].strip() if len(marker) == 2 else "?"
    return seconds, cpu, status, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GTBENCH_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_s = time.perf_counter() - started
    print(f"python {sys.version.split()[0]} at {Path(sys.executable)}, {os.cpu_count()} CPUs")
    print(f"bare interpreter start: {python_s:.3f} s")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    labels = ["gtbench " + " ".join(c).replace(REFERENCE, "results/reference") for c in COMMANDS]
    width = max(len(label) for label in labels)
    print(
        f"{'command':<{width}} {'median':>8} {'min':>7} {'max':>7} {'cpu':>7}  exit  heavy imports"
    )
    for command, label in zip(COMMANDS, labels, strict=True):
        seconds, cpu, status, heavy = time_command(command, args.repeat, env)
        print(
            f"{label:<{width}} {statistics.median(seconds):>7.2f}s {min(seconds):>6.2f}s "
            f"{max(seconds):>6.2f}s {statistics.median(cpu):>6.2f}s  {status:>4}  {heavy or '-'}"
        )


if __name__ == "__main__":
    main()
