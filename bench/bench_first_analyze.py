"""The first analyze of a run against the second: what one-off work a user waits for.

    python bench/bench_first_analyze.py [--steps 300] [--repeat 2]

Makes one toy run (``--steps`` steps, a snapshot every step, 4 cutouts), then times
``clipxai analyze`` on it in fresh processes, as a user would: the first with every cache
empty (``$CLIPXAI_CACHE`` and numba's, new folders), the second right after with the caches
it left; each analyze writes its analysis afresh. ``--repeat`` rounds, each with
new empty caches. Target: first <= 1.5 x second. Threads: 1 (OMP_NUM_THREADS), as in the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def analyze(run: Path, cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "CLIPXAI_CACHE": str(cache), "NUMBA_CACHE_DIR": str(cache / "numba")}
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "analyze", str(run), "-q"], check=True,
                   env=env, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench-first-analyze-"))
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        made = subprocess.run([sys.executable, str(ROOT / "cli.py"), "ascend", "❤️", "--model", "toy", "--steps",
                               str(args.steps), "--snapshot-every", "1", "--cutouts", "4", "--out", str(root),
                               "--name", "run", "--quiet"], check=True, env=env, capture_output=True, text=True)
        run = Path(made.stdout.strip().splitlines()[-1])
        print(f"toy run of {args.steps} snapshots: {run}   (load {os.getloadavg()[0]:.2f})", flush=True)
        ratios = []
        for r in range(args.repeat):
            cache = root / f"cache-{r}"
            first, second = analyze(run, cache), analyze(run, cache)
            ratios.append(first / second)
            print(f"  round {r + 1}: first {first:5.1f} s, second {second:5.1f} s, ratio {first / second:4.2f}   "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
        print(f"first / second analyze, median over {args.repeat} round(s): {statistics.median(ratios):.2f} "
              f"(target <= 1.5)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
