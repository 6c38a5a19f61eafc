"""``clipxai opinion RUN``: CLIP's own words for a snapshot or a state."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clipxai.analysis.words.opinion import DEFAULTS, run_opinion


@click.command("opinion")
@click.argument("run_path", type=click.Path(path_type=Path))
@click.option("--step", type=int, default=None, help="A recorded step (default: the last snapshot).")
@click.option("--state", type=int, default=None, help="A state of the run's analysis: the mean of its snapshots.")
@click.option("--tokens", type=click.IntRange(1, 75), default=DEFAULTS["tokens"], show_default=True,
              help="How many tokens the text has.")
@click.option("--steps", type=click.IntRange(1, 100000), default=DEFAULTS["steps"], show_default=True,
              help="Ascent steps.")
@click.option("--restarts", type=click.IntRange(1, 1024), default=DEFAULTS["restarts"], show_default=True,
              help="Texts ascended at once; the best is the opinion.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--vocab", "vocab_file", type=click.Path(path_type=Path), default=None,
              help="Only these words (one per line; single-token words are used).")
@click.option("--model", default=None, help="CLIP to ask (default: the run's own model).")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the opinion as JSON.")
def opinion_command(run_path, step, state, tokens, steps, restarts, seed, vocab_file, model, device, as_json):
    """CLIP's opinion of a run's image: the few words whose text embedding matches it best."""
    from clipxai.analysis.words.vocab import read_word_file  # noqa: PLC0415
    from clipxai.runs.load import load_run  # noqa: PLC0415

    run = load_run(run_path)
    clip_model = None
    if model:
        from clipxai.models.load import load_clip  # noqa: PLC0415
        clip_model = load_clip(model, device=device)
    words = read_word_file(vocab_file) if vocab_file else None
    op, what = run_opinion(run, clip_model, step=step, state=state, device=device, tokens=tokens, steps=steps,
                           restarts=restarts, seed=seed, words=words)
    if as_json:
        click.echo(json.dumps({"run": str(run.path), "of": what, **op.to_dict()}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{run.path}, {what}: {op.text}  (cosine {op.similarity:.3f})")
    for tokens_, sim in op.others[:3]:
        click.echo(f"  also: {' '.join(tokens_)}  ({sim:.3f})")
