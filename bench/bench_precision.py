"""Does bf16 keep the ascent's meaning? The toy world's colour check and a 300-step ❤️ run, fp32 vs bf16.

Prints the judge's agreement (toy-b reads the colour each ascent reached) under each
precision, and the similarity to "❤️" at step 300 of the same seed under each.

    python bench/bench_precision.py [--steps 80] [--heart-steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=80, help="steps of each colour ascent")
    p.add_argument("--heart-steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    import clipxai
    from clipxai.models import load_clip
    from clipxai.toy import groundtruth

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    print(f"colour check (8 colours x 2 seeds, {args.steps} steps, 4 cutouts), judged by toy-b, {args.threads} thread(s)")
    agreement = {}
    for precision in ("fp32", "bf16"):
        t = time.perf_counter()
        conditions = groundtruth.colour_check(model, judge, steps=args.steps, lr=0.1, cutouts=4, precision=precision)
        cut = next(c for c in conditions if "cutout" in c.name)
        agreement[precision] = cut.judge_agreement
        print(f"  {precision}: judge agrees {100 * cut.judge_agreement:.0f}%, self-similarity {cut.self_similarity:.3f} "
              f"({time.perf_counter() - t:.0f} s)")
    print(f"  difference: {100 * abs(agreement['bf16'] - agreement['fp32']):.0f} points (target <= 5)")
    sims = {}
    out = tempfile.mkdtemp(prefix="clipxai-precision-")
    for precision in ("fp32", "bf16"):
        [run] = clipxai.ascend("❤️", model_obj=model, steps=args.heart_steps, snapshot_every=50, init_tint=0.2,
                               precision=precision, out=out, name=precision, quiet=True)
        sims[precision] = run.metrics()[-1]["sim/❤️"]
    print(f"❤️ on toy, seed 0, default preset: similarity at step {args.heart_steps} fp32 {sims['fp32']:.4f}, "
          f"bf16 {sims['bf16']:.4f} (difference {sims['bf16'] - sims['fp32']:+.4f})")


if __name__ == "__main__":
    main()
