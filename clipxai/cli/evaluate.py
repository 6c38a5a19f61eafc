"""``clipxai evaluate RUN...``: is each state, and the final image, really there, or a pattern only its model sees?"""

from __future__ import annotations

import json
from pathlib import Path

import click

from clipxai.util.interrupt import stop_on_interrupt


def _num(x, spec: str = ".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def describe_entry(name: str, e: dict) -> list[str]:
    """Two lines for one entry: its judges and numbers, then its verdict."""
    judges = ", ".join(f"{k} {_num(v['cosine'], '.3f')} (z {_num(v['z'], '.1f')})" for k, v in e["judges"].items())
    sparse = e.get("sparse_reading") or {}
    return [f"  {name}: judges {judges or 'none'}; transfer {_num(e['transfer_rate'])}, agreement "
            f"{_num(e['agreement'])}, robustness_min {_num(e['robustness_min'])}, pathway_max "
            f"{_num(e['pathway_max'], '.1f')}, written {_num(e['written'], '.1f')}; reads as "
            f"{', '.join(sparse.get('words', [])[:3]) or 'n/a'} (fidelity {_num(sparse.get('fidelity'))})",
            f"    {e['verdict']}"]


def describe(data: dict) -> str:
    """A few lines a person reads: per entry its numbers and its verdict."""
    lines = [f"{data['run']}: “{data['prompt']}” on {data['model']}, judged by "
             f"{', '.join(data['judges']) or 'no other model (pass --judge MODEL)'}"]
    lines += describe_entry(f"final image ({data['final']['source']})", data["final"])
    for s in data["states"]:
        lines += describe_entry(f"state {s['state']} ({s['images']} of its {s['snapshots']} snapshots)", s)
    return "\n".join(lines)


@click.command("evaluate", context_settings={"show_default": True})
@click.argument("run_paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--judge", "judges", multiple=True,
              help="A model that judges the images (any --model form); repeatable. Default: the models this "
                   "machine has that the ascent did not use (toy-b for toy). Nothing is downloaded.")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="A folder of natural images: every judge's baseline and the natural pathway "
                   "(a toy run uses the toy world's images).")
@click.option("--labels", default=None,
              help="Candidate readings for the zero-shot readings, separated by commas (default: the toy world's "
                   "meanings, or the states' words).")
@click.option("--per-state", type=click.IntRange(1, 10000), default=8,
              help="Snapshots measured per state, spread over it (its most typical one among them).")
@click.option("--model", default=None, help="The ascending CLIP (default: the run's own model).")
@click.option("--device", default="auto", help="auto, cpu, cuda or mps.")
@click.option("--json", "as_json", is_flag=True, help="Print evaluation.json instead of the text summary.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def evaluate_command(run_paths, judges, reference, labels, per_state, model, device, as_json, quiet):
    """Score each state of each run and its final image on other models, perturbations, the natural
    pathway, written words and a sparse reading; writes RUN/analysis/evaluation.json (analyzing the run
    first if needed)."""
    from clipxai.analysis.trust.api import evaluate  # noqa: PLC0415
    from clipxai.analysis.trust.run import check_run, load_judges, load_reference, parse_labels  # noqa: PLC0415
    from clipxai.runs.load import open_run  # noqa: PLC0415

    runs = [open_run(p) for p in run_paths]     # every run, label, folder and judge checked before any work
    for run in runs:
        check_run(run)
    label_list = parse_labels(labels)
    if reference is not None:
        load_reference(str(reference), tuple(runs[0].images.shape[-2:]))
    judge_models = load_judges(judges, device) if judges else None
    clip_model = None
    if model:
        from clipxai.models.load import load_clip  # noqa: PLC0415
        clip_model = load_clip(model, device=device)
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(f"  ... {msg}", err=True))
    for run in runs:
        with stop_on_interrupt():
            data = evaluate(run, judges=judge_models, reference=reference, labels=label_list or None,
                            per_state=per_state, model=clip_model, device=device, log=log)
        if as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            continue
        click.echo(describe(data))
        click.echo(f"  wrote {run.analysis_dir / 'evaluation.json'}")
    if not as_json:
        click.echo(f"next: clipxai report {' '.join(map(str, run_paths))} -o report.html --open")
