"""``clipxai demo``: the toy CLIP's heart experiment, end to end, in one command."""

from __future__ import annotations

import click

from clipxai.toy.demo import run_demo


@click.command("demo", context_settings={"show_default": True})
@click.option("-o", "--out", default="runs/demo", show_default=True,
              help="Folder for the runs and the report (a fresh one is used if it holds results).")
@click.option("--prompt", default="❤️", show_default=True, help="The text to ascend towards.")
@click.option("--model", default="toy", show_default=True, help="CLIP to ascend with (toy works offline).")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 64),
              help="Seeds per recipe, ascended together in one batch; one run each.")
@click.option("--steps", default=None, show_default=False, type=click.IntRange(1),
              help="Steps of every run [default: 600 for the original recipe, 300 for the default one].")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--open", "open_after", is_flag=True, help="Open the report in the web browser when it is written.")
def demo_command(out, prompt, model, seeds, steps, quiet, open_after):
    """Ascend "❤️" on the bundled toy CLIP under the original and the default recipe, analyze the
    runs and write a report that opens with what they show (offline)."""
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    html = run_demo(out, prompt=prompt, model=model, seeds=seeds, steps=steps, quiet=quiet, log=log)
    click.echo(str(html))
    if open_after:
        from clipxai.cli.analysis import open_in_browser  # noqa: PLC0415
        open_in_browser(html)
