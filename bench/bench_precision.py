"""Does bf16 keep the ascent's meaning, and what does a low-precision step cost on this CPU?

By default: the toy world's colour check and a 300-step ❤️ run, fp32 vs bf16. Prints the
judge's agreement (toy-b reads the colour each ascent reached) under each precision, and
the similarity to "❤️" at step 300 of the same seed under each.

    python bench/bench_precision.py [--steps 80] [--heart-steps 300] [--threads 1]

``--speed``: engine steps of a ViT-B/32 shape (random weights) under fp32, bf16 and fp16
autocast, interleaved in one process, each against the fp32 step. On a CPU without bf16 or
fp16 instructions PyTorch emulates them; this is the figure ``--precision`` quotes when it
refuses them there (``clipxai.ascent.compute.SLOW_STEP_RATIO``).

    python bench/bench_precision.py --speed [--speed-steps 2] [--speed-cutouts 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def speed(args) -> dict:
    """Median step time of fp32, bf16 and fp16 engines on a ViT-B/32 shape, rounds interleaved (the first a warm-up)."""
    import statistics

    from clipxai.ascent.config import resolve_config
    from clipxai.ascent.run import prepare
    from clipxai.models import load_clip

    model = load_clip("random:ViT-B/32", "cpu")
    out = tempfile.mkdtemp(prefix="clipxai-precision-")
    engines = {}
    for precision in ("fp32", "bf16", "fp16"):
        cfg = resolve_config("a red heart", {"out": out, "model": "unused", "cutouts": args.speed_cutouts,
                                             "steps": 1000, "snapshot_every": 1000, "precision": precision,
                                             "force_precision": True})
        engine, _ = prepare(cfg, model, quiet=True)
        engine.emit("on_start")
        engines[precision] = engine
    wall, cpu = {k: [] for k in engines}, {k: [] for k in engines}
    for i in range(args.speed_steps + 1):
        for precision, engine in engines.items():
            t, c = time.perf_counter(), time.process_time()
            engine.step(i + 1)
            if i:
                wall[precision].append(time.perf_counter() - t)
                cpu[precision].append(time.process_time() - c)
    medians = {k: statistics.median(v) for k, v in wall.items()}
    cpu_medians = {k: statistics.median(v) for k, v in cpu.items()}
    return {"cutouts": args.speed_cutouts, "steps": args.speed_steps, "step_s": medians, "step_cpu_s": cpu_medians,
            "over_fp32": {k: v / medians["fp32"] for k, v in medians.items()},
            "over_fp32_cpu": {k: v / cpu_medians["fp32"] for k, v in cpu_medians.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=80, help="steps of each colour ascent")
    p.add_argument("--heart-steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--speed", action="store_true", help="time fp32, bf16 and fp16 steps of a ViT-B/32 shape instead")
    p.add_argument("--speed-steps", type=int, default=2, help="--speed: timed steps of each, after a warm-up")
    p.add_argument("--speed-cutouts", type=int, default=2, help="--speed: views a step")
    args = p.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    from clipxai.ascent.compute import fast_on_cpu
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu())
    print("instructions for bf16: " + {True: "yes", False: "no", None: "cannot tell"}[fast_on_cpu("bf16")]
          + ", for fp16: " + {True: "yes", False: "no", None: "cannot tell"}[fast_on_cpu("fp16")])
    if args.speed:
        r = speed(args)
        print(f"ViT-B/32 shape (random init), engine step at {r['cutouts']} cutouts, {args.threads} thread(s), "
              f"median of {r['steps']} interleaved steps after a warm-up")
        for precision, seconds in r["step_s"].items():
            print(f"  {precision}: {seconds:.2f} s a step, {r['over_fp32'][precision]:.1f}x the fp32 step; CPU time "
                  f"{r['step_cpu_s'][precision]:.2f} s, {r['over_fp32_cpu'][precision]:.1f}x")
        print(f"load average {os.getloadavg()[0]:.1f} (with one thread, CPU time is what a step costs whatever else runs)")
        return
    import clipxai
    from clipxai.models import load_clip
    from clipxai.toy import groundtruth

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    print(f"colour check (8 colours x 2 seeds, {args.steps} steps, 4 cutouts), judged by toy-b, {args.threads} thread(s)")
    agreement = {}
    for precision in ("fp32", "bf16"):
        t = time.perf_counter()
        conditions = groundtruth.colour_check(model, judge, steps=args.steps, lr=0.1, cutouts=4, precision=precision,
                                              force_precision=True)
        cut = next(c for c in conditions if "cutout" in c.name)
        agreement[precision] = cut.judge_agreement
        print(f"  {precision}: judge agrees {100 * cut.judge_agreement:.0f}%, self-similarity {cut.self_similarity:.3f} "
              f"({time.perf_counter() - t:.0f} s)")
    print(f"  difference: {100 * abs(agreement['bf16'] - agreement['fp32']):.0f} points (target <= 5)")
    sims = {}
    out = tempfile.mkdtemp(prefix="clipxai-precision-")
    for precision in ("fp32", "bf16"):
        [run] = clipxai.ascend("❤️", model_obj=model, steps=args.heart_steps, snapshot_every=50, init_tint=0.2,
                               precision=precision, force_precision=True, out=out, name=precision, quiet=True)
        sims[precision] = run.metrics()[-1]["sim/❤️"]
    print(f"❤️ on toy, seed 0, default preset: similarity at step {args.heart_steps} fp32 {sims['fp32']:.4f}, "
          f"bf16 {sims['bf16']:.4f} (difference {sims['bf16'] - sims['fp32']:+.4f})")


if __name__ == "__main__":
    main()
