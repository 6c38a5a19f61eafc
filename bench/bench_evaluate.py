"""Evaluating a run (``clipxai.evaluate``) with two judges against encoding its snapshots once per judge.

    python bench/bench_evaluate.py [--snapshots 300] [--threads 1] [--repeat 5]

Writes a ``--snapshots``-snapshot run of toy-world images (the three planted meanings of "❤️" in
turn, so the analysis finds states) whose embeddings are the toy CLIP's own, analyses it
(untimed), then times: the baseline, encoding every snapshot once with each of the two judges
(``toy-b`` and a second copy of ``toy``; batches of 64, no gradients); ``clipxai.evaluate`` with
its defaults (each state on up to 8 of its snapshots, the final image, the toy world's reference
images, the renders of the written words, evaluation.json included); and ``clipxai.evaluate``
with every snapshot of every state measured (``per_state`` = the run's length). Target: the
default evaluation < 2 x the baseline. All three models are the same size (the toy's ViT). The
baseline and the default evaluation take about a second each here, so they are timed ``--repeat``
times, interleaved in this one process (a load that rises or falls hits both alike), and the median
of the ratios is the figure, printed with their range.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_explain import cpu_name, write_run  # noqa: E402


def snapshot_images(n: int, seed: int = 0) -> np.ndarray:
    """``n`` toy-world images: a third of each planted meaning, one meaning after the other."""
    from clipxai.toy import world  # noqa: PLC0415

    parts = [world.generate(n // 3 + (k < n % 3), seed + k, concept=c).images for k, c in enumerate(world.PLANTED)]
    return np.concatenate(parts).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved timings of the baseline and the evaluation")
    args = ap.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import clipxai  # noqa: PLC0415
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.analysis.trust.judges import image_embeddings  # noqa: PLC0415
    from clipxai.models.load import load_clip  # noqa: PLC0415

    model, judges = load_clip("toy", "cpu"), [load_clip("toy-b", "cpu"), load_clip("toy", "cpu")]
    images = snapshot_images(args.snapshots)
    def encode_once() -> float:
        with torch.inference_mode():
            t0 = time.perf_counter()
            for j in judges:
                image_embeddings(j, images)
            return time.perf_counter() - t0

    with torch.inference_mode():
        image_embeddings(model, images[:2])                                             # warm-up
        emb = image_embeddings(model, images).numpy()
    root = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    try:
        run = write_run(root, images, emb, "toy")
        analyze_run(clipxai.load_run(run), AnalyzeOptions(projections=("pca",), gif=False, labels=False), model=model)
        encodes, defaults = [], []
        for _ in range(max(1, args.repeat)):
            encodes.append(encode_once())
            t0 = time.perf_counter()
            data = clipxai.evaluate(run, judges=judges, model=model)
            defaults.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        every = clipxai.evaluate(run, judges=judges, model=model, per_state=args.snapshots)
        full = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    measured = sum(s["images"] for s in data["states"]) + 1
    ratios = np.asarray(defaults) / np.asarray(encodes)
    encode, default = float(np.median(encodes)), float(np.median(defaults))
    print(f"toy CLIP (ViT, {model.input_resolution} px), {args.snapshots} snapshots, judges toy-b and toy, "
          f"{args.threads} thread(s), {cpu_name()}, load {os.getloadavg()[0]:.2f}")
    print(f"  encode the snapshots once per judge (2 judges): {encode:6.2f} s (median of {len(encodes)})")
    print(f"  evaluate (defaults: {len(data['states'])} states, {measured} images measured): {default:6.2f} s "
          f"(median of {len(defaults)})")
    print(f"  evaluate (every snapshot: {sum(s['images'] for s in every['states']) + 1} images measured): {full:6.2f} s")
    print(f"evaluate / encode: {np.median(ratios):.2f} (median of {len(ratios)} interleaved pairs, range "
          f"{ratios.min():.2f}-{ratios.max():.2f}; target < 2); every snapshot measured: {full / encode:.2f}")


if __name__ == "__main__":
    main()
