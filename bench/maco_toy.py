"""Where "❤️" ascent with --param maco ends on the toy world, seed by seed (pixels and the toy-b judge).

    python bench/maco_toy.py [--seeds 8] [--steps 100] [--reference DIR]

The heart check's options (4 cutouts, lr 0.1), without the per-seed tints (maco has no colour
offset to draw) and without total variation (the fixed spectrum already sets the smoothness).
For each seed: the planted meaning read from the pixels' colour signature (None when no planted
colour dominates) and the one the independent toy-b reads by zero-shot. One thread.
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
    p.add_argument("--reference", default=None, help="a folder of images whose mean spectrum maco keeps")
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch
    torch.set_num_threads(1)
    from clipxai.models import load_clip
    from clipxai.toy import groundtruth

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    t = time.perf_counter()
    check = groundtruth.heart_check(model, judge, seeds=args.seeds, steps=args.steps, param="maco", init_tint=None,
                                    tv=0.0, reference=args.reference)
    agree = sum(p is not None and p == j for p, j in zip(check.pixel_concepts, check.judge_concepts))
    print(f"maco{' --reference ' + args.reference if args.reference else ''}, {args.seeds} seeds, {args.steps} steps "
          f"({time.perf_counter() - t:.0f} s)")
    print(f"  the judge (toy-b) reads: {' '.join(check.judge_concepts)}")
    print(f"  the pixels show:         {' '.join(str(c) for c in check.pixel_concepts)}")
    print(f"  seeds where pixels and judge agree on a planted meaning: {agree} of {args.seeds}")


if __name__ == "__main__":
    main()
