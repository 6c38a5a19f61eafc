"""Pixels vs Fourier vs VQGAN: the same prompt and seeds ascended in each parameterization.

Runs ``clipxai.ascend`` once per mode (all seeds batched), then writes into ``--out``:

    similarity.png     prompt similarity over steps, one colour per mode (thin: seeds, thick: mean)
    contact_sheet.png  snapshots side by side: one row per (mode, seed), time left to right
    summary.json       per mode: run folders, first/last/best similarity, seconds per step

    python analysis/pixel_vs_vqgan.py "a red heart" --model toy --vqgan toy --seeds 2 --steps 150
    python analysis/pixel_vs_vqgan.py "a red square" --model random:tiny --steps 20   # plumbing only
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = ("pixels", "fourier", "vqgan")
COLOURS = {"pixels": "tab:blue", "fourier": "tab:orange", "vqgan": "tab:green"}


def run_modes(prompt: str, model, modes, *, seeds: int, seed: int, steps: int, size, snapshot_every: int,
              out: Path, vqgan_options: dict, **options) -> dict:
    """mode -> list of Runs (one per seed), each ascended with the same options."""
    import clipxai

    runs = {}
    for mode in modes:
        runs[mode] = clipxai.ascend(prompt, model_obj=model, param=mode, seeds=seeds, seed=seed, steps=steps, size=size,
                                snapshot_every=snapshot_every, out=str(out / "runs"), name=mode, quiet=True,
                                param_options=vqgan_options if mode == "vqgan" else {}, **options)
        click.echo(f"{mode}: " + ", ".join(str(r.path) for r in runs[mode]), err=True)
    return runs


def similarity_curves(runs, text: str) -> dict:
    """mode -> (steps, [K, T] similarity of the views to the prompt)."""
    curves = {}
    for mode, mode_runs in runs.items():
        metrics = [r.metrics() for r in mode_runs]
        steps = np.array([m["step"] for m in metrics[0]])
        sims = np.array([[m[f"sim/{text}"] for m in ms] for ms in metrics])
        curves[mode] = (steps, sims)
    return curves


def plot_similarity(curves: dict, text: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for mode, (steps, sims) in curves.items():
        for row in sims:
            ax.plot(steps, row, color=COLOURS.get(mode), alpha=0.25, linewidth=0.8)
        ax.plot(steps, sims.mean(0), color=COLOURS.get(mode), linewidth=2, label=f"{mode} (mean of {len(sims)})")
    ax.set_xlabel("step")
    ax.set_ylabel(f"cosine to '{text}' (views)")
    ax.set_title("Prompt similarity by parameterization")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_contact_sheet(runs, path: Path, columns: int = 8) -> None:
    """One row per (mode, seed); columns are snapshots evenly spaced in time; raw values, clipped."""
    import matplotlib.pyplot as plt

    rows = [(mode, r) for mode, mode_runs in runs.items() for r in mode_runs]
    n = min(columns, min(r.n for _, r in rows))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.4 * len(rows)), squeeze=False)
    for i, (mode, run) in enumerate(rows):
        picks = np.linspace(0, run.n - 1, n).round().astype(int)
        for j, k in enumerate(picks):
            ax = axes[i][j]
            ax.imshow(np.clip(np.asarray(run.images[k], dtype=np.float32).transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"step {int(run.steps[k])}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{mode}\nseed {run.manifest['seed']}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(runs, curves) -> dict:
    out = {}
    for mode, mode_runs in runs.items():
        _, sims = curves[mode]
        times = [r.metrics()[-1]["time"] / max(len(r.metrics()), 1) for r in mode_runs]
        out[mode] = {
            "runs": [str(r.path) for r in mode_runs],
            "similarity_first": float(sims[:, 0].mean()),
            "similarity_last": float(sims[:, -1].mean()),
            "similarity_best": float(sims.max(1).mean()),
            "seconds_per_step": float(np.mean(times)),
        }
    return out


@click.command()
@click.argument("prompt")
@click.option("--model", default="toy", show_default=True, help="CLIP name, file, toy or random:<arch>.")
@click.option("--vqgan", "vqgan_name", default="toy", show_default=True, help="Bundled VQGAN (ignored with --vqgan-config).")
@click.option("--vqgan-config", type=click.Path(exists=True), help="A taming-transformers yaml.")
@click.option("--vqgan-checkpoint", type=click.Path(exists=True), help="Its checkpoint.")
@click.option("--modes", default=",".join(MODES), show_default=True, help="Comma-separated parameterizations.")
@click.option("--seeds", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, default=150, show_default=True)
@click.option("--snapshot-every", type=int, default=5, show_default=True)
@click.option("--size", nargs=2, type=int, metavar="W H", help="Image size (default: the model's input).")
@click.option("--lr", type=float, help="Learning rate for every mode (default: each preset's).")
@click.option("--device", default="auto", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/pixel-vs-vqgan", show_default=True)
def main(prompt, model, vqgan_name, vqgan_config, vqgan_checkpoint, modes, seeds, seed, steps, snapshot_every,
         size, lr, device, out_dir):
    """Ascend PROMPT in pixel, Fourier and VQGAN modes and compare the runs."""
    from clipxai.models import load_clip
    from clipxai.prompts import parse_prompts

    out = Path(out_dir)
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    taken = [m for m in mode_list if (out / "runs" / m).exists() or any((out / "runs").glob(f"{m}-seed*"))]
    if taken:
        raise click.UsageError(f"{out / 'runs'} already holds runs for {', '.join(taken)}; choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    text = next(p.text for p in parse_prompts(prompt) if p.weight > 0)
    if vqgan_config or vqgan_checkpoint:
        vqgan_options = {"vqgan_config": vqgan_config, "vqgan_checkpoint": vqgan_checkpoint}
    else:
        vqgan_options = {"vqgan": vqgan_name}
    clip = load_clip(model, device)
    options = {"lr": lr} if lr else {}
    runs = run_modes(prompt, clip, mode_list, seeds=seeds, seed=seed,
                     steps=steps, size=tuple(size) if size else None, snapshot_every=snapshot_every, out=out,
                     vqgan_options={k: v for k, v in vqgan_options.items() if v}, **options)
    curves = similarity_curves(runs, text)
    plot_similarity(curves, text, out / "similarity.png")
    plot_contact_sheet(runs, out / "contact_sheet.png")
    summary = {"prompt": prompt, "model": model, "seeds": seeds, "steps": steps, "modes": summarize(runs, curves)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for mode, s in summary["modes"].items():
        click.echo(f"{mode:8s} similarity {s['similarity_first']:+.3f} -> {s['similarity_last']:+.3f} "
                   f"(best {s['similarity_best']:+.3f}), {s['seconds_per_step']:.3f} s/step")
    click.echo(str(out))


if __name__ == "__main__":
    main()
