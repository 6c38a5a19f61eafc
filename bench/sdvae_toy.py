"""Where "❤️" ascent with --param sdvae --vae toy ends on the toy world, seed by seed (pixels and the toy-b judge).

    python bench/sdvae_toy.py [--seeds 8] [--seed 0] [--steps 100] [--tv 0] [--lr 0.1] [--sigma 1]

The heart check's options (4 cutouts, lr 0.1) in the scaled latent of the toy VAE (``clipxai toy
train-vae``, shipped as ``--vae toy``), from N(0, sigma^2) latent noise, without the per-seed
tints (the latent has no colour offset to draw) and, by default, without total variation (the
decoder is the prior). For each seed: the planted meaning read from the pixels' colour
signature (None when no planted colour dominates) and the one the independent toy-b reads by
zero-shot. One thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--tv", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--vae", default="toy")
    p.add_argument("--seed", type=int, default=0, help="the first seed (seeds SEED ... SEED+seeds-1)")
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch
    torch.set_num_threads(1)
    from clipxai.models import load_clip
    from clipxai.toy import groundtruth

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    t = time.perf_counter()
    check = groundtruth.heart_check(model, judge, seeds=args.seeds, steps=args.steps, param="sdvae", vae=args.vae,
                                    init_tint=None, tv=args.tv, lr=args.lr, sigma=args.sigma,
                                    seed=args.seed)
    agree = sum(p is not None and p == j for p, j in zip(check.pixel_concepts, check.judge_concepts))
    print(f"sdvae --vae {args.vae}, seeds {args.seed}-{args.seed + args.seeds - 1}, {args.steps} steps, lr {args.lr}, tv {args.tv}, "
          f"sigma {args.sigma} ({time.perf_counter() - t:.0f} s)")
    print(f"  the judge (toy-b) reads: {' '.join(check.judge_concepts)}")
    print(f"  the pixels show:         {' '.join(str(c) for c in check.pixel_concepts)}")
    print(f"  seeds where pixels and judge agree on a planted meaning: {agree} of {args.seeds}")


if __name__ == "__main__":
    main()
