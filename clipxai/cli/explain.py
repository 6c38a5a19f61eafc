"""``clipxai explain RUN``: which components of CLIP make each state, and whether removing them matters."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clipxai.util.interrupt import stop_on_interrupt


def describe(data: dict) -> str:
    """A few lines a person reads: per state its top components with words, and the ablation's verdict."""
    lines = [f"{data['run']}: {len(data['states'])} state(s) explained by {len(data['components'])} components "
             f"of {data['model']} (decomposition error {data['sum_error']:.1e})"]
    for s in data["states"]:
        lines.append(f"  state {s['state']} ({s['snapshots']} snapshots, similarity {s['similarity']:.3f}):")
        for t in s["top"][:3]:
            lo, hi = t["ci95"]
            lines.append(f"    {t['component']}: {t['contribution']:+.3f} ({lo:+.3f} to {hi:+.3f})  "
                         f"[{', '.join(t['words'][:3])}]")
        a = s.get("ablation")
        if a:
            which = "by total effect" if a.get("ranked_by") == "total_effect" else "by contribution"
            lines.append(f"    ablating its top {a['k']} {which} ({', '.join(a['components'])}) drops the similarity "
                         f"by {a['drop']:.3f}, {a['k']} random components by {a['random_drop']:.3f} "
                         f"(p = {a['p_value']:.3g}, {a['draws']} draws)")
    return "\n".join(lines)


@click.command("explain", context_settings={"show_default": True})
@click.argument("run_path", type=click.Path(path_type=Path))
@click.option("--state", type=int, default=None, help="Explain only this state of the run's analysis.")
@click.option("--top", type=click.IntRange(1, 100), default=5, help="Components listed per state.")
@click.option("--k", "k", type=click.IntRange(1, 50), default=3, help="Components ablated per state (those of largest total effect).")
@click.option("--draws", type=click.IntRange(100, 100000), default=100,
              help="Random sets of k components the ablation is compared with.")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="A folder of images to take each component's mean write over (default: the run's snapshots).")
@click.option("--component", "components", multiple=True,
              help="A component to report for every state besides its top ones (blocks.7.attn.head3, blocks.7.mlp, "
                   "or the backend's module name); repeatable.")
@click.option("--model", default=None, help="CLIP to explain with (default: the run's own model).")
@click.option("--device", default="auto", help="auto, cpu, cuda or mps.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, help="Seed of every random choice.")
@click.option("--json", "as_json", is_flag=True, help="Print explain.json instead of the text summary.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def explain_command(run_path, state, top, k, draws, reference, components, model, device, seed, as_json, quiet):
    """Which components of CLIP make each state of a run, where in the image, and whether ablating them
    matters; writes RUN/analysis/explain.json and its figures (analyzing the run first if needed)."""
    from clipxai.analysis.explain.api import explain  # noqa: PLC0415
    from clipxai.runs.load import open_run  # noqa: PLC0415

    clip_model = None
    if model:
        from clipxai.models.load import load_clip  # noqa: PLC0415
        clip_model = load_clip(model, device=device)
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(f"  ... {msg}", err=True))
    run = open_run(run_path)
    with stop_on_interrupt():
        data = explain(run, model=clip_model, device=device, log=log, state=state, top=top, k=k, draws=draws,
                       reference=None if reference is None else str(reference), components=components, seed=seed)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(describe(data))
    click.echo(f"  wrote {run.analysis_dir / 'explain.json'}")
    click.echo(f"next: clipxai report {run_path} -o report.html --open")
