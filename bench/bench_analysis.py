"""Speed of the analysis on a long run: 10,000 snapshots of 512-D embeddings.

    python bench/bench_analysis.py [--snapshots 10000] [--dim 512] [--image 64] [--keep DIR]

Writes a synthetic native run (5 planted states, noise 1.0), then times, each in this one
process: cluster + oscillation metrics from a freshly loaded run (target < 20 s), the UMAP
projection (target < 60 s; includes numba's start-up in this process), and ``report`` from
scratch: analyse (PCA pictures, every chart, GIF) and render (target < 30 s), then once more
reusing that analysis. Prints one line per figure with the peak memory so far. Threads: 1 (OMP_NUM_THREADS / torch), as in the tests.
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

TARGETS = {"cluster + oscillation": 20.0, "umap projection": 60.0, "report": 30.0}


def write_long_run(parent: Path, n: int, dim: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    traj = synthetic.planted_states(rng, n=n, k=5, dim=dim, mean_dwell=40, noise=1.0)
    w = RunWriter.create(parent, "long-run", {"prompt": "❤️", "prompts": [{"text": "❤️", "weight": 1.0, "kind": "text"}],
                                              "config": {"snapshot_every": 10}, "model": {"name": "random:tiny"}})
    w.allocate("steps", n, (), "int64", "step")
    w.allocate("embeddings", n, (dim,), "float32", "embedding")
    images = w.allocate("images", n, (3, size, size), "float16", "image")
    w.arrays["steps"][:] = traj.steps
    w.arrays["embeddings"][:] = traj.embeddings
    palette = rng.random((8, 3))
    for start in range(0, n, 500):
        part = palette[traj.states[start:start + 500] % 8][:, :, None, None]
        images[start:start + 500] = np.broadcast_to(part, (len(part), 3, size, size))
    for i in range(n):
        w.append_metrics({"step": int(traj.steps[i]), "loss": -0.3, "sim/❤️": 0.3, "grad_norm": 1e-3, "lr": 0.05})
    w.write_manifest(n_snapshots=n, status="complete")
    w.close()
    return w.path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    target = TARGETS.get(label)
    verdict = "" if target is None else (f"  (target < {target:.0f} s: {'ok' if dt < target else 'SLOW'})")
    print(f"{label:30s} {dt:7.2f} s   peak memory so far {peak_mb():6.0f} MB{verdict}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--image", type=int, default=64, help="image side in pixels")
    ap.add_argument("--keep", type=Path, default=None, help="write the run here instead of a temporary folder")
    args = ap.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch  # noqa: PLC0415
    torch.set_num_threads(1)
    from clipxai.analysis.analyze import AnalyzeOptions  # noqa: PLC0415
    from clipxai.analysis.draw.project import project  # noqa: PLC0415
    from clipxai.analysis.motion.oscillation import oscillation  # noqa: PLC0415
    from clipxai.analysis.states.assign import infer_states  # noqa: PLC0415
    from clipxai.analysis.states.features import run_features  # noqa: PLC0415
    from clipxai.report.report import write_report  # noqa: PLC0415

    root = args.keep or Path(tempfile.mkdtemp(prefix="clipxai-bench-"))
    print(f"run: {args.snapshots} snapshots x {args.dim}-D embeddings, {args.image}px images; threads 1; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    path = timed("write synthetic run", lambda: write_long_run(root, args.snapshots, args.dim, args.image))

    def metrics():
        run = load_run(path)
        feats = run_features(run)
        st = infer_states(feats.values)
        return st, oscillation(st.states, run.steps, st.reduced)

    st, osc = timed("cluster + oscillation", metrics)
    print(f"  -> {osc.n_states} states, {osc.switches} switches, verdict {osc.verdict}")
    timed("umap projection", lambda: project(st.reduced, "umap"))
    opts = AnalyzeOptions(projections=("pca",), labels=False)
    out = root / "report" / "report.html"
    timed("report", lambda: write_report([path], out, opts=opts, reanalyze=True))
    timed("report of the analysed run", lambda: write_report([path], out, opts=opts))
    print(f"report size {out.stat().st_size / 1e6:.1f} MB (figures embedded)")
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
