"""Distinct planted meanings of "❤️" reached by the 8 seeds of a batch, with and without --term diversity.

    python bench/diversity_toy.py [--batches 5] [--seeds 8] [--steps 60] [--weight 1.0]

Each seed's final image is read by the independent toy-b (zero-shot over the planted meanings);
a batch's figure is how many distinct meanings its seeds reached (at most 3), and the pixels'
colour signature confirms it or not. One thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--weight", type=float, default=1.0)
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch
    torch.set_num_threads(1)
    from clipxai.models import load_clip
    from clipxai.toy.diversity import diversity_check

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    for weight in (0.0, args.weight):
        t = time.perf_counter()
        check = diversity_check(model, judge, weight=weight, batches=args.batches, seeds=args.seeds, steps=args.steps)
        label = f"--term diversity={weight:g}" if weight else "without the term"
        print(f"{label:>24}: distinct meanings per batch {check.distinct} (total {sum(check.distinct)}), "
              f"confirmed by the pixels {check.confirmed} (total {sum(check.confirmed)}); "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        for b, judged in enumerate(check.judged):
            print(f"{'':>26}batch {b} (seeds {b * args.seeds}-{(b + 1) * args.seeds - 1}): {' '.join(judged)}")


if __name__ == "__main__":
    main()
