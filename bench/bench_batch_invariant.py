"""What --batch-invariant costs: K seeds batched with each seed's views in its own encoder pass,
against the same batch encoded in one pass (docs/performance.md).

    python bench/bench_batch_invariant.py [--model toy] [--seeds 4] [--steps 20] [--cutouts 8] [--threads 1]

``--model random:ViT-B/32`` times a randomly initialised ViT-B/32 (weights do not change speed).
Steps of the two are timed in alternating rounds in one process, so load from other programs
hits both alike; prints seconds per step of each and their ratio, and whether seed K-1 of the
batch equals that seed run alone (bit for bit) with the option on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cutouts", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    import clipxai  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    out = tempfile.mkdtemp()

    def ascend(name, seed, seeds, **options):
        t = time.perf_counter()
        runs = clipxai.ascend("a red heart", model=args.model, steps=args.steps, seed=seed, seeds=seeds,
                              cutouts=args.cutouts, snapshot_every=max(1, args.steps // 4), quiet=True, out=out, name=name,
                              device="cpu", **options)
        return runs, (time.perf_counter() - t) / args.steps

    ascend("warm", 0, args.seeds)
    plain, invariant = [], []
    for r in range(args.rounds):
        plain.append(ascend(f"plain{r}", 0, args.seeds)[1])
        batch, t = ascend(f"inv{r}", 0, args.seeds, batch_invariant=True)
        invariant.append(t)
    alone, _ = ascend("alone", args.seeds - 1, 1, batch_invariant=True)
    same = all(np.array_equal(batch[-1].array(n), alone[0].array(n)) for n in ("images", "embeddings", "latents"))
    p, i = float(np.median(plain)), float(np.median(invariant))
    print(f"{args.model}, {args.seeds} seeds x {args.cutouts} cutouts, {args.steps} steps, {args.threads} thread(s), "
          f"median of {args.rounds} rounds")
    print(f"  one pass for the batch:      {p * 1000:8.1f} ms/step")
    print(f"  --batch-invariant:           {i * 1000:8.1f} ms/step")
    print(f"  ratio (invariant / one pass): {i / p:6.2f}")
    print(f"  seed {args.seeds - 1} of the batch equals it alone, bit for bit: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
