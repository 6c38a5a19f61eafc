"""Speed of the analysis as a run grows: 1k, 10k and 100k snapshots of 512-D embeddings.

    python bench/bench_analysis.py [--sizes 1000,10000,100000] [--dim 512] [--image 32]
                                   [--steps-per-snapshot 10] [--umap] [--keep DIR]
    python bench/bench_analysis.py --snapshots 10000 --image 64 --umap      # one size, as before

For each size, writes a synthetic native run (5 planted states, noise 1.0, a snapshot every
``--steps-per-snapshot`` steps and a metrics.jsonl line for every step, so 100k snapshots
come with 1M logged steps whose similarity saw-tooths: a drop every ~13 steps), then times,
each in this one process: cluster + oscillation metrics from a freshly loaded run (target
<= 60 s at 100k), the per-step dynamics over every logged step (metrics.jsonl read and
analysed), the UMAP projection with ``--umap`` (includes numba's start-up in this process),
and ``report`` from scratch: analyse (PCA pictures, every chart, GIF) and render (target
<= 60 s at 100k), then once more reusing that analysis. Prints one line per figure with
the peak memory so far, then a table of every stage at every size with the exponent of a
power law fitted to time against size (the slope of log time on log size; target <= 1.2).
Threads: 1 (OMP_NUM_THREADS / torch), as in the tests. The CPU is named first.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from clipxai.analysis.check import synthetic  # noqa: E402
from clipxai.runs.load import load_run  # noqa: E402
from clipxai.runs.writer import RunWriter  # noqa: E402
from clipxai.util.cpu import describe_cpu  # noqa: E402

TARGETS = {"cluster + oscillation": 60.0, "umap projection": 60.0, "report": 60.0}   # seconds, at 100k
MAX_EXPONENT = 1.2


def write_long_run(parent: Path, n: int, dim: int, size: int, every: int = 10) -> Path:
    """A complete run of ``n`` snapshots, one every ``every`` steps, and a metrics line for each step."""
    rng = np.random.default_rng(0)
    traj = synthetic.planted_states(rng, n=n, k=5, dim=dim, mean_dwell=40, noise=1.0, snapshot_every=every)
    w = RunWriter.create(parent, f"long-run-{n}", {"prompt": "❤️",
                                                   "prompts": [{"text": "❤️", "weight": 1.0, "kind": "text"}],
                                                   "config": {"snapshot_every": every},
                                                   "model": {"name": "random:tiny"}})
    w.allocate("steps", n, (), "int64", "step")
    w.allocate("embeddings", n, (dim,), "float32", "embedding")
    images = w.allocate("images", n, (3, size, size), "float16", "image")
    w.arrays["steps"][:] = traj.steps
    w.arrays["embeddings"][:] = traj.embeddings
    palette = rng.random((8, 3))
    for start in range(0, n, 500):
        part = palette[traj.states[start:start + 500] % 8][:, :, None, None]
        images[start:start + 500] = np.broadcast_to(part, (len(part), 3, size, size))
    w.write_manifest(n_snapshots=n, steps_done=n * every, steps_total=n * every, status="complete")
    w.close()
    # Every step's metrics: a similarity that climbs and drops suddenly every ~13 steps, with noise.
    steps = np.arange(n * every)
    sim = 0.3 + 0.002 * (steps % 13) + 0.0005 * rng.standard_normal(len(steps))
    with open(w.path / "metrics.jsonl", "w", encoding="utf-8") as f:
        for start in range(0, len(steps), 100_000):
            f.write("".join(f'{{"step": {s}, "loss": {-v:.6f}, "sim/❤️": {v:.6f}, "grad_norm": 0.001, '
                            f'"lr": 0.05, "time": {s * 0.01:.2f}}}\n'
                            for s, v in zip(steps[start:start + 100_000].tolist(),
                                            sim[start:start + 100_000].tolist())))
    return w.path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn, n: int, table: dict):
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    table.setdefault(label, {})[n] = dt
    target = TARGETS.get(label)
    verdict = "" if target is None or n < 100_000 else f"  (target <= {target:.0f} s: {'ok' if dt <= target else 'SLOW'})"
    print(f"  {label:30s} {dt:7.2f} s   peak memory so far {peak_mb():6.0f} MB   load "
          f"{os.getloadavg()[0]:.2f}{verdict}", flush=True)
    return out


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size)."""
    x, y = np.log(sizes), np.log(np.maximum(seconds, 1e-6))
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="snapshot counts, comma-separated")
    ap.add_argument("--snapshots", type=int, default=None, help="one size only (instead of --sizes)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--image", type=int, default=32, help="image side in pixels")
    ap.add_argument("--steps-per-snapshot", type=int, default=10, help="logged steps per snapshot")
    ap.add_argument("--umap", action="store_true", help="also time the UMAP projection")
    ap.add_argument("--keep", type=Path, default=None, help="write the runs here instead of a temporary folder")
    args = ap.parse_args()
    sizes = [args.snapshots] if args.snapshots else [int(s) for s in args.sizes.split(",")]

    import torch  # noqa: PLC0415
    torch.set_num_threads(1)
    from clipxai.analysis.analyze import AnalyzeOptions  # noqa: PLC0415
    from clipxai.analysis.draw.project import project  # noqa: PLC0415
    from clipxai.analysis.motion.dynamics import dynamics_from_run  # noqa: PLC0415
    from clipxai.analysis.motion.oscillation import oscillation  # noqa: PLC0415
    from clipxai.analysis.states.assign import infer_states  # noqa: PLC0415
    from clipxai.analysis.states.features import run_features  # noqa: PLC0415
    from clipxai.report.report import write_report  # noqa: PLC0415

    print(describe_cpu())
    root = args.keep or Path(tempfile.mkdtemp(prefix="clipxai-bench-"))
    table: dict[str, dict[int, float]] = {}
    for n in sizes:
        print(f"run: {n} snapshots x {args.dim}-D embeddings, {args.image}px images, "
              f"{n * args.steps_per_snapshot} logged steps; threads 1; load average {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} cores", flush=True)
        path = root / f"long-run-{n}"
        if not (path / "run.json").is_file():
            path = timed("write synthetic run", lambda: write_long_run(root, n, args.dim, args.image,
                                                                          args.steps_per_snapshot), n, table)

        def metrics():
            run = load_run(path)
            feats = run_features(run)
            st = infer_states(feats.values)
            return st, oscillation(st.states, run.steps, st.reduced)

        st, osc = timed("cluster + oscillation", metrics, n, table)
        print(f"    -> {osc.n_states} states, {osc.switches} switches, verdict {osc.verdict}")
        dyn = timed("dynamics (every logged step)", lambda: dynamics_from_run(load_run(path)), n, table)
        print(f"    -> {len(dyn.steps)} steps read, cycling {dyn.cycling}: {dyn.reason[:100]}")
        if args.umap:
            timed("umap projection", lambda: project(st.reduced, "umap"), n, table)
        opts = AnalyzeOptions(projections=("pca",), labels=False)
        out = root / f"report-{n}" / "report.html"
        timed("report", lambda: write_report([path], out, opts=opts, reanalyze=True, overwrite=True), n, table)
        timed("report of the analysed run", lambda: write_report([path], out, opts=opts, overwrite=True), n, table)
        print(f"    report size {out.stat().st_size / 1e6:.1f} MB (figures embedded)")
    print(f"\n{describe_cpu()}\nload average now {os.getloadavg()[0]:.2f}")
    print(f"{'stage':32s}" + "".join(f"{n:>11,}" for n in sizes) + "   exponent")
    for label, by_size in table.items():
        if label == "write synthetic run" or len(by_size) != len(sizes):
            continue
        secs = [by_size[n] for n in sizes]
        slope = exponent(sizes, secs) if len(sizes) > 1 else float("nan")
        flag = "" if len(sizes) < 2 else ("  ok" if slope <= MAX_EXPONENT else f"  ABOVE {MAX_EXPONENT}")
        print(f"{label:32s}" + "".join(f"{t:10.2f}s" for t in secs) + f"   {slope:6.2f}{flag}")


if __name__ == "__main__":
    main()
