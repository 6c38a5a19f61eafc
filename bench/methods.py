"""Measured figures of the feature terms and of CLIP's opinion, on models where the answer is known.

    python bench/methods.py [--threads 1]

1. Neuron objective: a unit of ``visual.transformer.resblocks.1`` (``vision_model.encoder.layers.1``
   for Hugging Face) ascended for 100 steps from 4 seeds (default preset otherwise): how far its
   recorded activation (the class token, ``--activations full``) rises, in units of its spread
   at the start (the std over the seeds' starting images), and of its spread over every token
   of those images. On the toy CLIP, and on one tiny random CLIP in three libraries (the same
   weights: the three should agree).
2. CLIP's opinion on the toy: for world images of each planted concept (4 each) and for
   ascents toward each concept's caption (2 seeds, 80 steps, 4 cutouts, lr 0.1), does the
   opinion include the concept's colour or shape word, and how long does one take?

The pyramid's colour ground truth is in ``bench/ground_truth.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def neuron_rise(model, layer: str, unit: int, seeds: int = 4, steps: int = 100) -> dict:
    import numpy as np

    import clipxai
    with tempfile.TemporaryDirectory() as out:
        runs = clipxai.ascend(None, model_obj=model, terms=[f"neuron:{layer}:{unit}"], steps=steps, seeds=seeds,
                              snapshot_every=steps - 1, hooks=layer, activations="full", record_gradients=False,
                              out=out, quiet=True)
        acts = np.stack([r.activations[layer][:].astype(np.float32) for r in runs])  # seeds, rows, tokens, width
    start, end = acts[:, 0, 0, unit], acts[:, -1, 0, unit]
    rise = float((end - start).mean())
    return {"start": float(start.mean()), "end": float(end.mean()), "rise": rise,
            "x_seed_spread": rise / float(start.std()), "x_token_spread": rise / float(acts[:, 0, :, unit].std())}


def tiny_in(library: str):
    from clipxai.models import random_clip, wrap_module
    from clipxai.models.convert import openai_as
    if library == "openai":
        return wrap_module(random_clip("tiny", seed=0), name="tiny")
    return wrap_module(openai_as(random_clip("tiny", seed=0).state_dict(), library), name=f"tiny-{library}")


def opinion_hits(model) -> tuple[list, float]:
    import numpy as np
    import torch

    import clipxai
    from clipxai.analysis.words.opinion import opinion
    from clipxai.toy import world

    rng = np.random.default_rng(0)
    cases = []
    for name in world.PLANTED:
        images = torch.from_numpy(world.render(world.sample_records(4, rng, concept=name), rng))
        with torch.no_grad():
            cases += [("world image", name, e.numpy()) for e in model.embed_images(images)]
    with tempfile.TemporaryDirectory() as out:
        for name, concept in world.PLANTED.items():
            runs = clipxai.ascend(concept.description, model_obj=model, steps=80, seeds=2, cutouts=4, lr=0.1,
                                  snapshot_every=79, activations="none", record_gradients=False, out=out, quiet=True)
            cases += [("ascent", name, np.asarray(r.embeddings[-1])) for r in runs]
    rows, seconds = [], []
    for kind, name, target in cases:
        op = opinion(model, target, seed=0)
        concept = world.PLANTED[name]
        rows.append((kind, name, op.text, op.similarity, concept.colour in op.tokens or concept.shape in op.tokens,
                     concept.colour in op.tokens and concept.shape in op.tokens))
        seconds.append(op.seconds)
    return rows, float(np.median(seconds))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    import torch
    torch.set_num_threads(args.threads)
    from clipxai.models import load_clip

    toy = load_clip("toy", "cpu")
    print("neuron objective: 100 steps, 4 seeds, default preset; the class token's unit, recorded")
    print(f"  {'model':<18}{'unit':>5}{'start':>8}{'end':>8}{'rise':>8}{'x seed spread':>15}{'x token spread':>16}")
    t = time.perf_counter()
    cases = [("toy (openai)", toy, "visual.transformer.resblocks.1", u) for u in (5, 17, 42)]
    cases += [(f"tiny ({lib})", tiny_in(lib), "vision_model.encoder.layers.1" if lib == "hf"
               else "visual.transformer.resblocks.1", 5) for lib in ("openai", "openclip", "hf")]
    for name, model, layer, unit in cases:
        r = neuron_rise(model, layer, unit)
        print(f"  {name:<18}{unit:>5}{r['start']:>8.2f}{r['end']:>8.2f}{r['rise']:>8.2f}"
              f"{r['x_seed_spread']:>15.1f}{r['x_token_spread']:>16.1f}")
    print(f"  ({time.perf_counter() - t:.0f} s)")

    t = time.perf_counter()
    rows, median = opinion_hits(toy)
    print("\nCLIP's opinion on the toy (4 tokens, 150 steps, 8 restarts, seed 0)")
    for kind, name, text, sim, hit, both in rows:
        print(f"  {kind:<12}{name:<7}{text:<34}{sim:.3f}  {'names it' if hit else 'MISSES'}")
    hits = sum(r[4] for r in rows)
    both = sum(r[5] for r in rows)
    print(f"  colour or shape word: {hits}/{len(rows)} = {100 * hits / len(rows):.0f}%; both: {both}/{len(rows)}; "
          f"median {median:.1f} s per opinion ({time.perf_counter() - t:.0f} s in all, ascents included)")


if __name__ == "__main__":
    main()
