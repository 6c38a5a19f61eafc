"""VQGAN-mode step time at 256x256 on an f16/16384-shaped VQGAN and a ViT-B/32 (random weights).

The VQGAN has the ddconfig of the official vqgan_imagenet_f16_16384 release (ch 128,
ch_mult 1,1,2,2,4, two res blocks, attention at 16, z_channels 256, embed_dim 256,
n_embed 16384), randomly initialised and written as yaml + checkpoint so the engine loads
it through the real path; weights do not change speed. Prints the engine's step time
(8 cutouts, no snapshot) and its ratio to the bare floor any step pays: decode z, resize
to 8 views of 224 px, encode_image, backward to z (target <= 1.2). The two are timed
interleaved in one process so load from other programs hits both alike.

    python bench/bench_vqgan.py [--steps 3] [--threads 1] [--size 256] [--cutouts 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import interleaved  # noqa: E402  (alternate two step functions, time each)

F16_16384 = dict(double_z=False, z_channels=256, resolution=256, in_channels=3, out_ch=3, ch=128,
                 ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0)
TARGET = 1.2


def write_random_vqgan(folder: Path, torch) -> tuple[Path, Path]:
    """A random f16/16384 VQGAN as (yaml, checkpoint) in the official layout."""
    import yaml

    from clipxai.generators.vqgan.files import VQGANConfig
    from clipxai.generators.vqgan.model import build_vqgan

    torch.manual_seed(0)
    cfg = VQGANConfig(path="(bench)", target="taming.models.vqgan.VQModel", kind="vq", ddconfig=F16_16384,
                      n_embed=16384, embed_dim=256)
    model = build_vqgan(cfg)
    with torch.no_grad():
        model.codebook.normal_()
    yaml_path, ckpt_path = folder / "f16_16384.yaml", folder / "f16_16384.ckpt"
    yaml_path.write_text(yaml.safe_dump({"model": {"target": cfg.target, "params": {
        "embed_dim": 256, "n_embed": 16384, "ddconfig": F16_16384,
        "lossconfig": {"target": "taming.modules.losses.vqperceptual.DummyLoss"}}}}))
    torch.save({"state_dict": model.state_dict()}, ckpt_path)
    return yaml_path, ckpt_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each kind (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cutouts", type=int, default=8)
    parser.add_argument("--arch", default="ViT-B/32")
    args = parser.parse_args(argv)
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch
    torch.set_num_threads(args.threads)
    from bench_engine import make_engine

    from clipxai.generators.vqgan import load_vqgan
    from clipxai.models import load_clip

    tmp = Path(tempfile.mkdtemp(prefix="clipxai-bench-vqgan-"))
    yaml_path, ckpt_path = write_random_vqgan(tmp, torch)
    clip = load_clip(f"random:{args.arch}", "cpu")
    side = args.size

    engine = make_engine(clip, str(tmp / "runs"), model="unused", param="vqgan", size=(side, side),
                         cutouts=args.cutouts, steps=1000, snapshot_every=1000,
                         param_options={"vqgan_config": str(yaml_path), "vqgan_checkpoint": str(ckpt_path)})

    # The floor: decode + 8 resized views + encode_image, forward and backward to z.
    vq = load_vqgan(config=yaml_path, checkpoint=ckpt_path).module
    z = engine.param.latent().clone().requires_grad_(True)
    text = clip.encode_text(["a red heart"])[0]
    r = clip.input_resolution

    def bare(_):
        z.grad = None
        image = (vq.decode(z) + 1) / 2
        views = torch.nn.functional.interpolate(image, size=(r, r), mode="bilinear").repeat(args.cutouts, 1, 1, 1)
        f = clip.encode_image(views)
        (-(f / f.norm(dim=-1, keepdim=True) @ (text / text.norm())).mean()).backward()

    te, tb = interleaved(lambda i: engine.step(i + 1), bare, args.steps)
    engine_s, bare_s = statistics.median(te), statistics.median(tb)
    ratio = engine_s / bare_s
    print(f"threads: {torch.get_num_threads()}")
    print(f"vqgan: f16/16384 shape, {side}x{side}, latent {tuple(engine.param.latent().shape[1:])}; "
          f"clip: random {args.arch}; cutouts: {args.cutouts}; timed steps: {args.steps}")
    print(f"engine step (vqgan mode):            {engine_s:.2f} s")
    print(f"bare decode + encode_image fwd+bwd:  {bare_s:.2f} s")
    print(f"ratio: {ratio:.3f} (target <= {TARGET}) {'ok' if ratio <= TARGET else 'OVER'}")
    for w in engine.writers:
        w.close()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
