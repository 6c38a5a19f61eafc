"""``clipxai demo``: the whole experiment offline in about a minute.

Ascend "❤️" on the bundled toy CLIP from a few seeds (batched), analyse every run with
labels drawn from the toy world's own vocabulary, and write one report comparing them.
"""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_CONCEPTS = ("❤️", "love", "a red heart", "a gold ring", "a pink mouth")


def _fresh_folder(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... so an earlier demo's results are never touched."""
    candidate, i = path, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        i += 1
        candidate = path.with_name(f"{path.name}-{i}")
    return candidate


DEMO_TINT = 0.2


def run_demo(out: str | Path = "runs/demo", prompt: str = "❤️", model: str = "toy", seeds: int = 4,
             steps: int = 300, snapshot_every: int = 5, quiet: bool = True, log=print) -> Path:
    """Run the demo into a fresh folder; returns the path of its HTML report."""
    from ..ascent import ascend  # noqa: PLC0415
    from ..analysis.analyze import AnalyzeOptions  # noqa: PLC0415
    from ..analysis.report import write_report  # noqa: PLC0415
    from ..models import load_clip  # noqa: PLC0415
    from . import world  # noqa: PLC0415

    folder = _fresh_folder(Path(out))
    clip_model = load_clip(model, "cpu")
    log(f"ascending {prompt!r} on {model} from {seeds} seeds, {steps} steps, into {folder}")
    # Each seed starts from its own hue: from plain grey every seed falls to the same meaning
    # of "❤️" (the one grey noise is closest to); tinted starts reach the others too.
    runs = ascend(prompt, model_obj=clip_model, seeds=seeds, steps=steps, snapshot_every=snapshot_every,
                    init_tint=DEMO_TINT, out=str(folder), name="run", quiet=quiet)
    vocab = folder / "vocabulary.txt"
    vocab.write_text("\n".join(world.VOCABULARY) + "\n", encoding="utf-8")
    opts = AnalyzeOptions(projections=("pca",), concepts=list(DEFAULT_CONCEPTS),
                          vocab_file=str(vocab), vocab_only=True, gif=False)
    log("analysing and writing the report")
    html, _ = write_report([r.path for r in runs], folder / "report.html", opts=opts,
                           title=f"What the toy CLIP sees in “{prompt}”", model=clip_model)
    return html


@click.command("demo", context_settings={"show_default": True})
@click.option("-o", "--out", default="runs/demo", show_default=True,
              help="Folder for the runs and the report (a fresh one is used if it holds results).")
@click.option("--prompt", default="❤️", show_default=True, help="The text to ascend towards.")
@click.option("--model", default="toy", show_default=True, help="CLIP to ascend with (toy works offline).")
@click.option("--seeds", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Seeds, ascended together in one batch; one run each.")
@click.option("--steps", default=300, show_default=True, type=click.IntRange(1), help="Optimization steps.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--open", "open_after", is_flag=True, help="Open the report in the web browser when it is written.")
def demo_command(out, prompt, model, seeds, steps, quiet, open_after):
    """Ascend "❤️" on the bundled toy CLIP, analyze the runs and write a report (offline)."""
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    html = run_demo(out, prompt=prompt, model=model, seeds=seeds, steps=steps, quiet=quiet, log=log)
    click.echo(str(html))
    if open_after:
        from ..analysis.cli import open_in_browser  # noqa: PLC0415
        open_in_browser(html)
