"""Ground-truth figures on the toy world: is ascent adversarial without augmentation, does it
get the colour right with it (pixels with cutouts, and the das preset's pyramid), and does "❤️"
reach several planted meanings?

    python bench/ground_truth.py [--model toy] [--judge toy-b] [--steps 80] [--lr 0.1] [--cutouts 4] [--seeds 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="toy")
    p.add_argument("--judge", default="toy-b")
    p.add_argument("--steps", type=int, default=80, help="steps of each colour ascent")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate of each colour ascent")
    p.add_argument("--cutouts", type=int, default=4, help="cutouts of the augmented colour ascent")
    p.add_argument("--heart-steps", type=int, default=100)
    p.add_argument("--seeds", type=int, default=16, help="seeds of the ❤️ ascent")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch
    torch.set_num_threads(args.threads)
    from clipxai.models import load_clip
    from clipxai.toy import groundtruth

    model, judge = load_clip(args.model, "cpu"), load_clip(args.judge, "cpu")
    t = time.perf_counter()
    conditions = groundtruth.colour_check(model, judge, steps=args.steps, lr=args.lr, cutouts=args.cutouts,
                                          conditions={**groundtruth.COLOUR_CONDITIONS, **groundtruth.PYRAMID_CONDITION})
    print(f"colour ascent: '<colour>' for {len(conditions[0].per_colour)} colours, 2 seeds, "
          f"{args.steps} steps, lr {args.lr}, {args.cutouts} cutouts (pyramid: the das preset's own lr and views), "
          f"model {args.model}, judge {args.judge} ({time.perf_counter() - t:.0f} s)")
    print(f"  {'condition':<26}{'self-sim':>10}{'judge agrees':>14}{'pixel share':>13}{'pixel agrees':>14}"
          f"{'final sim':>11}{'judge sim':>11}{'gap':>8}")
    for c in conditions:
        print(f"  {c.name:<26}{c.self_similarity:>10.3f}{100 * c.judge_agreement:>13.0f}%"
              f"{100 * c.pixel_share:>12.1f}%{100 * c.pixel_agreement:>13.0f}%"
              f"{c.final_similarity:>11.3f}{c.judge_similarity:>11.3f}{c.adversarial_gap:>8.3f}")
    t = time.perf_counter()
    print(f"\ncolour landscape of '❤️' on {args.model} (flat fields, 11^3 RGB grid; peaks, best first):")
    for rgb, sim, name in groundtruth.colour_landscape(model, "❤️").peaks()[:5]:
        print(f"  rgb ({rgb[0]:.1f}, {rgb[1]:.1f}, {rgb[2]:.1f})  similarity {sim:.3f}  reads as {name or '-'}")
    print(f"  ({time.perf_counter() - t:.0f} s)")
    t = time.perf_counter()
    heart = groundtruth.heart_check(model, judge, seeds=args.seeds, steps=args.heart_steps)
    print(f"\n❤️ ascent, {args.seeds} seeds x {args.heart_steps} steps ({time.perf_counter() - t:.0f} s)")
    print("  by pixels: " + ", ".join(f"{c}: {heart.pixel_concepts.count(c)}" for c in ("heart", "ring", "mouth", None)))
    print("  by judge:  " + ", ".join(f"{c}: {heart.judge_concepts.count(c)}" for c in ("heart", "ring", "mouth")))
    print(f"  planted concepts reached (pixels and judge agree): {', '.join(heart.reached) or 'none'}")


if __name__ == "__main__":
    main()
