"""How fast the command line answers: ``clipxai --help`` and ``clipxai runs`` (no torch import).

Prints the median wall time of several runs of each, and their CPU time (steady on a busy
machine; wall time also counts waiting for a core).

    python bench/bench_cli.py [--repeat 7]
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

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    with tempfile.TemporaryDirectory() as empty:
        for label, argv in (("clipxai --help", ["--help"]), ("clipxai runs (empty folder)", ["runs", empty])):
            wall, cpu = timed(argv, args.repeat)
            print(f"{label:<30} median {wall:.2f} s wall, {cpu:.2f} s CPU over {args.repeat} runs  (target < 0.5 s)")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
