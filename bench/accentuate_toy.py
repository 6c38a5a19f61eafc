"""Feature accentuation on the toy world: "❤️" ascended from 8 toy-world images, with --accentuate and plainly.

    python bench/accentuate_toy.py [--images 8] [--steps 60] [--weight 1.0] [--layers blocks.2] [--starts ordinary]

For each start image (toy-world pictures, seed 11: ordinary ones, or with ``--starts near`` near
misses, a heart, ring or mouth in a colour halfway between two planted ones, or with ``--starts
mixed`` two planted objects side by side), two ascents of one seed: with
``--accentuate`` (the accent term at ``--weight``) and plain from the same start
(``--init-image``). Printed per condition: how many final images reach a planted meaning the
pixels' colour signature and the independent toy-b agree on, and the mean pixel RMS and
relative activation distance (at ``--layers``) of the final image to its start, and how many start
images the pixels and toy-b already agree on. One thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument("--layers", default="blocks.2")
    p.add_argument("--starts", choices=["ordinary", "near", "mixed"], default="ordinary")
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import numpy as np
    import torch
    from PIL import Image
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*the analysis needs at least 3")
    import clipxai
    from clipxai.models import load_clip
    from clipxai.terms.features import module_for
    from clipxai.toy import groundtruth, world

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    mix = {"ordinary": {}, "near": dict(near_fraction=1.0), "mixed": dict(mixed_fraction=1.0)}[args.starts]
    starts = world.generate(args.images, 11, planted_fraction=0.0, **mix).images
    before = sum(p is not None and p == j for p, j in zip(world.classify_concept(starts),
                                                         groundtruth.zero_shot_concept(judge, starts)))
    print(f"{args.starts} starts: pixels and toy-b agree on a planted meaning in {before} of {len(starts)} already")
    name = module_for(model, args.layers)
    results = {"accentuate": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, start in enumerate(starts):
            path = Path(tmp) / f"start{i}.png"
            Image.fromarray((np.clip(start.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)).save(path)
            for kind, extra in (("accentuate", dict(accentuate=str(path), accent_weight=args.weight,
                                                    accent_layers=args.layers)),
                                ("plain", dict(init_image=str(path)))):
                run = clipxai.ascend("❤️", model_obj=model, steps=args.steps, snapshot_every=args.steps - 1,
                                     cutouts=4, lr=0.1, quiet=True, activations="none", record_gradients=False,
                                     out=str(Path(tmp) / kind), **extra)[0]
                final = np.clip(run.images[-1].astype(np.float32), 0, 1)
                first = np.clip(run.images[0].astype(np.float32), 0, 1)
                with torch.no_grad(), model.hooked([name]) as live:
                    model.embed_images(torch.from_numpy(np.stack([final, first])))
                acts = live.outputs[name]
                results[kind].append((world.classify_concept(final[None])[0],
                                      groundtruth.zero_shot_concept(judge, final[None])[0],
                                      float(np.sqrt(((final - first) ** 2).mean())),
                                      float((acts[0] - acts[1]).pow(2).sum() / acts[1].pow(2).sum())))
    for kind, rows in results.items():
        agree = sum(px is not None and px == jd for px, jd, _, _ in rows)
        print(f"{kind:>10}: pixels and toy-b agree on a planted meaning in {agree} of {len(rows)} "
              f"(judge: {' '.join(r[1] for r in rows)}; pixels: {' '.join(str(r[0]) for r in rows)}); "
              f"mean pixel RMS to the start {np.mean([r[2] for r in rows]):.3f}, "
              f"activation distance at {args.layers} {np.mean([r[3] for r in rows]):.3f}")


if __name__ == "__main__":
    main()
