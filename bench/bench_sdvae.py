"""sdvae-mode step time and memory, on the Stable Diffusion VAE's architecture (random weights, ``--vae random:sd``).

Timing: the engine's step (8 cutouts, no snapshot) against the bare floor any such step pays,
decode the latent, resize to 8 views, encode_image, backward to the latent (target <= 1.2),
timed interleaved in one process so load from other programs hits both alike.

Memory (``--memory``): one step at 512x512 in a fresh process with and without
``-P checkpoint_decoder=true``; each process reports its peak resident memory (ru_maxrss), and
the ratio is with over without (target <= 0.6). Weights do not change speed or memory.

    python bench/bench_sdvae.py [--steps 3] [--size 256] [--arch ViT-B/32] [--cutouts 8]
    python bench/bench_sdvae.py --memory [--size 512] [--arch toy]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import interleaved, make_engine  # noqa: E402

TARGET_TIME, TARGET_MEMORY = 1.2, 0.6


def _clip(arch: str):
    from clipxai.models import load_clip

    return load_clip(arch if arch.startswith("toy") else f"random:{arch}", "cpu")


def timing(args) -> None:
    import torch

    clip, side = _clip(args.arch), args.size
    tmp = Path(tempfile.mkdtemp(prefix="clipxai-bench-sdvae-"))
    engine = make_engine(clip, str(tmp / "runs"), model="unused", param="sdvae", size=(side, side),
                         cutouts=args.cutouts, steps=1000, snapshot_every=1000, activations="none",
                         param_options={"vae": "random:sd"})
    from clipxai.generators.sdvae.load import load_vae

    vae, info = load_vae("random:sd")
    z = engine.param.latent().clone().requires_grad_(True)
    text = clip.encode_text(["a red heart"])[0]
    r = clip.input_resolution

    def bare(_):
        z.grad = None
        image = ((vae.decode(z / info["scaling_factor"]).sample + 1) / 2).clamp(0, 1)
        views = torch.nn.functional.interpolate(image, size=(r, r), mode="bilinear").repeat(args.cutouts, 1, 1, 1)
        f = clip.encode_image(views)
        (-(f / f.norm(dim=-1, keepdim=True) @ (text / text.norm())).mean()).backward()

    te, tb = interleaved(lambda i: engine.step(i + 1), bare, args.steps)
    engine_s, bare_s = statistics.median(te), statistics.median(tb)
    ratio = engine_s / bare_s
    print(f"threads: {torch.get_num_threads()}")
    print(f"vae: random:sd (SD 1.x shape), {side}x{side}, latent {tuple(engine.param.latent().shape[1:])}; "
          f"clip: {args.arch}; cutouts: {args.cutouts}; timed steps: {args.steps}")
    print(f"engine step (sdvae mode):            {engine_s:.2f} s")
    print(f"bare decode + encode_image fwd+bwd:  {bare_s:.2f} s")
    print(f"ratio: {ratio:.3f} (target <= {TARGET_TIME}) {'ok' if ratio <= TARGET_TIME else 'OVER'}")


def memory_child(args) -> None:
    """One sdvae step in this process; prints its peak resident memory before and after the step."""
    clip = _clip(args.arch)
    tmp = Path(tempfile.mkdtemp(prefix="clipxai-bench-sdvae-"))
    engine = make_engine(clip, str(tmp / "runs"), model="unused", param="sdvae", size=(args.size, args.size),
                         cutouts=args.cutouts, steps=1000, snapshot_every=1000, activations="none",
                         record_gradients=False,
                         param_options={"vae": "random:sd", "checkpoint_decoder": bool(args.child)})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.step(1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"checkpoint_decoder": bool(args.child), "before_mib": before / 1024, "peak_mib": peak / 1024}))


def memory(args) -> None:
    peaks = {}
    for checkpoint in (0, 1):
        out = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), "--size", str(args.size),
                              "--arch", args.arch, "--cutouts", str(args.cutouts), "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        peaks[checkpoint] = row
        print(f"checkpoint_decoder={bool(checkpoint)!s:5}: resident {row['before_mib']:.0f} MiB before the step, "
              f"peak {row['peak_mib']:.0f} MiB")
    ratio = peaks[1]["peak_mib"] / peaks[0]["peak_mib"]
    print(f"vae: random:sd, {args.size}x{args.size}; clip: {args.arch}; cutouts: {args.cutouts}")
    print(f"peak with / without decoder checkpointing: {ratio:.3f} (target <= {TARGET_MEMORY}) "
          f"{'ok' if ratio <= TARGET_MEMORY else 'OVER'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each kind (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=None, help="image side [default: 256; --memory: 512]")
    parser.add_argument("--cutouts", type=int, default=8)
    parser.add_argument("--arch", default=None, help="CLIP: a random architecture or toy [default: ViT-B/32; --memory: toy]")
    parser.add_argument("--memory", action="store_true", help="peak memory with and without decoder checkpointing")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    measuring_memory = args.memory or args.child is not None
    args.size = args.size or (512 if measuring_memory else 256)
    args.arch = args.arch or ("toy" if measuring_memory else "ViT-B/32")

    import torch
    torch.set_num_threads(args.threads)
    if args.child is None:
        from clipxai.util.cpu import describe_cpu
        print(describe_cpu(), flush=True)
    if args.child is not None:
        memory_child(args)
    elif args.memory:
        memory(args)
    else:
        timing(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
