"""CVAE speed on this machine: training throughput, and caching CLIP embeddings of 200k sentences.

    python bench/bench_cvae.py [--threads 1] [--sentences 200000] [--clip toy]

1. Training throughput in images/s at 64x64: full optimizer steps (forward, backward,
   Adam) on batches of 64, for the default CVAE (width 32) and the bundled toy size
   (width 16), with a 512-wide condition (ViT-B/32's text embedding) and a 64-wide one.
2. The time to cache CLIP embeddings for N CelebA-like sentences (attribute rows drawn
   independently with CelebA's approximate attribute frequencies), cold (every distinct
   sentence encoded) and warm (read back from the store), on the toy CLIP, or on
   random:tiny when the toy CLIP is not installed; the output says which.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Approximate fraction of CelebA images with each attribute set (only used to make the
# sentences about as varied as CelebA's; the timing depends on how many are distinct).
CELEBA_FREQUENCY = {
    "5_o_Clock_Shadow": 0.11, "Arched_Eyebrows": 0.27, "Attractive": 0.51, "Bags_Under_Eyes": 0.20,
    "Bald": 0.02, "Bangs": 0.15, "Big_Lips": 0.24, "Big_Nose": 0.23, "Black_Hair": 0.24,
    "Blond_Hair": 0.15, "Blurry": 0.05, "Brown_Hair": 0.21, "Bushy_Eyebrows": 0.14, "Chubby": 0.06,
    "Double_Chin": 0.05, "Eyeglasses": 0.07, "Goatee": 0.06, "Gray_Hair": 0.04, "Heavy_Makeup": 0.39,
    "High_Cheekbones": 0.45, "Male": 0.42, "Mouth_Slightly_Open": 0.48, "Mustache": 0.04,
    "Narrow_Eyes": 0.12, "No_Beard": 0.83, "Oval_Face": 0.28, "Pale_Skin": 0.04, "Pointy_Nose": 0.28,
    "Receding_Hairline": 0.08, "Rosy_Cheeks": 0.07, "Sideburns": 0.06, "Smiling": 0.48,
    "Straight_Hair": 0.21, "Wavy_Hair": 0.32, "Wearing_Earrings": 0.19, "Wearing_Hat": 0.05,
    "Wearing_Lipstick": 0.47, "Wearing_Necklace": 0.12, "Wearing_Necktie": 0.07, "Young": 0.77,
}


def bench_training(threads: int, steps: int = 12, batch: int = 64) -> None:
    import torch

    from clipxai.generators.cvae.model import CVAE, CVAEConfig, kl_per_image, recon_per_image

    torch.set_num_threads(threads)
    print(f"training throughput, 64x64, batch {batch}, {threads} thread(s), {steps} timed steps:")
    for label, width, cond in (("default (width 32)", 32, 512), ("default (width 32)", 32, 64),
                               ("toy bundle (width 16)", 16, 64)):
        torch.manual_seed(0)
        model = CVAE(CVAEConfig(cond_dim=cond, size=64, zdim=32, width=width, cond_embed=128 if width == 32 else 64))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, c = torch.rand(batch, 3, 64, 64), torch.randn(batch, cond)
        g = torch.Generator().manual_seed(0)

        def step():
            logits, mu, logvar = model(x, c, generator=g)
            loss = (recon_per_image(logits, x, "mse") + kl_per_image(mu, logvar)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        for _ in range(2):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = time.perf_counter() - t0
        n_params = sum(p.numel() for p in model.parameters())
        print(f"  {label:<22} condition {cond:>3}: {steps * batch / dt:7.0f} images/s "
              f"({dt / steps * 1000:.0f} ms/step, {n_params / 1e6:.2f} M parameters)")


def bench_embeddings(n: int, clip_name: str | None) -> None:
    import numpy as np

    from clipxai.generators.cvae.conditioning import text_embeddings
    from clipxai.generators.cvae.phrases import SentenceBuilder
    from clipxai.models import load_clip

    name = clip_name
    if name is None:
        from clipxai.toy.bundled import BUNDLED_MODELS
        name = "toy" if BUNDLED_MODELS["toy"].is_file() else "random:tiny"
    model = load_clip(name, "cpu")
    names = list(CELEBA_FREQUENCY)
    rng = np.random.default_rng(0)
    rows = np.where(rng.random((n, len(names))) < np.array([CELEBA_FREQUENCY[a] for a in names]), 1, -1)
    t0 = time.perf_counter()
    sentences = SentenceBuilder(names).sentences(rows)
    t_build = time.perf_counter() - t0
    distinct = len(set(sentences))
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        text_embeddings(model, sentences, cache_dir=cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        text_embeddings(model, sentences, cache_dir=cache)
        warm = time.perf_counter() - t0
    print(f"caching CLIP text embeddings on '{name}' (context {model.context_length} tokens, "
          f"{os.environ.get('OMP_NUM_THREADS', '?')} OMP thread(s), torch {__import__('torch').get_num_threads()}):")
    print(f"  {n} CelebA-like sentences, {distinct} distinct; building them: {t_build:.1f} s")
    print(f"  cold (encode every distinct sentence and store): {cold:.1f} s ({distinct / cold:.0f} sentences/s)")
    print(f"  warm (read from the store): {warm:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sentences", type=int, default=200_000)
    ap.add_argument("--clip", default=None, help="the CLIP for the embedding benchmark (default toy, else random:tiny)")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores visible")
    if not args.skip_training:
        bench_training(args.threads)
    bench_embeddings(args.sentences, args.clip)


if __name__ == "__main__":
    main()
